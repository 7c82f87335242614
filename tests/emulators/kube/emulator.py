"""Kubernetes API: namespaces (list with label selectors and limit/continue paging, get, create, delete)
and TokenRequest, with bearer auth over TLS; enough for the official Python client via KUBECONFIG.
batch/v1 CronJobs and their discovery (for `kubectl create job --from=cronjob/...`) are in batch.py.

Sources: Kubernetes API conventions (Status objects, 404 NotFound / 409 AlreadyExists / 422 Invalid /
410 Expired for a bad continue token), label selector syntax from the k8s.io "Labels and Selectors" page.
Not modelled: service-account objects (TokenRequest only needs the namespace to exist), watch, patch.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from datetime import timedelta
from typing import Any

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.kube.batch import BatchApi

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SELECTOR_TERM = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[\w./-]+)"
    r"|(?P<key>[\w./-]+)(?:\s*(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*"
)
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def parse_selector(text: str) -> list[tuple[str, str, frozenset[str]]]:
    """`a=b,c!=d,e in (x,y),f notin (z),g,!h` -> [(key, op, values)]. Raises ValueError."""
    terms: list[tuple[str, str, frozenset[str]]] = []
    rest = text.strip()
    while rest:
        m = _SELECTOR_TERM.match(rest)
        if not m or m.end() == 0:
            raise ValueError(f"unable to parse requirement: {rest!r}")
        if m["not"]:
            terms.append((m["nkey"], "!", frozenset()))
        elif m["setop"]:
            terms.append((m["key"], m["setop"], frozenset(v.strip() for v in m["values"].split(",") if v.strip())))
        elif m["op"]:
            terms.append((m["key"], "!=" if m["op"] == "!=" else "=", frozenset({m["value"]})))
        else:
            terms.append((m["key"], "exists", frozenset()))
        rest = rest[m.end() :]
        if rest.startswith(","):
            rest = rest[1:]
        elif rest:
            raise ValueError(f"unable to parse requirement: {rest!r}")
    return terms


def selector_matches(terms: list[tuple[str, str, frozenset[str]]], labels: dict[str, str]) -> bool:
    for key, op, values in terms:
        present, value = key in labels, labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": not present or value not in values,
            "notin": not present or value not in values,
            "exists": present,
            "!": not present,
        }[op]
        if not ok:
            return False
    return True


class KubeEmulator(BatchApi, Emulator):
    service = "kube"

    def reset(self) -> None:
        if not hasattr(self, "token"):
            self.token = self.platform.remember_secret(
                secrets.token_urlsafe(32)
            )  # stays valid across resets: the kubeconfig names it
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.resource_version = 100
        for name in (*SYSTEM_NAMESPACES, self.platform.baseline.jobs_namespace):
            self._store(name, {})
        self.reset_batch()

    def kubeconfig(self, ca_path: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "emulator",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url, "certificate-authority": ca_path}}],
            "users": [{"name": "emulator", "user": {"token": self.token}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
        }

    # ---- dialect --------------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": code,
            "code": status,
        }
        if details:
            body["details"] = details
        return Response(status, body)

    def not_found(self, req: Request) -> Response:
        return self.error(404, "NotFound", "the server could not find the requested resource")

    def method_not_allowed(self, req: Request) -> Response:
        return self.error(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    def authenticate(self, req: Request) -> None:
        if req.op.startswith("discovery"):
            return
        # The auth scheme is case-insensitive (RFC 9110 §11.1); the client's in-cluster config sends "bearer".
        scheme, _, token = (req.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            raise HttpError(401, self.error(401, "Unauthorized", "Unauthorized").body)

    # ---- state ----------------------------------------------------------------------------------------

    def _store(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        self.resource_version += 1
        obj = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {
                "name": name,
                "uid": str(uuid.uuid4()),
                "resourceVersion": str(self.resource_version),
                "creationTimestamp": self.platform.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
                "labels": {**labels, "kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        self.namespaces[name] = obj
        return obj

    def seed_namespaces(self, names: list[str], labels: dict[str, str] | None = None) -> None:
        """Create namespaces directly, without the API: benches seed thousands (tests/bench)."""
        with self.lock:
            for name in names:
                self._store(name, dict(labels or {}))

    def _missing(self, name: str) -> HttpError:
        resp = self.error(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})
        return HttpError(404, resp.body)

    # ---- routes ---------------------------------------------------------------------------------------

    @route("GET", r"/version", "discovery.version")
    def version(self, req: Request) -> Response:
        return Response(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulator", "platform": "linux/amd64"})

    @route("GET", r"/api", "discovery.api")
    def api(self, req: Request) -> Response:
        return Response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    @route("GET", r"/api/v1", "discovery.v1")
    def api_v1(self, req: Request) -> Response:
        return Response(
            200,
            {
                "kind": "APIResourceList",
                "groupVersion": "v1",
                "resources": [
                    {
                        "name": "namespaces",
                        "singularName": "namespace",
                        "namespaced": False,
                        "kind": "Namespace",
                        "verbs": ["create", "delete", "get", "list"],
                        "shortNames": ["ns"],
                    },
                    {
                        "name": "serviceaccounts/token",
                        "singularName": "",
                        "namespaced": True,
                        "kind": "TokenRequest",
                        "group": "authentication.k8s.io",
                        "version": "v1",
                        "verbs": ["create"],
                    },
                ],
            },
        )

    @route("GET", r"/api/v1/namespaces", "namespaces.list")
    def list_namespaces(self, req: Request) -> Response:
        try:
            terms = parse_selector(req.q("labelSelector") or "")
        except ValueError as exc:
            raise HttpError(400, self.error(400, "BadRequest", f"unable to parse requirement: {exc}").body) from None
        with self.lock:
            names = sorted(self.namespaces)
            start = self._decode_continue(req.q("continue"))
            matching = [
                self.namespaces[n]
                for n in names
                if n > start and selector_matches(terms, self.namespaces[n]["metadata"]["labels"])
            ]
            limit = int(req.q("limit") or 0)
            page = matching[:limit] if limit > 0 else matching
            meta: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
            if limit > 0 and len(matching) > limit:
                meta["continue"] = self._encode_continue(page[-1]["metadata"]["name"])
                meta["remainingItemCount"] = len(matching) - limit
            return Response(200, {"kind": "NamespaceList", "apiVersion": "v1", "metadata": meta, "items": page})

    def _encode_continue(self, last: str) -> str:
        return base64.urlsafe_b64encode(json.dumps({"v": "meta.k8s.io/v1", "start": last}).encode()).decode()

    def _decode_continue(self, token: str | None) -> str:
        if not token:
            return ""
        try:
            return str(json.loads(base64.urlsafe_b64decode(token.encode()))["start"])
        except (binascii.Error, ValueError, KeyError, TypeError):
            body = self.error(
                410,
                "Expired",
                "The provided continue parameter is too old to display a consistent "
                "list result. You can start a new list without the continue parameter.",
            ).body
            raise HttpError(410, body) from None

    @route("POST", r"/api/v1/namespaces", "namespaces.create")
    def create_namespace(self, req: Request) -> Response:
        body = req.json() or {}
        meta = body.get("metadata") or {}
        name = meta.get("name", "")
        if not name or len(name) > 63 or not DNS1123_LABEL.fullmatch(name):
            message = (
                f'Namespace "{name}" is invalid: metadata.name: Invalid value: "{name}": a lowercase RFC 1123 '
                "label must consist of lower case alphanumeric characters or '-', and must start and end with "
                "an alphanumeric character"
            )
            raise HttpError(422, self.error(422, "Invalid", message, {"name": name, "kind": "Namespace"}).body)
        with self.lock:
            if name in self.namespaces:
                message = f'namespaces "{name}" already exists'
                raise HttpError(
                    409, self.error(409, "AlreadyExists", message, {"name": name, "kind": "namespaces"}).body
                )
            return Response(201, self._store(name, dict(meta.get("labels") or {})))

    @route("GET", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespaces.get")
    def get_namespace(self, req: Request) -> Response:
        with self.lock:
            if req.params["name"] not in self.namespaces:
                raise self._missing(req.params["name"])
            return Response(200, self.namespaces[req.params["name"]])

    @route("DELETE", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespaces.delete")
    def delete_namespace(self, req: Request) -> Response:
        # The real API answers with the object in phase Terminating; finalizers here complete at once.
        with self.lock:
            obj = self.namespaces.pop(req.params["name"], None)
            if obj is None:
                raise self._missing(req.params["name"])
            self.resource_version += 1
            obj["metadata"]["deletionTimestamp"] = self.platform.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
            obj["status"]["phase"] = "Terminating"
            return Response(200, obj)

    @route(
        "POST",
        r"/api/v1/namespaces/(?P<ns>[^/]+)/serviceaccounts/(?P<name>[^/]+)/token",
        "tokenrequest.create",
    )
    def token_request(self, req: Request) -> Response:
        body = req.json() or {}
        spec = body.get("spec") or {}
        with self.lock:
            if req.params["ns"] not in self.namespaces:
                raise self._missing(req.params["ns"])
        seconds = int(spec.get("expirationSeconds") or 3600)
        if seconds < 600:
            raise HttpError(
                422,
                self.error(
                    422,
                    "Invalid",
                    "spec.expirationSeconds: Invalid value: may not specify a duration less than 10 minutes",
                ).body,
            )
        audiences = spec.get("audiences") or ["https://kubernetes.default.svc.cluster.local"]
        token = self.platform.service_account_jwt(
            req.params["ns"], req.params["name"], audiences, timedelta(seconds=seconds)
        )
        expires = self.platform.clock.now() + timedelta(seconds=seconds)
        return Response(
            201,
            {
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": req.params["name"], "namespace": req.params["ns"]},
                "spec": {"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": None},
                "status": {"token": token, "expirationTimestamp": expires.strftime("%Y-%m-%dT%H:%M:%SZ")},
            },
        )
