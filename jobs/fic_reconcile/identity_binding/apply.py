"""The identity-binding modes' writes: the plan's binding actions, in order (bindings, roles, role bindings: a
ClusterRoleBinding is written after the role it names; one of a client id that left the pool is deleted before
its role), each paced by the run's budget. One failed write never
stops the others; the report names each. RBAC (the chart): create/update/delete on clusterroles and
clusterrolebindings, and the job itself holds the `use-managed-identity` rule it grants
(docs/identity-bindings.md, "Permissions")."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from jobs.fic_reconcile import cluster
from jobs.fic_reconcile.identity_binding.model import RBAC_LABELS, BindingAction, DeleteRbac, PutBinding, PutRole
from jobs.fic_reconcile.identity_binding.plan import wanted_rules
from jobs.fic_reconcile.settings import FicSettings
from lib.budget import RunBudget
from lib.model import Outcome
from lib.redact import first_line

if TYPE_CHECKING:
    from lib.clients.aks_bindings import AksBindings


def apply_bindings(
    actions: Sequence[tuple[int, BindingAction]], aks: AksBindings | None, s: FicSettings, budget: RunBudget
) -> dict[int, Outcome]:
    from lib.clients.arm_msi import describe_error, status_of

    outcomes: dict[int, Outcome] = {}
    api = cluster.kube_api(s) if any(not isinstance(a, PutBinding) for _, a in actions) else None
    for index, action in sorted(actions, key=lambda pair: (pair[1].phase, pair[0])):
        if not budget.take_write():
            outcomes[index] = Outcome(action, "deferred", "run budget spent: the next run continues")
            continue
        try:
            outcomes[index] = _write(action, aks, api, budget)
        except Exception as exc:  # recorded, and the rest continues
            if isinstance(action, PutBinding):
                throttled = status_of(exc) == 429  # still throttled when the budget ran out: the next run continues
                outcomes[index] = Outcome(action, "deferred" if throttled else "failed", describe_error(exc))
            else:
                outcomes[index] = Outcome(action, "failed", first_line(f"{type(exc).__name__}: {exc}"))
    return outcomes


def _write(action: BindingAction, aks: AksBindings | None, api: Any, budget: RunBudget) -> Outcome:
    from lib.clients.kube_rbac import (
        delete_cluster_role,
        delete_cluster_role_binding,
        write_cluster_role,
        write_cluster_role_binding,
    )

    if isinstance(action, PutBinding):
        assert aks is not None
        made = aks.create(action.binding, action.identity_id, within=budget.left())
        return Outcome(action, "ok", "" if made.state.lower() == "succeeded" else f"provisioning {made.state}")
    if isinstance(action, PutRole):
        write_cluster_role(api, action.role, wanted_rules(action.client_id), RBAC_LABELS, action.version)
        return Outcome(action, "ok")
    if isinstance(action, DeleteRbac):
        delete = delete_cluster_role_binding if action.resource == "ClusterRoleBinding" else delete_cluster_role
        return Outcome(action, "ok", action.reason if delete(api, action.name, action.version) else "already gone")
    write_cluster_role_binding(api, action.name, action.name, action.subjects, RBAC_LABELS, action.version)
    return Outcome(action, "ok")  # the reason column already says subjects +added -removed
