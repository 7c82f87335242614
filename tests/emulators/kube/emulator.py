"""Kubernetes API: namespaces (list with label and field selectors and limit/continue paging, get, create,
delete with finalizers and the Terminating phase, merge/strategic-merge PATCH, the finalize subresource) and
TokenRequest, with bearer auth over TLS; enough for the official Python client via KUBECONFIG.
ServiceAccounts and ConfigMaps are in objects.py, what every object shares (errors, paging, patches) in
meta.py, batch/v1 CronJobs and their discovery (for `kubectl create job --from=cronjob/...`) in batch.py.

Sources: Kubernetes API conventions (Status objects, 404 NotFound / 409 AlreadyExists / 422 Invalid /
410 Expired for a bad continue token), label selector syntax from the k8s.io "Labels and Selectors" page;
kubernetes/kubernetes pkg/registry/core/namespace/storage/storage.go (REST.Delete, ShouldDeleteNamespaceDuringUpdate),
pkg/registry/core/namespace/strategy.go (PrepareForCreate adds the `kubernetes` finalizer; updates keep
spec.finalizers and status), pkg/controller/namespace (content deleted, then the `kubernetes` finalizer removed),
pkg/controller/serviceaccount/serviceaccounts_controller.go (a `default` ServiceAccount in every namespace),
pkg/registry/core/serviceaccount/storage/token.go (TokenRequest needs the ServiceAccount: 404 otherwise).
Not modelled: watch, namespace PUT (405), DeleteOptions preconditions and propagation policies, the
namespace status conditions the controller writes while it deletes content.
"""

from __future__ import annotations

import json
import re
import secrets
from copy import deepcopy
from datetime import timedelta
from typing import Any

from tests.emulators.core import Emulator, HttpError, Request, Response, route
from tests.emulators.kube import meta as m
from tests.emulators.kube import protobuf
from tests.emulators.kube.authn import AuthnApi
from tests.emulators.kube.authz import AuthzApi
from tests.emulators.kube.batch import BatchApi
from tests.emulators.kube.bootstrap import baseline_rbac
from tests.emulators.kube.objects import CoreObjectsApi
from tests.emulators.kube.rbac import RbacApi

DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SELECTOR_TERM = re.compile(
    r"\s*(?:(?P<not>!)\s*(?P<nkey>[\w./-]+)"
    r"|(?P<key>[\w./-]+)(?:\s*(?P<op>==|=|!=)\s*(?P<value>[\w.-]*)"
    r"|\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?)\s*"
)
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
IMMORTAL_NAMESPACES = ("default", "kube-public", "kube-system")
DEFAULTS: dict[str, float] = {"namespace_cleanup_seconds": 5.0}


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


