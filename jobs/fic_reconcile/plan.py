"""The pure plan of fic-reconcile: observed namespaces + every pool identity's FICs -> ordered writes.

No I/O and no clock. The same inputs in any order give the same plan. Ownership is the name prefix only
(FICs carry no tags); an unmanaged FIC is never touched but still counts toward the identity's limit.

Ordering (why phases): a write to one identity must be sequential, different identities run in parallel,
so an order *across* identities only exists between phases. The plan is a simulation of the FIC count
per identity: each phase first deletes what may go now (stale FICs, and relocated or duplicated ones
whose replacement was written in an *earlier* phase), then creates what fits now. So a namespace's new
FIC is always created one phase before its old one is deleted (never without a credential), deletes
free capacity before creates on the same identity, and no identity exceeds its limit at any moment.
A create that never fits (two full identities swapping namespaces) is reported, never forced.
Its findings and capacity sections are built in findings.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from jobs.fic_reconcile.findings import (
    capacity_sections,
    observation_findings,
    stuck_finding,
    suppressed_finding,
    unplaceable_findings,
)
from jobs.fic_reconcile.model import DeleteFic, FicAction, Observed, PutFic
from jobs.fic_reconcile.shard import shard_index
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.model import Plan

AUDIENCE = "api://AzureADTokenExchange"


@dataclass(frozen=True)
class Policy:
    issuer: str
    service_account: str
    fic_prefix: str
    namespace_prefix: str
    limit: int
    max_deletes: int | None = None  # None: the larger of 10 and 25% of ours
    allow_mass_delete: bool = False

    def spec_for(self, namespace: str) -> FicSpec:
        return FicSpec(self.issuer, f"system:serviceaccount:{namespace}:{self.service_account}", (AUDIENCE,))


# ---- the plan -------------------------------------------------------------------------------------------


def plan(observed: Observed, policy: Policy) -> Plan:
    pool = [i.name for i in observed.identities]
    workspaces = sorted({ns for ns in observed.namespaces if ns.startswith(policy.namespace_prefix)})
    targets = {ns: pool[shard_index(ns, len(pool))] for ns in workspaces}
    ours = ours_by_identity(observed, policy.fic_prefix)
    unmanaged = {i.name: len(i.fics) - len(ours[i.name]) for i in observed.identities}
    placed, unplaceable = place(workspaces, targets, ours, unmanaged, policy.limit)
    blind = {i.name for i in observed.identities if not i.complete}
    puts = [p for p in wanted_puts(placed, targets, ours, observed, policy) if p.identity not in blind]
    deletes = wanted_deletes(workspaces, placed, targets, ours, observed, policy)
    findings = [*unplaceable_findings(unplaceable, targets, policy.limit), *observation_findings(observed, blind)]
    if deletes and not deletion_allowed(observed):
        findings.append(suppressed_finding(len(deletes)))
        deletes = []
    counts = {i.name: len(i.fics) for i in observed.identities}
    actions, stuck, after = schedule(puts, deletes, counts, policy.limit, pool)
    findings += [stuck_finding(p, policy.limit) for p in stuck]
    n_ours = sum(len(v) for v in ours.values())
    return Plan(
        actions=tuple(actions),
        findings=tuple(sorted(findings, key=lambda f: (f.rule, f.subject))),
        refusal=guard(actions, n_ours, observed, workspaces, policy),
        sections=capacity_sections(observed, ours, unmanaged, after, len(workspaces), policy.limit),
    )


def ours_by_identity(observed: Observed, prefix: str) -> dict[str, dict[str, ObservedFic]]:
    """identity -> namespace -> our FIC there (name = prefix + namespace). ARM resource names are
    case-insensitive, so is ownership: `Coder-WS-x` is the same resource as our `coder-ws-x`."""
    return {
        i.name: {f.name[len(prefix) :].lower(): f for f in i.fics if is_ours(f.name, prefix)}
        for i in observed.identities
    }


def is_ours(name: str, prefix: str) -> bool:
    return name.lower().startswith(prefix.lower())


def place(
    workspaces: Sequence[str],
    targets: dict[str, str],
    ours: dict[str, dict[str, ObservedFic]],
    unmanaged: dict[str, int],
    limit: int,
) -> tuple[set[str], list[str]]:
    """Existing placements keep priority, then namespace name order; the rest does not fit."""
    kept = {ns for ns in workspaces if ns in ours[targets[ns]]}
    room = Counter({name: limit - unmanaged[name] for name in unmanaged})
    room.subtract(targets[ns] for ns in kept)
    placed, unplaceable = set(kept), []
    for ns in workspaces:  # already sorted by name
        if ns in kept:
            continue
        if room[targets[ns]] > 0:
            room[targets[ns]] -= 1
            placed.add(ns)
        else:
            unplaceable.append(ns)
    return placed, unplaceable


def wanted_puts(
    placed: set[str],
    targets: dict[str, str],
    ours: dict[str, dict[str, ObservedFic]],
    observed: Observed,
    policy: Policy,
) -> list[PutFic]:
    client = {i.name: i.client_id for i in observed.identities}
    held = Counter(ns for fics in ours.values() for ns in fics)  # on how many identities each namespace is
    puts = []
    for ns in sorted(placed):
        target, want = targets[ns], policy.spec_for(ns)
        have = ours[target].get(ns)
        if have is None:
            reason = "relocated: shard changed" if held[ns] else "missing"
            puts.append(PutFic(target, client[target], policy.fic_prefix + ns, ns, want, reason))
        elif have.spec != want:
            puts.append(
                PutFic(target, client[target], have.name, ns, want, "wrong " + _differs(have.spec, want), update=True)
            )
    return puts


def _differs(have: FicSpec, want: FicSpec) -> str:
    fields = [f for f in ("issuer", "subject", "audiences") if getattr(have, f) != getattr(want, f)]
    return "/".join(fields)


def wanted_deletes(
    workspaces: Sequence[str],
    placed: set[str],
    targets: dict[str, str],
    ours: dict[str, dict[str, ObservedFic]],
    observed: Observed,
    policy: Policy,
) -> list[DeleteFic]:
    live = set(workspaces)
    deletes = []
    for identity in observed.identities:
        for ns, fic in sorted(ours[identity.name].items()):
            if ns not in live:
                deletes.append(DeleteFic(identity.name, identity.client_id, fic.name, ns, "stale: namespace gone"))
            elif ns in placed and targets[ns] != identity.name:
                there = ns in ours[targets[ns]]
                reason = f"duplicate: belongs on {targets[ns]}" if there else f"relocated: now on {targets[ns]}"
                deletes.append(DeleteFic(identity.name, identity.client_id, fic.name, ns, reason, after_put=True))
            # an unplaceable namespace keeps its old FIC: a stale credential beats none
    return deletes


def deletion_allowed(observed: Observed) -> bool:
    return observed.namespaces_complete and all(i.complete for i in observed.identities)


def schedule(
    puts: Sequence[PutFic], deletes: Sequence[DeleteFic], counts: dict[str, int], limit: int, pool: Sequence[str]
) -> tuple[list[FicAction], list[PutFic], dict[str, int]]:
    """Simulate the per-identity FIC count phase by phase (see the module docstring).
    Returns (actions in apply order, creates that never fit, counts after the plan)."""
    counts = dict(counts)
    order = {name: i for i, name in enumerate(pool)}
    pending_puts = sorted(puts, key=lambda p: (order[p.identity], p.namespace))
    pending_deletes = sorted(deletes, key=lambda d: (order[d.identity], d.namespace))
    actions: list[FicAction] = []
    phase = 0
    while pending_puts or pending_deletes:
        waiting = {p.namespace for p in pending_puts}
        later_deletes = [d for d in pending_deletes if d.after_put and d.namespace in waiting]
        ready_deletes = [d for d in pending_deletes if not (d.after_put and d.namespace in waiting)]
        for d in ready_deletes:
            counts[d.identity] -= 1
        ready_puts: list[PutFic] = []
        later_puts: list[PutFic] = []
        for p in pending_puts:
            fits = p.update or counts[p.identity] < limit
            counts[p.identity] += 1 if fits and not p.update else 0
            (ready_puts if fits else later_puts).append(p)
        if not ready_deletes and not ready_puts:
            break  # the rest waits on capacity that only its own deletes would free
        phase_actions: list[FicAction] = [replace(d, phase=phase) for d in ready_deletes]
        phase_actions += [replace(p, phase=phase) for p in ready_puts]
        actions += sorted(phase_actions, key=lambda a: (order[a.identity], a.kind != "delete", a.namespace))
        pending_deletes, pending_puts = later_deletes, later_puts
        phase += 1
    return actions, pending_puts, counts


def guard(
    actions: Sequence[FicAction], n_ours: int, observed: Observed, workspaces: Sequence[str], policy: Policy
) -> str | None:
    if policy.allow_mass_delete:
        return None
    if observed.namespaces_complete and not workspaces and n_ours:
        return f"observed zero workspace namespaces while {n_ours} FIC(s) of ours exist (--allow-mass-delete)"
    n_deletes = sum(1 for a in actions if a.kind == "delete")
    limit = delete_threshold(n_ours, policy.max_deletes)
    if n_deletes > limit:
        return f"the plan deletes {n_deletes} FIC(s), more than --max-deletes {limit} (--allow-mass-delete)"
    return None


def delete_threshold(n_ours: int, max_deletes: int | None) -> int:
    return max_deletes if max_deletes is not None else max(10, n_ours // 4)
