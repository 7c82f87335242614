"""The plan for each --mode (pure): `fic` is plan.py alone; `both` is the identity bindings and RBAC
(identity_binding/plan.py) plus plan.py's per-namespace FICs; `identity-binding` is the bindings and RBAC plus the
migration: our per-namespace FICs are pruned, each only once its namespace's path through the binding was
observed in place (the binding Succeeded, the ClusterRole's rule and the namespace's subject were there when
this run looked, so they were written by an earlier run or a person, never only planned by this one).

The migration prune runs under the existing guards: it waits for complete observations (any failed read: no
delete), it is scoped to our prefix and issuer, and it never deletes more per run than the mass-delete threshold
(--max-deletes, default max(10, 25% of ours)) allows after the stale deletes: the rest waits for the next runs
instead of refusing the plan, so a large pool migrates in steps and a run that stops halfway has cut no one off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from jobs.fic_reconcile import plan as fic_plan
from jobs.fic_reconcile.findings import (
    capacity_sections,
    foreign_issuer_findings,
    foreign_issuer_section,
    observation_findings,
    suppressed_finding,
)
from jobs.fic_reconcile.identity_binding.model import BINDING_FIC, BindingPolicy
from jobs.fic_reconcile.identity_binding.plan import binding_fic_issuers, plan_bindings
from jobs.fic_reconcile.model import DeleteFic, IdentityState, Observed
from jobs.fic_reconcile.placement import foreign_issuer_fics, place_namespaces, split_by_owner
from jobs.fic_reconcile.plan import TIER_PRUNE, Policy, delete_threshold, deletion_allowed, guard, stale_deletes
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.model import Plan

MIGRATED = "migrated: identity binding and RBAC in place"


def plan_mode(observed: Observed, policy: Policy, ib: BindingPolicy, now: datetime) -> Plan:
    if ib.mode == "fic":
        return fic_plan.plan(observed, policy, now)
    bound = plan_bindings(observed, policy, ib)
    reserved = reserve_slots(observed, bound.reserving)
    trusted = replace(policy, known_issuers=(*policy.known_issuers, *binding_fic_issuers(reserved.identities)))
    if ib.mode == "both":
        fics = fic_plan.plan(reserved, trusted, now)
    else:
        fics = plan_migration(observed, trusted, bound.in_place)
    return Plan(
        actions=(*bound.actions, *fics.actions),
        findings=tuple(sorted((*bound.findings, *fics.findings), key=lambda f: (f.rule, f.subject))),
        refusal=fics.refusal or bound.refusal,
        sections={**fics.sections, **bound.sections},
    )


def reserve_slots(observed: Observed, reserving: frozenset[str]) -> Observed:
    """The FIC plan sees the binding FIC this run's binding creates as already there: its creates then leave the
    slot free (a placeholder counted as unmanaged; its issuer ends in the client id, so it is no foreign one)."""

    def held(i: IdentityState) -> IdentityState:
        if i.name not in reserving:
            return i
        placeholder = ObservedFic(BINDING_FIC, FicSpec(f"reserved:{BINDING_FIC}/{i.client_id}", "", ()))
        return replace(i, fics=(*i.fics, placeholder))

    return replace(observed, identities=tuple(held(i) for i in observed.identities))


def plan_migration(observed: Observed, policy: Policy, in_place: frozenset[str]) -> Plan:
    pool = [i.name for i in observed.identities]
    spaces = {ns.name: ns for ns in observed.namespaces if ns.name.startswith(policy.namespace_prefix)}
    live = sorted(name for name, ns in spaces.items() if not ns.terminating)
    where = place_namespaces((spaces[n] for n in live), observed.identities, policy.shard_rule)
    ours, _others = split_by_owner(observed.identities, policy.fic_prefix, policy.issuer)
    n_ours = sum(len(v) for v in ours.values())
    blind = {i.name for i in observed.identities if not i.complete}
    foreign = foreign_issuer_fics(observed.identities, policy.issuer, policy.known_issuers)
    findings = [*where.findings, *observation_findings(observed, blind), *foreign_issuer_findings(foreign)]
    stale = stale_deletes(spaces, ours, observed)
    migrating = [
        DeleteFic(identity.name, identity.client_id, fic.name, ns, MIGRATED, replaced=True)
        for identity in observed.identities
        for ns, fic in sorted(ours[identity.name].items())
        if ns in in_place and ns in where.targets
    ]
    share = delete_threshold(n_ours, policy.max_deletes) - len(stale)
    room = len(migrating) if policy.allow_mass_delete else max(0, share)
    deletes = [*stale, *migrating[:room]]
    blind_bindings = bool(observed.ib.bindings_error or observed.ib.rbac_error)
    if deletes and (blind_bindings or not deletion_allowed(observed)):
        findings.append(suppressed_finding(len(deletes)))
        deletes = []
    order = {name: i for i, name in enumerate(pool)}
    actions = sorted((replace(d, phase=TIER_PRUNE) for d in deletes), key=lambda d: (order[d.identity], d.namespace))
    counts = {i.name: len(i.fics) - sum(1 for d in actions if d.identity == i.name) for i in observed.identities}
    unmanaged = {i.name: len(i.fics) - len(ours[i.name]) for i in observed.identities}
    pruned = {d.namespace for d in actions if d.replaced}
    waiting = sorted({ns for fics in ours.values() for ns in fics} - pruned - {d.namespace for d in stale})
    return Plan(
        actions=tuple(actions),
        findings=tuple(findings),
        refusal=guard(actions, n_ours, observed, live, policy),
        sections={
            **capacity_sections(observed, ours, unmanaged, counts, len(live), policy.limit),
            "placement": where.counts,
            **foreign_issuer_section(foreign),
            "fic_migration": migration_section(n_ours, pruned, waiting, in_place, len(migrating) - len(pruned)),
        },
    )


def migration_section(
    n_ours: int, pruned: set[str], waiting: Sequence[str], in_place: frozenset[str], capped: int
) -> dict[str, object]:
    not_ready = [ns for ns in waiting if ns not in in_place]
    return {
        "fics_of_ours": n_ours,
        "pruned_by_this_plan": len(pruned),
        "waiting_for_next_run": capped,  # in place, but past this run's share of the delete threshold
        "waiting_for_binding_or_rbac": len(not_ready),
        "waiting_namespaces": not_ready[:20],
    }