class KubeEmulator(CoreObjectsApi, BatchApi, AuthnApi, RbacApi, AuthzApi, Emulator):
    service = "kube"

    def reset(self) -> None:
        if not hasattr(self, "token"):
            self.token = self.platform.remember_secret(
                secrets.token_urlsafe(32)
            )  # stays valid across resets: the kubeconfig names it
        self.settings = dict(DEFAULTS)
        self.namespaces: dict[str, dict[str, Any]] = {}
        self.deleting: dict[str, float] = {}  # namespace -> emulated time its deletion began
        self.resource_version = 100
        self.reset_objects()
        self.reset_batch()
        self.reset_authn()
        self.reset_rbac()
        b = self.platform.baseline
        for name in (*SYSTEM_NAMESPACES, b.jobs_namespace):
            self._store(name, {})
        for namespace, name in b.service_accounts:
            self.seed_service_account(namespace, name, b.service_account_uid(namespace, name))
        self.load_rbac(baseline_rbac(b))

    def service_account_uid(self, namespace: str, name: str) -> str | None:
        with self.lock:
            account = self.objects["serviceaccounts"].get((namespace, name))
        return None if account is None else str(account["metadata"]["uid"])

    def seed_service_account(self, namespace: str, name: str, uid: str) -> None:
        """A ServiceAccount with a fixed uid: the baseline's, whose tokens the env file names across resets."""
        self.create_object("serviceaccounts", namespace, {"metadata": {"name": name}})
        self.objects["serviceaccounts"][(namespace, name)]["metadata"]["uid"] = uid

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"kube settings are {sorted(DEFAULTS)}; got unknown {unknown}")
        for key, value in settings.items():
            if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{key} must be a number of seconds >= 0")
            self.settings[key] = float(value)
        return dict(self.settings)

    def timestamp(self) -> str:
        return self.platform.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def label_terms(self, req: Request) -> list[tuple[str, str, frozenset[str]]]:
        try:
            return parse_selector(req.q("labelSelector") or "")
        except ValueError as exc:
            raise HttpError(400, self.error(400, "BadRequest", f"unable to parse requirement: {exc}").body) from None

    @staticmethod
    def labels_match(terms: list[tuple[str, str, frozenset[str]]], obj: dict[str, Any]) -> bool:
        return selector_matches(terms, obj["metadata"].get("labels") or {})

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
        if scheme.lower() != "bearer" or not token:
            raise HttpError(401, self.error(401, "Unauthorized", "Unauthorized").body)
        if token == self.token:
            return  # the kubeconfig's user: a cluster admin
        req.user = self.bearer_user(token)  # a service account (OpenBao's token reviewer, a job): authn.py
        self.authorize_request(req, req.user)  # RBAC from the ClusterRoles and bindings held here: authz.py

    def admit(self, req: Request) -> None:
        """A protobuf body (what kubectl sends for built-in kinds) becomes the JSON the handlers read: protobuf.py.
        After authentication, as kube-apiserver decodes in the handler."""
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != protobuf.MEDIA_TYPE or req.method not in ("POST", "PUT"):
            return
        try:
            obj = protobuf.decode(req.body, protobuf.expected_type(req.path))
        except protobuf.DecodeError as exc:
            raise m.bad_request(self, str(exc)) from None
        req.body = json.dumps(obj).encode()
        req.headers.replace_header("Content-Type", "application/json")

    # ---- state ----------------------------------------------------------------------------------------

    def _store(self, name: str, labels: dict[str, str]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "kind": "Namespace",
            "apiVersion": "v1",
            "metadata": {"name": name, "labels": {**labels, "kubernetes.io/metadata.name": name}},
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
        m.stamp(self, obj["metadata"])
        self.namespaces[name] = obj
        # The serviceaccounts controller creates "default" in every new namespace.
        self.create_object("serviceaccounts", name, {"metadata": {"name": "default"}})
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

    # The cluster's OIDC issuer discovery document, as AKS publishes it at the issuer URL and the kube-apiserver
    # serves it (ServiceAccountIssuerDiscovery, pkg/serviceaccount/openidmetadata.go: issuer, jwks_uri, and the
    # three supported lists). The issuer hosts (oidc.aks.emulator.test, any other a test names) do not resolve,
    # so the document of issuer https://<host>/<path> is served here at /_issuer/<host>/<path>; the issuer it
    # names keeps AKS's trailing slash, whatever the request's spelling.
    @route("GET", r"/_issuer/(?P<host>[^/]+)/(?P<path>(?:[^/]+/)*)\.well-known/openid-configuration", "discovery.oidc")
    def oidc_discovery(self, req: Request) -> Response:
        issuer = f"https://{req.params['host']}/{req.params['path']}"
        return Response(
            200,
            {
                "issuer": issuer,
                "jwks_uri": f"{issuer}openid/v1/jwks",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
            },
        )

    @route("GET", r"/version", "discovery.version")
    def version(self, req: Request) -> Response:
        return Response(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0-emulator", "platform": "linux/amd64"})

    @route("GET", r"/api", "discovery.api")
    def api(self, req: Request) -> Response:
        return Response(200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []})

    @route("GET", r"/api/v1/?", "discovery.v1")  # the Python client asks with a trailing slash
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
                        "verbs": ["create", "delete", "get", "list", "patch"],
                        "shortNames": ["ns"],
                    },
                    {
                        "name": "namespaces/finalize",
                        "singularName": "",
                        "namespaced": False,
                        "kind": "Namespace",
                        "verbs": ["update"],
                    },
                    {
                        "name": "serviceaccounts",
                        "singularName": "serviceaccount",
                        "namespaced": True,
                        "kind": "ServiceAccount",
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
                        "shortNames": ["sa"],
                    },
                    {
                        "name": "configmaps",
                        "singularName": "configmap",
                        "namespaced": True,
                        "kind": "ConfigMap",
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
                        "shortNames": ["cm"],
                    },
                    {
                        "name": "secrets",
                        "singularName": "secret",
                        "namespaced": True,
                        "kind": "Secret",
                        "verbs": ["create", "delete", "get", "list", "patch", "update"],
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
        terms = self.label_terms(req)
        fields = m.parse_field_selector(
            self, req.q("fieldSelector"), ("metadata.name", "status.phase"), "field label not supported: {label}"
        )
        with self.lock:
            keyed = [
                (name, obj)
                for name, obj in self.namespaces.items()
                if self.labels_match(terms, obj)
                and m.field_matches(fields, {"metadata.name": name, "status.phase": obj["status"]["phase"]})
            ]
            return Response(200, m.page(self, req, keyed, "NamespaceList"))

    @route("POST", r"/api/v1/namespaces", "namespaces.create")
    def create_namespace(self, req: Request) -> Response:
        body = m.json_body(self, req)
        m.check_identity(self, body, "Namespace", None, None)
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
            labels = m.string_map(self, meta.get("labels"), "metadata.labels")
            obj = self._store(name, labels)
            extra = {k: meta[k] for k in ("annotations", "finalizers") if meta.get(k)}
            obj["metadata"].update(deepcopy(extra))
            # namespaceStrategy.PrepareForCreate: spec.finalizers as sent, plus "kubernetes" when missing.
            sent = list((body.get("spec") or {}).get("finalizers") or [])
            obj["spec"]["finalizers"] = sent + [f for f in ["kubernetes"] if f not in sent]
            return Response(201, deepcopy(obj))

    @route("GET", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespaces.get")
    def get_namespace(self, req: Request) -> Response:
        with self.lock:
            return Response(200, deepcopy(self._namespace(req.params["name"])))

    @route("DELETE", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespaces.delete")
    def delete_namespace(self, req: Request) -> Response:
        # pkg/registry/core/namespace/storage/storage.go REST.Delete: the first DELETE sets deletionTimestamp and
        # phase Terminating and answers 200 with the object; a later DELETE while spec.finalizers is not empty
        # answers the object again (200). The namespace controller (namespace_controller below) does the rest.
        name = req.params["name"]
        if name in IMMORTAL_NAMESPACES:  # the NamespaceLifecycle admission plugin
            details = {"name": name, "kind": "namespaces"}
            message = f'namespaces "{name}" is forbidden: this namespace may not be deleted'
            raise m.status_error(self, 403, "Forbidden", message, details)
        with self.lock:
            obj = self._namespace(name)
            if not obj["metadata"].get("deletionTimestamp"):
                obj["metadata"]["deletionTimestamp"] = self.timestamp()
                obj["status"]["phase"] = "Terminating"
                self.deleting[obj["metadata"]["name"]] = self.platform.clock.timestamp()
                m.bump(self, obj)
            answer = deepcopy(obj)
            self._purge_if_finalized(obj["metadata"]["name"])
            return Response(200, answer)

    @route("PATCH", r"/api/v1/namespaces/(?P<name>[^/]+)", "namespaces.patch")
    def patch_namespace(self, req: Request) -> Response:
        # namespaceStrategy.PrepareForUpdate keeps spec.finalizers and status: only /finalize changes the former.
        with self.lock:
            old = self._namespace(req.params["name"])
            new = m.apply_patch(self, req, old)
            m.check_identity(self, new, "Namespace", req.params["name"], None)
            new["spec"], new["status"] = deepcopy(old["spec"]), deepcopy(old["status"])
            return Response(200, self._update_namespace(old, new))

    @route("PUT", r"/api/v1/namespaces/(?P<name>[^/]+)/finalize", "namespaces.finalize")
    def finalize_namespace(self, req: Request) -> Response:
        # The finalize subresource (FinalizeREST, namespaceFinalizeStrategy): spec.finalizers from the body, status
        # kept; with no finalizer left on a namespace being deleted, the object is gone
        # (ShouldDeleteNamespaceDuringUpdate). It answers 200 with the object as written.
        body = m.json_body(self, req)
        m.check_identity(self, body, "Namespace", req.params["name"], None)
        finalizers = (body.get("spec") or {}).get("finalizers") or []
        if not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers):
            raise m.bad_request(self, "spec.finalizers: expected a list of strings")
        with self.lock:
            old = self._namespace(req.params["name"])
            new = deepcopy(body)
            new["spec"], new["status"] = {**(body.get("spec") or {}), "finalizers": finalizers}, deepcopy(old["status"])
            return Response(200, self._update_namespace(old, new))

    def _update_namespace(self, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        name = old["metadata"]["name"]
        m.require_version(self, "namespaces", old, new)
        new["metadata"]["labels"] = m.string_map(self, new["metadata"].get("labels"), "metadata.labels")
        m.finalizer_growth(self, "Namespace", old, new)
        m.carry_server_metadata(old, new)
        new["metadata"]["labels"]["kubernetes.io/metadata.name"] = name  # namespaceStrategy.Canonicalize
        m.bump(self, new)
        self.namespaces[name] = new
        answer = deepcopy(new)
        self._purge_if_finalized(name)
        return answer

    def _namespace(self, name: str) -> dict[str, Any]:
        if name not in self.namespaces:
            raise self._missing(name)
        return self.namespaces[name]

    # ---- the namespace controller, evaluated lazily on every request -------------------------------------------

    def dispatch(self, req: Request) -> Response:
        with self.lock:
            self.namespace_controller()
        return super().dispatch(req)

    def namespace_controller(self) -> None:
        """pkg/controller/namespace/deletion/namespaced_resources_deleter.go: once a namespace is being deleted,
        delete its content, then remove the `kubernetes` spec finalizer (PUT .../finalize), then delete the
        namespace when no finalizer is left. Here the content goes `namespace_cleanup_seconds` of emulated time
        after deletionTimestamp; other finalizers (spec or metadata) keep the namespace Terminating."""
        now = self.platform.clock.timestamp()
        for name, since in list(self.deleting.items()):
            obj = self.namespaces.get(name)
            if obj is None:
                self.deleting.pop(name, None)
                continue
            finalizers = obj["spec"].get("finalizers") or []
            if "kubernetes" in finalizers and now - since >= self.settings["namespace_cleanup_seconds"]:
                self.drop_namespace_content(name)
                obj["spec"]["finalizers"] = [f for f in finalizers if f != "kubernetes"]
                m.bump(self, obj)
            self._purge_if_finalized(name)

    def _purge_if_finalized(self, name: str) -> None:
        obj = self.namespaces.get(name)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        if not obj["spec"].get("finalizers") and not obj["metadata"].get("finalizers"):
            self.drop_namespace_content(name)
            del self.namespaces[name]
            self.deleting.pop(name, None)
            self.resource_version += 1

    @route(
        "POST",
        r"/api/v1/namespaces/(?P<ns>[^/]+)/serviceaccounts/(?P<name>[^/]+)/token",
        "tokenrequest.create",
    )
    def token_request(self, req: Request) -> Response:
        body = req.json() or {}
        spec = body.get("spec") or {}
        with self.lock:
            self.admit_create("serviceaccounts", req.params["ns"], req.params["name"])
            if (req.params["ns"], req.params["name"]) not in self.objects["serviceaccounts"]:
                raise m.not_found(self, "serviceaccounts", req.params["name"])
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
