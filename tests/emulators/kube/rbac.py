"""rbac.authorization.k8s.io/v1 ClusterRoles and ClusterRoleBindings for the Kubernetes emulator: create, get,
list (label selectors, limit/continue), replace (PUT, resourceVersion conflicts), patch (json-patch, the Python
client's default, merge and strategic merge: RBAC lists have no merge keys, so they replace), delete; with the API
server's escalation prevention for callers that are not cluster admins.

Sources (kubernetes/kubernetes):
- pkg/apis/rbac/validation/validation.go: names are path segments (not `.`/`..`, no `/` or `%`); every rule needs
  verbs, resource rules an api group and a resource; a binding's roleRef is `rbac.authorization.k8s.io` /
  `ClusterRole` with a name, and cannot change (`roleRef: Invalid value: ...: cannot change roleRef`); subjects
  need a name, a ServiceAccount a namespace and api group "", Users and Groups `rbac.authorization.k8s.io`.
- pkg/apis/rbac/v1/defaults.go: roleRef.apiGroup and User/Group subjects' apiGroup default to the RBAC group.
- pkg/registry/rbac/clusterrole/policybased/storage.go and clusterrolebinding/policybased/storage.go,
  pkg/registry/rbac/escalation_check.go: system:masters, or `escalate` on clusterroles (named as in the URL, so
  none on a create), lets a role be written; else the caller must already hold every permission it grants
  (validation/rule.go ConfirmNoEscalation: 403 `clusterroles.rbac.authorization.k8s.io "<name>" is forbidden: user
  "<u>" (groups=[...]) is attempting to grant RBAC permissions not currently held:` + one compact rule per line).
  A binding needs `bind` on the role it names (`clusterroles`, resourceName = roleRef.name) or the role's
  permissions; a missing role is 403 with `clusterrole.rbac.authorization.k8s.io "<name>" not found`. An update
  that changes only ownerReferences/finalizers skips the checks (IsOnlyMutatingGCFields).
- RBAC storage answers DELETE with a Success Status. DeleteOptions.preconditions (uid, resourceVersion) that do
  not match the stored object: 409 Conflict `Operation cannot be fulfilled on <resource>.<group> "<name>":
  Precondition failed: ResourceVersion in precondition: <p>, ResourceVersion in object meta: <v>`
  (staging/src/k8s.io/apiserver/pkg/storage/interfaces.go Preconditions.Check, NewInvalidObjError, which
  registry/generic/registry/store.go turns into NewConflict).
Not modelled: Roles and RoleBindings over the API (seed them with load_rbac), aggregationRule, deletecollection,
watch; Roles/RoleBindings in discovery.
"""

from __future__ import annotations

import json
from copy import deepcopy
from typing import TYPE_CHECKING, Any

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.kube import jsonpatch
from tests.emulators.kube import meta as m
from tests.emulators.kube.authn import go_quote_list
from tests.emulators.kube.authz import Attributes, service_account_groups
from tests.emulators.kube.rbac_rules import (
    KINDS,
    RBAC_GROUP,
    RBAC_V1,
    breakdown,
    check_identity,
    compact_strings,
    covers,
    discovery_groups,
    normalized,
    only_gc_fields,
    resource_list,
    role_ref_text,
    validate,
)

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

JSON_PATCH = "application/json-patch+json"
_BASE = r"/apis/rbac\.authorization\.k8s\.io/v1/(?P<resource>clusterroles|clusterrolebindings)"


