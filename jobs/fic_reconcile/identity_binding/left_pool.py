"""Ours for a client id that left the pool (AZURE_CLIENT_IDS_JSON no longer lists it), pure: the ClusterRole and
ClusterRoleBinding would go on granting workspace ServiceAccounts the use of an identity the operator removed, so
they are deleted (their subjects count against the subject guard, plan.py); an ARM binding is only reported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobs.fic_reconcile.identity_binding.model import RBAC_LABELS, BindingPolicy, DeleteRbac
from jobs.fic_reconcile.identity_binding.ownership import binding_of, by_name, subject_label
from jobs.fic_reconcile.model import Observed
from jobs.fic_reconcile.plan import Policy
from lib.clients.arm_types import ObservedBinding
from lib.clients.rbac_types import ObservedRole, ObservedRoleBinding, carries
from lib.model import Finding


@dataclass(frozen=True)
class LeftPool:
    actions: tuple[DeleteRbac, ...] = ()
    findings: tuple[Finding, ...] = ()
    diff: tuple[dict[str, object], ...] = ()
    removed: int = 0  # subjects the deleted ClusterRoleBindings named: they count against the subject guard
    section: dict[str, object] = field(default_factory=dict)


def plan_left_pool(observed: Observed, policy: Policy, ib: BindingPolicy) -> LeftPool:
    """Ours for client ids no longer in the pool. RBAC objects (our labels, our prefix and a whole client id in
    the name) are deleted, the ClusterRoleBinding before its ClusterRole. An ARM binding of ours is a warning
    with the command, never a delete: its FIC stays on the identity anyway (never garbage-collected), and a
    person or another tool may still use the binding."""
    pool = {i.client_id.lower() for i in observed.identities}
    actions: list[DeleteRbac] = []
    diff: list[dict[str, object]] = []
    removed = 0
    if not observed.ib.rbac_error:
        gone = _left_pool(observed.ib.role_bindings, pool, ib) | _left_pool(observed.ib.roles, pool, ib)
        bindings, roles = by_name(observed.ib.role_bindings), by_name(observed.ib.roles)
        for name in sorted(gone):
            client = ib.role_client(name) or ""
            if name in bindings:
                rb = bindings[name]
                subjects = tuple(sorted(subject_label(s, policy.service_account) for s in rb.subjects))
                actions.append(DeleteRbac(client, "ClusterRoleBinding", name, rb.version, subjects))
                removed += len(subjects)
                diff.append({"identity": client, "clusterrolebinding": name, "change": "delete", "added": [],
                             "removed": list(subjects)})  # fmt: skip
            if name in roles:
                actions.append(DeleteRbac(client, "ClusterRole", name, roles[name].version))
    orphans = orphaned_bindings(observed, ib)
    findings = tuple(_orphan_finding(b, ib) for b in orphans)
    rows = [{"client_id": a.client_id, "object": f"{a.resource} {a.name}", "change": "delete"} for a in actions]
    rows += [{"client_id": b.client_id or b.identity_id, "object": f"identity binding {b.name}",
              "change": "kept: delete by hand (binding-orphaned)"} for b in orphans]  # fmt: skip
    return LeftPool(tuple(actions), findings, tuple(diff), removed, {"left_the_pool": rows} if rows else {})


def _left_pool(
    objects: Sequence[ObservedRole] | Sequence[ObservedRoleBinding], pool: set[str], ib: BindingPolicy
) -> set[str]:
    return {
        o.name
        for o in objects
        if carries(o.labels, RBAC_LABELS) and (client := ib.role_client(o.name)) is not None and client not in pool
    }


def orphaned_bindings(observed: Observed, ib: BindingPolicy) -> list[ObservedBinding]:
    """ARM bindings named as ours whose identity is none of the pool's (the pool's own are binding_of's)."""
    if observed.ib.bindings_error:
        return []
    used = {b.name for i in observed.identities if (b := binding_of(i, observed.ib.bindings, ib)) is not None}
    return [b for b in sorted(observed.ib.bindings) if ib.binding_client(b.name) is not None and b.name not in used]


def _orphan_finding(binding: ObservedBinding, ib: BindingPolicy) -> Finding:
    message = (
        f"identity binding {binding.name} is ours but its identity ({binding.client_id or binding.identity_id}) "
        "left the pool: the job never deletes a binding (its aks-identity-binding FIC stays on the identity, "
        "never garbage-collected, and a person may still use the binding); once nothing uses it: "
        f"{ib.delete_binding_command(binding.name)}"
    )
    return Finding("warning", "binding-orphaned", binding.name, message)
