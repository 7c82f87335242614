"""Kubernetes batch/v1 CronJobs and Jobs for the emulator: API discovery (`/apis`, `/apis/batch`,
`/apis/batch/v1`) and namespaced get/list (label selectors)/create of both, which is what `kubectl create job
--from=cronjob/NAME JOB` needs (it maps the resource through discovery, GETs the CronJob, builds the Job itself
with an ownerReference to it and POSTs it as protobuf, decoded by protobuf.py; with --dry-run=client nothing
is written) and what `kubectl get jobs` then lists. No controller runs: a Job never gets a Pod or a status
condition, so `kubectl wait job/...` times out and `kubectl logs job/...` finds no pod; neither can be
rehearsed here.

Sources: Kubernetes API conventions (Status objects; 404 NotFound, 409 AlreadyExists, 422 Invalid, 415
UnsupportedMediaType), the APIGroupList/APIGroup/APIResourceList shapes served by kube-apiserver, and
staging/src/k8s.io/kubectl/pkg/cmd/create/create_job.go (createJobFromCronJob).
Not modelled: the Job and CronJob controllers (no Pods, no status), update, patch, delete and watch (405),
field validation and server-side defaulting of the specs (an object is stored as sent, plus
uid/resourceVersion/creationTimestamp; the Job's selector and controller-uid labels are not added), the
aggregated discovery format (kubectl falls back to the plain lists served here), Table responses (`kubectl get`
prints NAME and AGE only), and the OpenAPI documents (404: `kubectl create -f` fails its validation download).
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
_NS = r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)"
KINDS = {"cronjobs": "CronJob", "jobs": "Job"}


class BatchApi:
    """Mixed into KubeEmulator, which supplies lock, platform, error(), namespaces, resource_version and
    admit_create()."""

    cronjobs: dict[tuple[str, str], dict[str, Any]]
    jobs: dict[tuple[str, str], dict[str, Any]]

    def reset_batch(self) -> None:
        self.cronjobs, self.jobs = {}, {}

    def add_cronjob(self: KubeEmulator, obj: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Store a CronJob (e.g. one `helm template` rendered) as the API server would after a create: with
        uid, resourceVersion and creationTimestamp. Raises HttpError like the create endpoint."""
        with self.lock:
            ns = namespace or (obj.get("metadata") or {}).get("namespace")
            return self._create_batch("cronjobs", deepcopy(obj), ns)

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
        jobs = {**cronjobs, "name": "jobs", "singularName": "job", "kind": "Job", "shortNames": []}
        resources = [cronjobs, jobs]
        return Response(200, {"kind": "APIResourceList", "groupVersion": BATCH_V1, "resources": resources})

    # ---- cronjobs ---------------------------------------------------------------------------------------

    @route("GET", _NS + r"/cronjobs", "cronjobs.list")
    @route("GET", _NS + r"/jobs", "jobs.list")
    def list_batch(self: KubeEmulator, req: Request) -> Response:
        resource, terms = req.op.split(".")[0], self.label_terms(req)
        with self.lock:
            self._require_namespace(req.params["ns"])
            store = self._batch_store(resource)
            items = [
                deepcopy(o)
                for (ns, _), o in sorted(store.items())
                if ns == req.params["ns"] and self.labels_match(terms, o)
            ]
            meta = {"resourceVersion": str(self.resource_version)}
            kind = KINDS[resource] + "List"
            return Response(200, {"kind": kind, "apiVersion": BATCH_V1, "metadata": meta, "items": items})

    @route("GET", _NS + r"/cronjobs/(?P<name>[^/]+)", "cronjobs.get")
    @route("GET", _NS + r"/jobs/(?P<name>[^/]+)", "jobs.get")
    def get_batch(self: KubeEmulator, req: Request) -> Response:
        resource, key = req.op.split(".")[0], (req.params["ns"], req.params["name"])
        with self.lock:
            store = self._batch_store(resource)
            if key not in store:
                message = f'{resource}.batch "{key[1]}" not found'
                details = {"name": key[1], "group": "batch", "kind": resource}
                raise HttpError(404, self.error(404, "NotFound", message, details).body)
            return Response(200, deepcopy(store[key]))

    @route("POST", _NS + r"/cronjobs", "cronjobs.create")
    @route("POST", _NS + r"/jobs", "jobs.create")
    def create_batch(self: KubeEmulator, req: Request) -> Response:
        # A protobuf body arrives here already decoded to JSON (KubeEmulator.admit); anything else is refused.
        content_type = (req.headers.get("Content-Type") or "application/json").split(";")[0].strip()
        if content_type != "application/json":
            message = (
                "the body of the request was in an unknown format - accepted media types include: "
                f'application/json, application/yaml, application/vnd.kubernetes.protobuf (got "{content_type}")'
            )
            raise HttpError(415, self.error(415, "UnsupportedMediaType", message).body)
        try:
            body = req.json()
        except ValueError:
            raise HttpError(400, self.error(400, "BadRequest", "the request body is not valid JSON").body) from None
        if not isinstance(body, dict):
            raise HttpError(400, self.error(400, "BadRequest", "the request body must be a JSON object").body)
        with self.lock:
            return Response(201, self._create_batch(req.op.split(".")[0], body, req.params["ns"]))

    # ---- helpers ----------------------------------------------------------------------------------------

    def _require_namespace(self: KubeEmulator, ns: str | None) -> None:
        if not ns or ns not in self.namespaces:
            raise self._missing(ns or "")

    def _batch_store(self: KubeEmulator, resource: str) -> dict[tuple[str, str], dict[str, Any]]:
        return self.cronjobs if resource == "cronjobs" else self.jobs

    def _create_batch(self: KubeEmulator, resource: str, obj: dict[str, Any], ns: str | None) -> dict[str, Any]:
        meta, kind = obj.setdefault("metadata", {}), KINDS[resource]
        if obj.get("apiVersion") != BATCH_V1 or obj.get("kind") != kind:
            found = f"{obj.get('apiVersion')}, Kind={obj.get('kind')}"
            raise HttpError(400, self.error(400, "BadRequest", f"expected batch/v1, Kind={kind}, got {found}").body)
        if meta.get("namespace") not in (None, ns):
            message = "the namespace of the provided object does not match the namespace sent on the request"
            raise HttpError(400, self.error(400, "BadRequest", message).body)
        name = meta.get("name") or ""
        # 52: the Job name the CronJob controller derives appends 11 characters; a Job's is a label value (63)
        if not name or len(name) > (52 if kind == "CronJob" else 63):
            message = (
                f'{kind}.batch "{name}" is invalid: metadata.name: Invalid value: "{name}": '
                f"must be no more than {52 if kind == 'CronJob' else 63} characters"
            )
            raise HttpError(422, self.error(422, "Invalid", message, {"name": name, "kind": kind}).body)
        self._require_namespace(ns)
        self.admit_create(f"{resource}.batch", str(ns), name)  # NamespaceLifecycle: 403 while Terminating
        store = self._batch_store(resource)
        if (ns, name) in store:
            details = {"name": name, "group": "batch", "kind": resource}
            raise HttpError(
                409, self.error(409, "AlreadyExists", f'{resource}.batch "{name}" already exists', details).body
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
        store[(str(ns), name)] = obj
        return deepcopy(obj)


def _batch_group() -> dict[str, Any]:
    version = {"groupVersion": BATCH_V1, "version": "v1"}
    return {"name": "batch", "versions": [version], "preferredVersion": version}
