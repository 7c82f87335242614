"""Kubernetes batch/v1 CronJobs for the emulator: API discovery (`/apis`, `/apis/batch`, `/apis/batch/v1`)
and namespaced get/list/create of CronJobs, which is what `kubectl create job --from=cronjob/NAME
--dry-run=client` needs (it maps the resource through discovery, then GETs the CronJob and builds the Job
itself; with --dry-run=client nothing is written).

Sources: Kubernetes API conventions (Status objects; 404 NotFound, 409 AlreadyExists, 422 Invalid, 415
UnsupportedMediaType), the APIGroupList/APIGroup/APIResourceList shapes served by kube-apiserver, and
staging/src/k8s.io/kubectl/pkg/cmd/create/create_job.go (createJobFromCronJob).
Not modelled: Jobs (kubectl writes them as protobuf, which this emulator does not decode), CronJob update,
patch, delete and watch (405), field validation and server-side defaulting of the CronJob spec (the object is
stored as sent, plus uid/resourceVersion/creationTimestamp), the aggregated discovery format (kubectl falls
back to the plain lists served here), and the OpenAPI documents (404).
"""

from __future__ import annotations

import uuid
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.kube.rbac_rules import discovery_groups

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

BATCH_V1 = "batch/v1"
_CRONJOBS = r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/cronjobs"


class BatchApi:
    """Mixed into KubeEmulator, which supplies lock, platform, error(), namespaces, resource_version and
    admit_create()."""

    cronjobs: dict[tuple[str, str], dict[str, Any]]

    def reset_batch(self) -> None:
        self.cronjobs = {}

    def add_cronjob(self: KubeEmulator, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Store a CronJob (e.g. one `helm template` rendered) as the API server would after a create: with
        uid, resourceVersion and creationTimestamp. Raises HttpError like the create endpoint."""
        with self.lock:
            return self._create_cronjob(deepcopy(obj), namespace or (obj.get("metadata") or {}).get("namespace"))

    # ---- discovery --------------------------------------------------------------------------------------

    @route("GET", r"/apis/?", "discovery.apis")  # the Python client asks with a trailing slash
    def apis(self, req: Request) -> Response:
        groups = [_batch_group(), *discovery_groups()]  # rbac.py serves the other groups' documents
        return Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})

    @route("GET", r"/apis/batch/?", "discovery.batch")
    def apis_batch(self, req: Request) -> Response:
        return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **_batch_group()})

    @route("GET", r"/apis/batch/v1/?", "discovery.batch.v1")
    def apis_batch_v1(self, req: Request) -> Response:
        cronjobs = {
            "name": "cronjobs",
            "singularName": "cronjob",
            "namespaced": True,
            "kind": "CronJob",
            "verbs": ["create", "get", "list"],
            "shortNames": ["cj"],
            "categories": ["all"],
        }
        return Response(200, {"kind": "APIResourceList", "groupVersion": BATCH_V1, "resources": [cronjobs]})

    # ---- cronjobs ---------------------------------------------------------------------------------------

    @route("GET", _CRONJOBS, "cronjobs.list")
    def list_cronjobs(self: KubeEmulator, req: Request) -> Response:
        with self.lock:
            self._require_namespace(req.params["ns"])
            items = [deepcopy(o) for (ns, _), o in sorted(self.cronjobs.items()) if ns == req.params["ns"]]
            meta = {"resourceVersion": str(self.resource_version)}
            return Response(200, {"kind": "CronJobList", "apiVersion": BATCH_V1, "metadata": meta, "items": items})

    @route("GET", _CRONJOBS + r"/(?P<name>[^/]+)", "cronjobs.get")
    def get_cronjob(self: KubeEmulator, req: Request) -> Response:
        key = (req.params["ns"], req.params["name"])
        with self.lock:
            if key not in self.cronjobs:
                message = f'cronjobs.batch "{key[1]}" not found'
                details = {"name": key[1], "group": "batch", "kind": "cronjobs"}
                raise HttpError(404, self.error(404, "NotFound", message, details).body)
            return Response(200, deepcopy(self.cronjobs[key]))

    @route("POST", _CRONJOBS, "cronjobs.create")
    def create_cronjob(self: KubeEmulator, req: Request) -> Response:
        content_type = (req.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if content_type != "application/json":  # kubectl writes protobuf; only JSON clients can create here
            message = (
                "the body of the request was in an unknown format - accepted media types include: "
                f'application/json (got "{content_type}")'
            )
            raise HttpError(415, self.error(415, "UnsupportedMediaType", message).body)
        try:
            body = req.json()
        except ValueError:
            raise HttpError(400, self.error(400, "BadRequest", "the request body is not valid JSON").body) from None
        if not isinstance(body, dict):
            raise HttpError(400, self.error(400, "BadRequest", "the request body must be a JSON object").body)
        with self.lock:
            return Response(201, self._create_cronjob(body, req.params["ns"]))

    # ---- helpers ----------------------------------------------------------------------------------------

    def _require_namespace(self: KubeEmulator, ns: str | None) -> None:
        if not ns or ns not in self.namespaces:
            raise self._missing(ns or "")

    def _create_cronjob(self: KubeEmulator, obj: dict[str, Any], ns: str | None) -> dict[str, Any]:
        meta = obj.setdefault("metadata", {})
        if obj.get("apiVersion") != BATCH_V1 or obj.get("kind") != "CronJob":
            found = f"{obj.get('apiVersion')}, Kind={obj.get('kind')}"
            raise HttpError(400, self.error(400, "BadRequest", f"expected batch/v1, Kind=CronJob, got {found}").body)
        if meta.get("namespace") not in (None, ns):
            message = "the namespace of the provided object does not match the namespace sent on the request"
            raise HttpError(400, self.error(400, "BadRequest", message).body)
        name = meta.get("name") or ""
        if not name or len(name) > 52:  # 52: the Job name the controller derives appends 11 characters
            message = (
                f'CronJob.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                "must be no more than 52 characters"
            )
            raise HttpError(422, self.error(422, "Invalid", message, {"name": name, "kind": "CronJob"}).body)
        self._require_namespace(ns)
        self.admit_create("cronjobs.batch", str(ns), name)  # NamespaceLifecycle: 403 while Terminating
        if (ns, name) in self.cronjobs:
            details = {"name": name, "group": "batch", "kind": "cronjobs"}
            raise HttpError(
                409, self.error(409, "AlreadyExists", f'cronjobs.batch "{name}" already exists', details).body
            )
        self.resource_version += 1
        meta.update(
            namespace=ns,
            uid=str(uuid.uuid4()),
            resourceVersion=str(self.resource_version),
            generation=1,
            creationTimestamp=self.platform.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        )
        obj.setdefault("status", {})
        self.cronjobs[(str(ns), name)] = obj
        return deepcopy(obj)


def _batch_group() -> dict[str, Any]:
    version = {"groupVersion": BATCH_V1, "version": "v1"}
    return {"name": "batch", "versions": [version], "preferredVersion": version}
