"""Kubernetes RBAC authorization for the emulator: which requests a ServiceAccount's bearer token may make, the
rules a user holds (for escalation checks, rbac.py), and authorization.k8s.io/v1 SubjectAccessReview answered
from the same rules.

Sources (kubernetes/kubernetes):
- staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go: verbs from the method (GET with a name get,
  without list, `?watch=true` watch; POST create; PUT update; PATCH patch; DELETE delete or deletecollection);
  `/api/v1` is group "", `/apis/<group>/<version>`; `namespaces/<ns>/<resource>...` sets the namespace, and
  `namespaces/<name>` is resource namespaces with that name *and* namespace (status and finalize are its
  subresources).
- plugin/pkg/auth/authorizer/rbac/rbac.go and pkg/apis/rbac/v1/evaluation_helpers.go: a rule matches when its
  verbs, apiGroups, resources (`*`, `<resource>/<subresource>`, `*/<subresource>`) and resourceNames (empty = any)
  match; ClusterRoleBindings grant everywhere, RoleBindings in their namespace; subjects match a User by name, a
  Group by name, a ServiceAccount as `system:serviceaccount:<ns>:<name>`; a denial is "no opinion" with no reason.
  Members of `system:masters` (the kubeconfig's admin here) pass every check (the superuser authorizer).
- staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go forbiddenMessage: 403 Forbidden
  `<resource>[.<group>] ["<name>" ]is forbidden: User "<u>" cannot <verb> resource "<res>[/<sub>]" in API group
  "<g>" (at the cluster scope | in the namespace "<ns>")`.
- pkg/registry/authorization/subjectaccessreview/rest.go and pkg/apis/authorization/validation: spec.user or
  spec.groups required, exactly one of resourceAttributes / nonResourceAttributes (422 Invalid otherwise);
  the answer is 201 with status.allowed and, when allowed, RBAC's reason `RBAC: allowed by ClusterRoleBinding
  "<b>" of ClusterRole "<r>" to ServiceAccount "<name>/<ns>"`.
- pkg/registry/rbac/validation/rule.go Covers / ConfirmNoEscalation: what rules a user holds, broken down per
  (group, resource, verb, name) to decide whether they cover what a role would grant.
Not modelled: aggregated ClusterRoles, non-resource URL rules beyond discovery (which needs no authorization
here), Roles and RoleBindings over the API (they are seeded with `load_rbac` only), impersonation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.kube import meta as m

if TYPE_CHECKING:
    from tests.emulators.kube.emulator import KubeEmulator

NAMESPACE_SUBRESOURCES = ("status", "finalize")
AUTHORIZATION_V1 = "authorization.k8s.io/v1"


@dataclass(frozen=True)
class Attributes:
    user: str
    groups: tuple[str, ...]
    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


def service_account_groups(username: str) -> tuple[str, ...]:
    """The groups the service-account authenticator gives `system:serviceaccount:<ns>:<name>` (authn.py)."""
    ns = username.split(":")[2] if username.count(":") == 3 else ""
    return ("system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated")


def request_attributes(req: Request, user: str, groups: tuple[str, ...]) -> Attributes:
    """requestinfo.go's resource attributes of an API request path."""
    parts = [p for p in req.path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, rest = "", parts[2:]
    else:
        group, rest = parts[1], parts[3:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(req.method, "")
    if req.method == "GET":
        verb = "watch" if req.q("watch") in ("true", "1") else ("get" if name else "list")
    elif req.method == "DELETE":
        verb = "delete" if name else "deletecollection"
    return Attributes(user, groups, verb, group, resource, subresource, namespace, name)


def rule_allows(rule: dict[str, Any], attrs: Attributes) -> bool:
    verbs, api_groups = rule.get("verbs") or [], rule.get("apiGroups") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if "*" not in api_groups and attrs.group not in api_groups:
        return False
    combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    resources = rule.get("resources") or []
    matched = any(
        r in ("*", combined) or (attrs.subresource and r.startswith("*/") and combined.endswith(r[1:]))
        for r in resources
    )
    names = rule.get("resourceNames") or []
    return matched and (not names or attrs.name in names)


def subject_matches(subject: dict[str, Any], user: str, groups: tuple[str, ...], binding_ns: str) -> bool:
    kind, name = subject.get("kind"), subject.get("name")
    if kind == "User":
        return bool(user == name)
    if kind == "Group":
        return name in groups
    if kind == "ServiceAccount":
        return user == f"system:serviceaccount:{subject.get('namespace') or binding_ns}:{name}"
    return False


class AuthzApi:
    """Mixed into KubeEmulator, which supplies lock, error(), the RBAC store of rbac.py (`rbac`, `roles`,
    `role_bindings`) and the service-account authenticator of authn.py."""

    # ---- the rules a user holds -----------------------------------------------------------------------------

    def grants(
        self: KubeEmulator, user: str, groups: tuple[str, ...], namespace: str
    ) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(binding description, role description, rule) for every rule bound to the user, cluster-wide and in
        `namespace` (RBAC's visitRulesFor order: ClusterRoleBindings first)."""
        for binding in sorted(self.rbac["clusterrolebindings"].values(), key=lambda b: b["metadata"]["name"]):
            if any(subject_matches(s, user, groups, "") for s in binding.get("subjects") or []):
                role = self.rbac["clusterroles"].get(binding["roleRef"]["name"])
                for rule in (role or {}).get("rules") or []:
                    yield (
                        f'ClusterRoleBinding "{binding["metadata"]["name"]}"',
                        f'ClusterRole "{binding["roleRef"]["name"]}"',
                        rule,
                    )
        for (ns, name), binding in sorted(self.role_bindings.items()):
            if ns != namespace or not any(subject_matches(s, user, groups, ns) for s in binding.get("subjects") or []):
                continue
            ref = binding["roleRef"]
            role = (
                self.rbac["clusterroles"].get(ref["name"])
                if ref["kind"] == "ClusterRole"
                else self.roles.get((ns, ref["name"]))
            )
            for rule in (role or {}).get("rules") or []:
                yield f'RoleBinding "{name}/{ns}"', f'{ref["kind"]} "{ref["name"]}"', rule

    def authorize(self: KubeEmulator, attrs: Attributes) -> str | None:
        """RBAC's reason when allowed, None when it has no opinion (= denied)."""
        if "system:masters" in attrs.groups:
            return ""
        with self.lock:
            for binding, role, rule in self.grants(attrs.user, attrs.groups, attrs.namespace):
                if rule_allows(rule, attrs):
                    return f"RBAC: allowed by {binding} of {role} to {self._subject_text(attrs.user)}"
        return None

    @staticmethod
    def _subject_text(user: str) -> str:
        if user.startswith("system:serviceaccount:") and user.count(":") == 3:
            _, _, ns, name = user.split(":")
            return f'ServiceAccount "{name}/{ns}"'
        return f'User "{user}"'

    def authorize_request(self: KubeEmulator, req: Request, user: str) -> None:
        """The API server's authorization filter for a non-admin bearer token: 403 unless RBAC allows."""
        attrs = request_attributes(req, user, service_account_groups(user))
        if self.authorize(attrs) is None:
            raise self.forbidden(attrs)

    def forbidden(self: KubeEmulator, attrs: Attributes) -> HttpError:
        resource = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        scope = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
        reason = f'User "{attrs.user}" cannot {attrs.verb} resource "{resource}" in API group "{attrs.group}" {scope}'
        group_resource = attrs.resource + (f".{attrs.group}" if attrs.group else "")
        target = f'{group_resource} "{attrs.name}"' if attrs.name else group_resource
        details = (
            {"name": attrs.name, "group": attrs.group, "kind": attrs.resource}
            if attrs.name
            else {
                "group": attrs.group,
                "kind": attrs.resource,
            }
        )
        return m.status_error(self, 403, "Forbidden", f"{target} is forbidden: {reason}", details)

    # ---- SubjectAccessReview --------------------------------------------------------------------------------

    @route("POST", r"/apis/authorization\.k8s\.io/v1/subjectaccessreviews", "subjectaccessreview.create")
    def subject_access_review(self: KubeEmulator, req: Request) -> Response:
        body = m.json_body(self, req)
        spec = body.get("spec") if isinstance(body.get("spec"), dict) else {}
        resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
        causes: list[tuple[str, str, str]] = []
        if not spec.get("user") and not spec.get("groups"):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.user",
                    'spec.user: Invalid value: "": at least one of user or group must be specified',
                )
            )
        if (resource is None) == (non_resource is None):
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.resourceAttributes",
                    'spec.resourceAttributes: Invalid value: "null": exactly one of nonResourceAttributes or '
                    "resourceAttributes must be specified",
                )
            )
        if causes:
            raise m.invalid(self, "SubjectAccessReview", "", causes)
        status: dict[str, Any] = {"allowed": False}
        if resource is not None:
            attrs = Attributes(
                user=str(spec.get("user") or ""),
                groups=tuple(spec.get("groups") or ()),
                verb=str(resource.get("verb") or ""),
                group=str(resource.get("group") or ""),
                resource=str(resource.get("resource") or ""),
                subresource=str(resource.get("subresource") or ""),
                namespace=str(resource.get("namespace") or ""),
                name=str(resource.get("name") or ""),
            )
            reason = self.authorize(attrs)
            if reason is not None:
                status = {"allowed": True, "reason": reason}
        review = {
            "kind": "SubjectAccessReview",
            "apiVersion": AUTHORIZATION_V1,
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": status,
        }
        return Response(201, review)
