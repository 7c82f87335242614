"""ClusterRoles and ClusterRoleBindings through the Kubernetes client's RbacAuthorizationV1Api: label-selected
lists across every page, a read by name (for a same-named object without our labels), and writes that create,
replace or delete at the resourceVersion read, so a concurrent writer makes ours fail (409) instead of being
overwritten or deleted.

The API server refuses a ClusterRole that grants what its writer does not hold, and a ClusterRoleBinding to a
role whose rules its writer does not hold, unless the writer may `escalate` / `bind` (RBAC escalation
prevention): that answer is a 403 KubeError naming the rule, reported per object.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes import client

from lib.clients.kube import PAGE_SIZE, KubeError, paged, retrying
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, Rule, Subject

T = TypeVar("T")
RBAC_GROUP = "rbac.authorization.k8s.io"


def _api(api: Any) -> Any:
    return client.RbacAuthorizationV1Api(getattr(api, "api_client", api))


def _timeouts() -> tuple[float, float]:
    from lib import limits

    return (limits.timeout(10), limits.timeout(30))


def list_cluster_roles(api: Any, label_selector: str, page_size: int = PAGE_SIZE) -> list[ObservedRole]:
    rbac = _api(api)
    return paged("clusterrole list", rbac.list_cluster_role, _role, page_size, label_selector=label_selector)


def list_cluster_role_bindings(api: Any, label_selector: str, page_size: int = PAGE_SIZE) -> list[ObservedRoleBinding]:
    rbac = _api(api)
    fetch = rbac.list_cluster_role_binding
    return paged("clusterrolebinding list", fetch, _role_binding, page_size, label_selector=label_selector)


def read_cluster_role(api: Any, name: str) -> ObservedRole | None:
    rbac = _api(api)
    return _read(lambda: rbac.read_cluster_role(name, _request_timeout=_timeouts()), _role)


def read_cluster_role_binding(api: Any, name: str) -> ObservedRoleBinding | None:
    rbac = _api(api)
    return _read(lambda: rbac.read_cluster_role_binding(name, _request_timeout=_timeouts()), _role_binding)


def write_cluster_role(api: Any, name: str, rules: Sequence[Rule], labels: Mapping[str, str], version: str) -> str:
    """Create (version "") or replace at `version`; the new resourceVersion."""
    body = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRole",
        "metadata": _metadata(name, labels, version),
        "rules": [{"verbs": list(r.verbs), "apiGroups": list(r.api_groups), "resources": list(r.resources)}
                  for r in rules],
    }  # fmt: skip
    rbac = _api(api)
    if version:
        written = retrying(lambda: rbac.replace_cluster_role(name, body, _request_timeout=_timeouts()))
    else:
        written = retrying(lambda: rbac.create_cluster_role(body, _request_timeout=_timeouts()))
    return str(written.metadata.resource_version)


def write_cluster_role_binding(
    api: Any, name: str, role: str, subjects: Sequence[Subject], labels: Mapping[str, str], version: str
) -> str:
    body = {
        "apiVersion": f"{RBAC_GROUP}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": _metadata(name, labels, version),
        "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": role},
        "subjects": [_subject_body(s) for s in subjects],
    }
    rbac = _api(api)
    if version:
        written = retrying(lambda: rbac.replace_cluster_role_binding(name, body, _request_timeout=_timeouts()))
    else:
        written = retrying(lambda: rbac.create_cluster_role_binding(body, _request_timeout=_timeouts()))
    return str(written.metadata.resource_version)


def delete_cluster_role(api: Any, name: str, version: str) -> bool:
    """Delete at `version` (a changed object answers 409: someone wrote it since the read); False if gone already."""
    rbac = _api(api)
    return _delete(lambda: rbac.delete_cluster_role(name, body=_preconditions(version), _request_timeout=_timeouts()))


def delete_cluster_role_binding(api: Any, name: str, version: str) -> bool:
    rbac = _api(api)
    fetch = rbac.delete_cluster_role_binding
    return _delete(lambda: fetch(name, body=_preconditions(version), _request_timeout=_timeouts()))


def _preconditions(version: str) -> client.V1DeleteOptions:
    return client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version=version))


def _delete(call: Callable[[], Any]) -> bool:
    try:
        retrying(call)
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _metadata(name: str, labels: Mapping[str, str], version: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": dict(labels)}
    if version:
        metadata["resourceVersion"] = version
    return metadata


def _subject_body(s: Subject) -> dict[str, str]:
    if s.kind == "ServiceAccount":
        return {"kind": s.kind, "name": s.name, "namespace": s.namespace}
    return {"kind": s.kind, "name": s.name, "apiGroup": RBAC_GROUP}


def _read(fetch: Callable[[], Any], convert: Callable[[Any], T]) -> T | None:
    try:
        return convert(retrying(fetch))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def _labels(meta: Any) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((meta.labels or {}).items()))


def _role(item: Any) -> ObservedRole:
    rules = tuple(
        Rule(tuple(r.verbs or ()), tuple(r.api_groups or ()), tuple(r.resources or ())) for r in item.rules or ()
    )
    return ObservedRole(item.metadata.name, _labels(item.metadata), rules, str(item.metadata.resource_version or ""))


def _role_binding(item: Any) -> ObservedRoleBinding:
    subjects = tuple(Subject(s.kind, s.name, s.namespace or "") for s in item.subjects or ())
    ref = item.role_ref
    return ObservedRoleBinding(
        item.metadata.name, _labels(item.metadata), str(ref.kind), str(ref.name), subjects,
        str(item.metadata.resource_version or ""),
    )  # fmt: skip
