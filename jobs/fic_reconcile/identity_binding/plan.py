"""The pure plan of the identity-binding modes (--mode identity-binding|both): per pool identity, its AKS
identity binding, one ClusterRole that grants `use-managed-identity` on it, and one ClusterRoleBinding whose
subjects are exactly the `workspace` ServiceAccounts of the namespaces placed on that identity.

Placement is FIC mode's (../placement.py): the ServiceAccount's client-id annotation, else the shard rule, so a
namespace's pods may use, through the binding, exactly the identity they would have held a FIC on. No I/O, no
clock; the same inputs in any order give the same plan.

Ownership: a binding is ours when its name is `<--fic-prefix><client id>` without hyphens; a ClusterRole or
ClusterRoleBinding when it carries RBAC_LABELS (a same-named one without them is a finding, never overwritten).
An identity another binding on the cluster already names (ASO's, a person's) is used as it is: no second one.

Capacity: AKS creates the `aks-identity-binding` FIC on the identity for its first binding (one FIC, shared by
every cluster's binding of that identity, never garbage-collected), so an identity at the FIC limit without it
cannot be bound: a finding (`binding-no-slot`), no write; the other identities proceed.

Guard: removing a subject cuts a namespace off as surely as deleting its FIC, so subject removals count against
the mass-delete threshold like FIC deletes do (--max-deletes, --allow-mass-delete), and so do the subjects of a
departed client id's ClusterRoleBinding, which left_pool.py deletes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jobs.fic_reconcile.identity_binding.left_pool import plan_left_pool
from jobs.fic_reconcile.identity_binding.model import (
    BINDING_FIC,
    RBAC_LABELS,
    USE_GROUP,
    USE_VERB,
    BindingAction,
    BindingPolicy,
    PutBinding,
    PutRole,
    PutRoleBinding,
)
from jobs.fic_reconcile.identity_binding.ownership import binding_of, by_name, subject_label
from jobs.fic_reconcile.model import IdentityState, Observed
from jobs.fic_reconcile.placement import place_namespaces
from jobs.fic_reconcile.plan import Policy, delete_threshold
from lib.clients.arm_types import ObservedFic
from lib.clients.rbac_types import ObservedRoleBinding, Rule, Subject, carries
from lib.model import Finding


@dataclass(frozen=True)
class BindingPlan:
    actions: tuple[BindingAction, ...] = ()
    findings: tuple[Finding, ...] = ()
    sections: dict[str, object] = field(default_factory=dict)
    reserving: frozenset[str] = frozenset()  # identities whose binding this plan creates, without its FIC yet
    in_place: frozenset[str] = frozenset()  # namespaces whose binding and RBAC were observed in place
    refusal: str | None = None


def wanted_rules(client_id: str) -> tuple[Rule, ...]:
    # the spelling the pool gives and the lower-case one ARM returns: RBAC compares resources exactly
    return (Rule((USE_VERB,), (USE_GROUP,), tuple(sorted({client_id, client_id.lower()}))),)


def is_binding_fic(fic: ObservedFic, client_id: str) -> bool:
    """AKS's `aks-identity-binding` FIC: that name, and an issuer ending in the identity's client id
    (`https://ib.oic.prod-aks.azure.com/<tenant>/<client id>`, the binding's oidcIssuerUrl)."""
    last = fic.spec.issuer.rstrip("/").rsplit("/", 1)[-1]
    return fic.name.lower() == BINDING_FIC and last.lower() == client_id.lower()


def binding_fic_issuers(identities: Sequence[IdentityState]) -> tuple[str, ...]:
    """The issuers of the identities' binding FICs: AKS's own, so no foreign-issuer finding in these modes."""
    return tuple(sorted({f.spec.issuer for i in identities for f in i.fics if is_binding_fic(f, i.client_id)}))


def plan_bindings(observed: Observed, policy: Policy, ib: BindingPolicy) -> BindingPlan:
    spaces = {ns.name: ns for ns in observed.namespaces if ns.name.startswith(policy.namespace_prefix)}
    live = sorted(name for name, ns in spaces.items() if not ns.terminating)
    where = place_namespaces((spaces[n] for n in live), observed.identities, policy.shard_rule)
    known = observed.namespaces_complete and not observed.accounts_error  # else subjects stay as they are
    findings = observation_findings(observed)
    actions: list[BindingAction] = []
    reserving: set[str] = set()
    in_place: set[str] = set()
    rows: list[dict[str, object]] = []
    diff: list[dict[str, object]] = []
    removed_total, subjects_total = 0, 0
    for identity in observed.identities:
        members = tuple(sorted(ns for ns, target in where.targets.items() if target == identity.name))
        binding, found, state = plan_binding(identity, observed, policy.limit, ib)
        findings += found
        actions += [binding] if binding else []
        if binding and not any(is_binding_fic(f, identity.client_id) for f in identity.fics):
            reserving.add(identity.name)
        role_actions, role_state, role_findings, ready = plan_rbac(identity, observed, members, known, policy, ib)
        findings += role_findings
        actions += role_actions
        observed_rb = by_name(observed.ib.role_bindings).get(ib.role_name(identity.client_id))
        have = _namespaces(observed_rb, policy.service_account) if observed_rb else set()
        subjects_total += len(have)
        for a in role_actions:
            if isinstance(a, PutRoleBinding):
                removed_total += len(a.removed)
                diff.append(_diff_row(identity, a))
        if state == "Succeeded" and ready:
            in_place.update(ns for ns in members if ns in have)
        rows.append({"identity": identity.name, "client_id": identity.client_id, "binding": state,
                     "rbac": role_state, "observed_subjects": len(have),
                     "placed_namespaces": len(members)})  # fmt: skip
    left = plan_left_pool(observed, policy, ib)
    actions += left.actions
    findings += left.findings
    diff += left.diff
    removed_total += left.removed
    subjects_total += left.removed
    refusal = subject_guard(removed_total, subjects_total, known and not live, policy)
    order = {i.name: n for n, i in enumerate(observed.identities)}
    return BindingPlan(
        actions=tuple(sorted(actions, key=lambda a: (a.phase, order.get(a.identity, len(order))))),
        findings=tuple(findings),
        sections={"identity_bindings": rows, "rbac_diff": diff, **left.section},
        reserving=frozenset(reserving),
        in_place=frozenset(in_place),
        refusal=refusal,
    )


def plan_binding(
    identity: IdentityState, observed: Observed, limit: int, ib: BindingPolicy
) -> tuple[PutBinding | None, list[Finding], str]:
    """(the create, findings, the binding's state for the report)."""
    if observed.ib.bindings_error:
        return None, [], "unknown"
    existing = binding_of(identity, observed.ib.bindings, ib)
    name = ib.binding_name(identity.client_id)
    if existing is not None and existing.state.lower() != "failed":
        return None, [], existing.state or "Succeeded"
    if existing is not None and existing.name != name:  # someone else's, Failed: theirs to repair
        message = f"identity binding {existing.name} is Failed on the cluster: delete or repair it"
        return None, [Finding("error", "binding-failed", identity.name, message)], existing.state
    # ours Failed (AKS could not write its FIC: the identity was full) is PUT again once there is room
    if existing is None and any(b.name.lower() == name for b in observed.ib.bindings):
        message = f"the binding name {name} is taken by a binding of another identity: rename that binding"
        return None, [Finding("error", "binding-name-taken", identity.name, message)], "name taken"
    if not identity.complete:
        return None, [], "unknown"  # its FIC list is unknown (an observe-failed finding says so)
    if any(is_binding_fic(f, identity.client_id) for f in identity.fics) or len(identity.fics) < limit:
        reason = "retry: Failed" if existing is not None else "missing"
        create = PutBinding(identity.name, identity.client_id, name, ib.identity_id(identity.name), reason)
        return create, [], "planned"
    message = (
        f"{identity.name} holds {len(identity.fics)} FICs, the limit is {limit}: AKS needs one free slot for its "
        f"`{BINDING_FIC}` FIC, so no binding is created (the other identities proceed). Free a slot: move namespaces "
        "to another pool identity or delete an unmanaged FIC"
    )
    return None, [Finding("error", "binding-no-slot", identity.name, message)], "refused: no FIC slot"


def plan_rbac(
    identity: IdentityState,
    observed: Observed,
    members: tuple[str, ...],
    known: bool,
    policy: Policy,
    ib: BindingPolicy,
) -> tuple[list[BindingAction], str, list[Finding], bool]:
    """(the ClusterRole and ClusterRoleBinding writes, their state, findings, whether both are in place now)."""
    if observed.ib.rbac_error:
        return [], "unknown", [], False
    name, client = ib.role_name(identity.client_id), identity.client_id
    role = by_name(observed.ib.roles).get(name)
    binding = by_name(observed.ib.role_bindings).get(name)
    for kind, obj in (("ClusterRole", role), ("ClusterRoleBinding", binding)):
        if obj is not None and not carries(obj.labels, RBAC_LABELS):
            message = (
                f"{kind} {name} exists without this job's labels: never overwritten; delete it or give this job "
                "another --fic-prefix"
            )
            return [], "not ours", [Finding("error", "rbac-not-ours", identity.name, message)], False
    actions: list[BindingAction] = []
    if role is None:
        actions.append(PutRole(identity.name, client, name, False, "missing"))
    elif role.rules != wanted_rules(client):
        actions.append(PutRole(identity.name, client, name, True, "wrong rules", role.version))
    if binding is not None and (binding.role_kind, binding.role) != ("ClusterRole", name):
        message = (
            f"ClusterRoleBinding {name} refers to {binding.role_kind} {binding.role}, and a roleRef cannot change: "
            "delete it so the job recreates it"
        )
        return actions, "wrong roleRef", [Finding("error", "rbac-roleref", identity.name, message)], False
    if known:
        want = tuple(Subject("ServiceAccount", policy.service_account, ns) for ns in members)
        have = binding.subjects if binding else ()
        if binding is None or tuple(sorted(have)) != want:
            added = tuple(ns for ns in members if Subject("ServiceAccount", policy.service_account, ns) not in have)
            removed = tuple(sorted(subject_label(s, policy.service_account) for s in have if s not in want))
            version = binding.version if binding else ""
            actions.append(PutRoleBinding(identity.name, client, name, want, added, removed, binding is not None,
                                          version))  # fmt: skip
    ready = role is not None and not any(isinstance(a, PutRole) for a in actions) and binding is not None
    return actions, "ok" if not actions else "changes", [], ready


def subject_guard(removed: int, observed_subjects: int, saw_none: bool, policy: Policy) -> str | None:
    if policy.allow_mass_delete:
        return None
    if saw_none and observed_subjects:
        return (
            f"observed zero workspace namespaces while {observed_subjects} RBAC subject(s) of ours exist "
            "(--allow-mass-delete)"
        )
    limit = delete_threshold(observed_subjects, policy.max_deletes)
    if removed > limit:
        return f"the plan removes {removed} RBAC subject(s), more than --max-deletes {limit} (--allow-mass-delete)"
    return None


def observation_findings(observed: Observed) -> list[Finding]:
    found = []
    if observed.ib.bindings_error:
        detail = f"ARM identity bindings list: {observed.ib.bindings_error}; no binding is created"
        found.append(Finding("error", "observe-failed", "identity-bindings", detail))
    if observed.ib.rbac_error:
        detail = f"Kubernetes RBAC read: {observed.ib.rbac_error}; no ClusterRole or ClusterRoleBinding is written"
        found.append(Finding("error", "observe-failed", "rbac", detail))
    return found


def _namespaces(binding: ObservedRoleBinding, service_account: str) -> set[str]:
    return {s.namespace for s in binding.subjects if s.kind == "ServiceAccount" and s.name == service_account}


def _diff_row(identity: IdentityState, action: PutRoleBinding) -> dict[str, object]:
    """Namespaces as lists (typed JSON, issue 22 point 6); the text table joins them."""
    return {
        "identity": identity.name,
        "clusterrolebinding": action.name,
        "change": "create" if not action.update else "update",
        "added": list(action.added),
        "removed": list(action.removed),
    }
