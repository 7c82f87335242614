"""The identity-binding modes' reads: the cluster's AKS identity bindings (ARM) and this job's ClusterRoles and
ClusterRoleBindings (Kubernetes), ours by label and each wanted name the label lists lack. A failed read is kept
as an error string: the plan then writes nothing on that side and withholds every FIC delete. RBAC (the chart):
get/list on clusterroles and clusterrolebindings (docs/identity-bindings.md, "Permissions")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobs.fic_reconcile import cluster
from jobs.fic_reconcile.identity_binding.model import RBAC_LABELS, BindingPolicy, BindingView
from jobs.fic_reconcile.settings import FicSettings
from lib.redact import first_line

if TYPE_CHECKING:
    from lib.clients.aks_bindings import AksBindings
    from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding

SELECTOR = ",".join(f"{key}={value}" for key, value in sorted(RBAC_LABELS.items()))


def read_binding_view(aks: AksBindings, s: FicSettings, client_ids: Sequence[str]) -> BindingView:
    from lib.clients.arm_msi import describe_error

    try:
        bindings, bindings_error = tuple(aks.list()), ""
    except Exception as exc:  # no binding is created while the list is unknown
        bindings, bindings_error = (), describe_error(exc)
    policy = s.binding_policy()
    names = [policy.role_name(c) for c in client_ids]
    try:
        roles, role_bindings = read_rbac(cluster.kube_api(s), names, policy)
    except Exception as exc:
        return BindingView(bindings, (), (), bindings_error, first_line(f"{type(exc).__name__}: {exc}"))
    return BindingView(bindings, roles, role_bindings, bindings_error, "")


def read_rbac(
    api: Any, names: Sequence[str], policy: BindingPolicy
) -> tuple[tuple[ObservedRole, ...], tuple[ObservedRoleBinding, ...]]:
    """Ours by label (one paged list each): the pool's, and those our prefix names for a client id that left the
    pool (the plan deletes them); then by name each wanted one the lists lack: a same-named object without our
    labels must be seen (a finding), never created over."""
    from lib.clients.kube_rbac import (
        list_cluster_role_bindings,
        list_cluster_roles,
        read_cluster_role,
        read_cluster_role_binding,
    )

    wanted = set(names)
    roles = {r.name: r for r in list_cluster_roles(api, SELECTOR) if _ours(r.name, wanted, policy)}
    bindings = {b.name: b for b in list_cluster_role_bindings(api, SELECTOR) if _ours(b.name, wanted, policy)}
    for name in sorted(wanted - roles.keys()):
        found = read_cluster_role(api, name)
        if found is not None:
            roles[name] = found
    for name in sorted(wanted - bindings.keys()):
        seen = read_cluster_role_binding(api, name)
        if seen is not None:
            bindings[name] = seen
    return tuple(roles[n] for n in sorted(roles)), tuple(bindings[n] for n in sorted(bindings))


def _ours(name: str, wanted: set[str], policy: BindingPolicy) -> bool:
    return name in wanted or policy.role_client(name) is not None