class RbacApi:
    """Mixed into KubeEmulator (lock, error(), resource_version, label selectors, authorize())."""

    rbac: dict[str, dict[str, dict[str, Any]]]
    roles: dict[tuple[str, str], dict[str, Any]]
    role_bindings: dict[tuple[str, str], dict[str, Any]]

    def reset_rbac(self) -> None:
        self.rbac = {resource: {} for resource in KINDS}
        self.roles, self.role_bindings = {}, {}

    def load_rbac(self: KubeEmulator, objects: list[dict[str, Any]]) -> None:
        """Store ClusterRoles, ClusterRoleBindings, Roles and RoleBindings as a cluster admin would apply them
        (e.g. what `helm template` renders for the chart): defaulted and validated, no escalation check."""
        with self.lock:
            for obj in objects:
                kind, meta = obj.get("kind"), obj.get("metadata") or {}
                if kind in ("Role", "RoleBinding"):
                    stored = deepcopy(obj)
                    m.stamp(self, stored.setdefault("metadata", {}))
                    store = self.roles if kind == "Role" else self.role_bindings
                    store[(meta.get("namespace") or "default", meta["name"])] = stored
                    continue
                resource = {v: k for k, v in KINDS.items()}[str(kind)]
                self.rbac[resource].pop(meta.get("name"), None)
                self._rbac_create(resource, deepcopy(obj), None)

    # ---- routes ---------------------------------------------------------------------------------------------

    @route("GET", r"/apis/(?P<group>rbac\.authorization\.k8s\.io|authorization\.k8s\.io)/?", "discovery.group")
    def discovery_group(self, req: Request) -> Response:
        (entry,) = [g for g in discovery_groups() if g["name"] == req.params["group"]]
        return Response(200, {"kind": "APIGroup", "apiVersion": "v1", **entry})

    @route("GET", r"/apis/(?P<group>rbac\.authorization\.k8s\.io|authorization\.k8s\.io)/v1/?", "discovery.group.v1")
    def discovery_resources(self, req: Request) -> Response:
        return Response(200, resource_list(req.params["group"]))

    @route("GET", _BASE, "rbac.list")
    def list_rbac(self: KubeEmulator, req: Request) -> Response:
        resource = req.params["resource"]
        labels = self.label_terms(req)
        fields = m.parse_field_selector(self, req.q("fieldSelector"), ("metadata.name",), m.META_FIELDS_ONLY)
        with self.lock:
            keyed = [
                (name, obj)
                for name, obj in self.rbac[resource].items()
                if self.labels_match(labels, obj) and m.field_matches(fields, m.object_fields(obj))
            ]
            listed = m.page(self, req, keyed, KINDS[resource] + "List")
        listed["apiVersion"] = RBAC_V1
        return Response(200, listed)

    @route("POST", _BASE, "rbac.create")
    def create_rbac(self: KubeEmulator, req: Request) -> Response:
        resource = req.params["resource"]
        body = m.json_body(self, req)
        check_identity(self, body, KINDS[resource], None)
        with self.lock:
            return Response(201, self._rbac_create(resource, body, req.user))

    @route("GET", _BASE + r"/(?P<name>[^/]+)", "rbac.get")
    def get_rbac(self: KubeEmulator, req: Request) -> Response:
        with self.lock:
            return Response(200, deepcopy(self._existing_rbac(req)))

    @route("PUT", _BASE + r"/(?P<name>[^/]+)", "rbac.replace")
    def replace_rbac(self: KubeEmulator, req: Request) -> Response:
        body = m.json_body(self, req)
        check_identity(self, body, KINDS[req.params["resource"]], req.params["name"])
        with self.lock:
            return Response(200, self._rbac_update(req.params["resource"], self._existing_rbac(req), body, req.user))

    @route("PATCH", _BASE + r"/(?P<name>[^/]+)", "rbac.patch")
    def patch_rbac(self: KubeEmulator, req: Request) -> Response:
        with self.lock:
            old = self._existing_rbac(req)
            patched = self._rbac_patched(req, old)
            check_identity(self, patched, KINDS[req.params["resource"]], req.params["name"])
            return Response(200, self._rbac_update(req.params["resource"], old, patched, req.user))

    @route("DELETE", _BASE + r"/(?P<name>[^/]+)", "rbac.delete")
    def delete_rbac(self: KubeEmulator, req: Request) -> Response:
        with self.lock:
            obj = self._existing_rbac(req)
            check_delete_preconditions(self, req, obj)
            del self.rbac[req.params["resource"]][req.params["name"]]
            self.resource_version += 1
            status = m.delete_status(req.params["resource"], obj)
            status["details"]["group"] = RBAC_GROUP
            return Response(200, status)

    # ---- store --------------------------------------------------------------------------------------------

    def _existing_rbac(self: KubeEmulator, req: Request) -> dict[str, Any]:
        obj = self.rbac[req.params["resource"]].get(req.params["name"])
        if obj is None:
            details = {"name": req.params["name"], "group": RBAC_GROUP, "kind": req.params["resource"]}
            message = f'{req.params["resource"]}.{RBAC_GROUP} "{req.params["name"]}" not found'
            raise m.status_error(self, 404, "NotFound", message, details)
        return obj

    def _rbac_create(self: KubeEmulator, resource: str, body: dict[str, Any], user: str | None) -> dict[str, Any]:
        obj = normalized(self, resource, body)
        name = obj["metadata"].get("name") or ""
        validate(self, resource, obj)
        self._check_escalation(resource, name, obj, None, user)
        if name in self.rbac[resource]:
            details = {"name": name, "group": RBAC_GROUP, "kind": resource}
            raise m.status_error(
                self, 409, "AlreadyExists", f'{resource}.{RBAC_GROUP} "{name}" already exists', details
            )
        obj["metadata"] = {
            k: v for k, v in obj["metadata"].items() if k in (*m.USER_METADATA, "name") and v is not None
        }
        check_size(obj)
        m.stamp(self, obj["metadata"])
        self.rbac[resource][name] = obj
        return deepcopy(obj)

    def _rbac_update(
        self: KubeEmulator, resource: str, old: dict[str, Any], new: dict[str, Any], user: str | None
    ) -> dict[str, Any]:
        m.require_version(self, f"{resource}.{RBAC_GROUP}", old, new)
        new = normalized(self, resource, new)
        validate(self, resource, new)
        if resource == "clusterrolebindings" and new.get("roleRef") != old.get("roleRef"):
            go = role_ref_text(new.get("roleRef") or {})
            cause = ("FieldValueInvalid", "roleRef", f"roleRef: Invalid value: {go}: cannot change roleRef")
            raise m.invalid(self, KINDS[resource], old["metadata"]["name"], [cause])
        if not only_gc_fields(old, new):
            self._check_escalation(resource, old["metadata"]["name"], new, old, user)
        m.carry_server_metadata(old, new)
        new["kind"], new["apiVersion"] = KINDS[resource], RBAC_V1
        check_size(new)
        m.bump(self, new)
        self.rbac[resource][old["metadata"]["name"]] = new
        return deepcopy(new)

    def _rbac_patched(self: KubeEmulator, req: Request, old: dict[str, Any]) -> dict[str, Any]:
        content_type = (req.headers.get("Content-Type") or "").split(";")[0].strip()
        if content_type != JSON_PATCH:
            return m.apply_patch(self, req, old)
        try:
            return jsonpatch.apply(old, req.json())
        except ValueError as exc:
            raise m.bad_request(self, str(exc)) from None
        except jsonpatch.PatchError as exc:
            raise m.status_error(self, 422, "Invalid", str(exc)) from None

    # ---- escalation prevention ------------------------------------------------------------------------------

    def _check_escalation(
        self: KubeEmulator,
        resource: str,
        name: str,
        new: dict[str, Any],
        old: dict[str, Any] | None,
        user: str | None,
    ) -> None:
        if user is None:  # the kubeconfig's admin: system:masters (escalation_check.go EscalationAllowed)
            return
        groups = service_account_groups(user)
        if resource == "clusterroles":
            url_name = name if old is not None else ""  # a create's request names no object
            if (
                self.authorize(Attributes(user, groups, "escalate", RBAC_GROUP, "clusterroles", name=url_name))
                is not None
            ):
                return
            self._confirm_no_escalation(resource, name, new.get("rules") or [], user, groups)
            return
        ref = new["roleRef"]["name"]
        if self.authorize(Attributes(user, groups, "bind", RBAC_GROUP, "clusterroles", name=ref)) is not None:
            return
        role = self.rbac["clusterroles"].get(ref)
        if role is None:
            message = f'{resource}.{RBAC_GROUP} "{name}" is forbidden: clusterrole.{RBAC_GROUP} "{ref}" not found'
            raise m.status_error(self, 403, "Forbidden", message, {"name": name, "group": RBAC_GROUP, "kind": resource})
        self._confirm_no_escalation(resource, name, role.get("rules") or [], user, groups)

    def _confirm_no_escalation(
        self: KubeEmulator, resource: str, name: str, rules: list[dict[str, Any]], user: str, groups: tuple[str, ...]
    ) -> None:
        held = [rule for _, _, rule in self.grants(user, groups, "")]
        missing = [atom for atom in breakdown(rules) if not any(covers(h, atom) for h in held)]
        if not missing:
            return
        lines = sorted(set(compact_strings(missing)))
        message = (
            f'{resource}.{RBAC_GROUP} "{name}" is forbidden: user "{user}" (groups={go_quote_list(list(groups))}) is '
            "attempting to grant RBAC permissions not currently held:\n" + "\n".join(lines)
        )
        raise HttpError(
            403, self.error(403, "Forbidden", message, {"name": name, "group": RBAC_GROUP, "kind": resource}).body
        )


ETCD_MAX_REQUEST_BYTES = 1572864  # etcd's default --max-request-bytes (1.5 MiB)


def check_size(obj: dict[str, Any]) -> None:
    """etcd refuses a write over 1.5 MiB and the API server passes it on as a bare 500 Status without a reason
    (kubernetes/kubernetes#74600, #112152, still open): a ClusterRoleBinding with too many subjects. Measured on
    the JSON here; the API server stores protobuf, which is smaller, so this fires somewhat earlier than a cluster."""
    if len(json.dumps(obj, separators=(",", ":"))) > ETCD_MAX_REQUEST_BYTES:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        raise HttpError(500, {**body, "message": "etcdserver: request is too large", "code": 500})


def check_delete_preconditions(emulator: KubeEmulator, req: Request, obj: dict[str, Any]) -> None:
    options = req.json() or {}
    wanted = options.get("preconditions") or {}
    meta = obj["metadata"]
    for field, key in (("UID", "uid"), ("ResourceVersion", "resourceVersion")):
        have = meta.get(key)
        if wanted.get(key) is not None and wanted[key] != have:
            why = f"Precondition failed: {field} in precondition: {wanted[key]}, {field} in object meta: {have}"
            raise m.conflict(emulator, f"{req.params['resource']}.{RBAC_GROUP}", meta["name"], why)
