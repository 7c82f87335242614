"""The pure plan of fic-reconcile: observed namespaces, their workspace ServiceAccounts, every pool
identity's FICs and the relocation record -> ordered writes.

No I/O and no clock (`now` is an input). The same inputs in any order give the same plan. Where a FIC
belongs and which FICs are ours: placement.py. When a FIC left behind by a relocation may go: relocation.py.
A FIC that is not ours is never touched but still counts toward its identity's limit.

Ordering: writes to one identity are sequential, different identities run in parallel. On each identity
the deletes come first (they free capacity), then the creates that fit, so no identity passes its limit at
any moment. A relocated namespace's old FIC goes only in a later run, once the new one has existed for the
grace period, so a namespace is never without a credential on the identity its pods present. A create that
does not fit (two full identities swapping namespaces) is reported, never forced; it fits once the FICs
relocating away are gone. The record of relocations is written last (phase 1). Findings and capacity
sections are built in findings.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from jobs.fic_reconcile.findings import (
    capacity_sections,
    foreign_issuer_findings,
    foreign_issuer_section,
    observation_findings,
    scope_findings,
    stuck_finding,
    suppressed_finding,
    unplaceable_findings,
)
from jobs.fic_reconcile.model import (
    Action,
    DeleteFic,
    FicAction,
    Namespace,
    Observed,
    PutFic,
    RecordRelocations,
    Relocation,
)
from jobs.fic_reconcile.placement import collision, foreign_issuer_fics, place_namespaces, split_by_owner
from jobs.fic_reconcile.relocation import plan_relocations
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.model import Finding, Plan

AUDIENCE = "api://AzureADTokenExchange"
# Urgency tiers (an action's `phase`): the apply starts every action of a tier before any of the next, so a run
# cut short by its budget has done what matters most. A namespace without any credential cannot reach Azure at
# all; a relocating one still can; a prune only frees a slot; the record comes last.
TIER_MISSING, TIER_MOVING, TIER_PRUNE, TIER_RECORD = 0, 1, 2, 3


@dataclass(frozen=True)
class Policy:
    issuer: str
    service_account: str
    fic_prefix: str
    namespace_prefix: str
    limit: int
    max_deletes: int | None = None  # None: the larger of 10 and 25% of ours
    allow_mass_delete: bool = False
    shard_rule: str = "crc32"
    relocation_grace: timedelta = timedelta(hours=1)
    known_issuers: tuple[str, ...] = ()  # other clusters' issuers: their FICs are no foreign-issuer finding

    def spec_for(self, namespace: str) -> FicSpec:
        return FicSpec(self.issuer, f"system:serviceaccount:{namespace}:{self.service_account}", (AUDIENCE,))


# ---- the plan -------------------------------------------------------------------------------------------


def plan(observed: Observed, policy: Policy, now: datetime) -> Plan:
    pool = [i.name for i in observed.identities]
    spaces = {ns.name: ns for ns in observed.namespaces if ns.name.startswith(policy.namespace_prefix)}
    live = sorted(name for name, ns in spaces.items() if not ns.terminating)
    where = place_namespaces((spaces[n] for n in live), observed.identities, policy.shard_rule)
    ours, others = split_by_owner(observed.identities, policy.fic_prefix, policy.issuer)
    targets = dict(where.targets)
    blind = {i.name for i in observed.identities if not i.complete}
    foreign = foreign_issuer_fics(observed.identities, policy.issuer, policy.known_issuers)
    findings: list[Finding] = [*where.findings, *observation_findings(observed, blind)]
    findings += foreign_issuer_findings(foreign)
    for ns, target in sorted(where.targets.items()):
        if ns in others[target]:  # the name we need is another cluster's FIC there
            findings.append(collision(ns, target, others[target][ns], policy.issuer))
            del targets[ns]
    unmanaged = {i.name: len(i.fics) - len(ours[i.name]) for i in observed.identities}
    placed, unplaceable = place(sorted(targets), targets, ours, unmanaged, policy.limit)
    findings += unplaceable_findings(unplaceable, targets, policy.limit)
    created = {name: ns.created for name, ns in spaces.items()}
    puts = [p for p in wanted_puts(placed, targets, ours, observed, policy, created) if p.identity not in blind]
    if observed.accounts_error:  # placement is unknown: write nothing
        puts = []
    moves = plan_relocations(
        observed.identities, ours, targets, placed, {p.namespace for p in puts if not p.update},
        {ns: policy.spec_for(ns) for ns in targets}, observed.relocations, now, policy.relocation_grace,
    )  # fmt: skip
    deletes = [*stale_deletes(spaces, ours, observed), *moves.deletes]
    if deletes and not deletion_allowed(observed):
        findings.append(suppressed_finding(len(deletes)))
        deletes = []
    counts = {i.name: len(i.fics) for i in observed.identities}
    fic_actions, stuck, after = schedule(puts, deletes, counts, policy.limit, pool)
    fic_actions = by_urgency(fic_actions, counts, policy.limit, pool)
    findings += [stuck_finding(p, policy.limit) for p in stuck]
    # withheld deletes leave their entries in the record, so their clocks keep running
    finishing = moves.finishing if deletes else ()
    kept = moves.record if deletes else tuple(sorted({*moves.record, *moves.finishing}))
    actions: list[Action] = [*fic_actions, *record_action(observed, kept, finishing, fic_actions, stuck)]
    n_ours = sum(len(v) for v in ours.values())
    findings += scope_findings(observed, len(spaces), n_ours, policy.namespace_prefix)
    sections = capacity_sections(observed, ours, unmanaged, after, len(live), policy.limit)
    return Plan(
        actions=tuple(actions),
        findings=tuple(sorted(findings, key=lambda f: (f.rule, f.subject))),
        refusal=guard(fic_actions, n_ours, observed, live, policy),
        sections={
            **sections,
            "placement": where.counts,
            "relocations_waiting": moves.waiting,
            **foreign_issuer_section(foreign),
        },
    )


def record_action(
    observed: Observed,
    record: tuple[Relocation, ...],
    finishing: tuple[Relocation, ...],
    actions: Sequence[FicAction],
    stuck: Sequence[PutFic],
) -> list[RecordRelocations]:
    """The new record, when it differs and the old one was read; a create that never fits is not moving."""
    unscheduled = {p.namespace for p in stuck}
    record = tuple(r for r in record if r.namespace not in unscheduled)
    if observed.state_error or observed.accounts_error or record == tuple(sorted(observed.relocations)):
        return []
    phase = TIER_RECORD
    n_new = len({r.namespace for r in record} - {r.namespace for r in observed.relocations})
    reason = f"{len(record)} relocating, {n_new} new"
    return [RecordRelocations(record, reason, phase, observed.state_version, finishing)]


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
    created: Mapping[str, datetime | None],
) -> list[PutFic]:
    client = {i.name: i.client_id for i in observed.identities}
    held = Counter(ns for fics in ours.values() for ns in fics)  # on how many identities each namespace is
    puts = []
    for ns in sorted(placed):
        target, want = targets[ns], policy.spec_for(ns)
        have = ours[target].get(ns)
        if have is None:
            reason = "relocated: placement changed" if held[ns] else "missing"
            name = policy.fic_prefix + ns
            puts.append(PutFic(target, client[target], name, ns, want, reason, namespace_created=created.get(ns)))
        elif have.spec != want:
            puts.append(
                PutFic(
                    target,
                    client[target],
                    have.name,
                    ns,
                    want,
                    "wrong " + _differs(have.spec, want),
                    update=True,
                    before=have.spec,
                )
            )
    return puts


def _differs(have: FicSpec, want: FicSpec) -> str:
    fields = [f for f in ("issuer", "subject", "audiences") if getattr(have, f) != getattr(want, f)]
    return "/".join(fields)


def stale_deletes(
    spaces: dict[str, Namespace], ours: dict[str, dict[str, ObservedFic]], observed: Observed
) -> list[DeleteFic]:
    """Our FICs whose namespace is gone, no longer a workspace, or Terminating (deletionTimestamp set: the API
    server keeps listing it until its finalizers finish, but no pod of it will ask for a token again)."""
    deletes = []
    for identity in observed.identities:
        for ns, fic in sorted(ours[identity.name].items()):
            if ns not in spaces:
                deletes.append(DeleteFic(identity.name, identity.client_id, fic.name, ns, "stale: namespace gone"))
            elif spaces[ns].terminating:
                reason = "stale: namespace terminating"
                deletes.append(DeleteFic(identity.name, identity.client_id, fic.name, ns, reason))
    return deletes


def deletion_allowed(observed: Observed) -> bool:
    complete = observed.namespaces_complete and not observed.accounts_error and not observed.state_error
    return complete and all(i.complete for i in observed.identities)


def schedule(
    puts: Sequence[PutFic], deletes: Sequence[DeleteFic], counts: dict[str, int], limit: int, pool: Sequence[str]
) -> tuple[list[FicAction], list[PutFic], dict[str, int]]:
    """Deletes first on each identity (they free capacity), then the creates that fit, in pool order, so no
    identity passes its limit at any moment. Returns (actions in apply order, creates that do not fit,
    counts after the plan)."""
    counts = dict(counts)
    order = {name: i for i, name in enumerate(pool)}
    for d in deletes:
        counts[d.identity] -= 1
    ready: list[PutFic] = []
    stuck: list[PutFic] = []
    for p in sorted(puts, key=lambda p: (order[p.identity], p.namespace)):
        fits = p.update or counts[p.identity] < limit
        counts[p.identity] += 1 if fits and not p.update else 0
        (ready if fits else stuck).append(p)
    actions: list[FicAction] = [*deletes, *ready]
    return sorted(actions, key=lambda a: (order[a.identity], a.kind != "delete", a.namespace)), stuck, counts


def by_urgency(
    actions: Sequence[FicAction], counts: dict[str, int], limit: int, pool: Sequence[str]
) -> list[FicAction]:
    """Tier each action (TIER_*). A delete that makes room for a create on the same identity moves up to that
    create's tier, so no identity passes its limit whatever tier the run stops after; on each identity
    deletes still come before creates within a tier."""
    order = {name: i for i, name in enumerate(pool)}
    tiered: list[FicAction] = []
    for identity in pool:
        puts = [a for a in actions if isinstance(a, PutFic) and a.identity == identity]
        deletes = [a for a in actions if isinstance(a, DeleteFic) and a.identity == identity]
        tier = {id(p): TIER_MISSING if p.reason == "missing" else TIER_MOVING for p in puts}
        pulled = 0
        for level in (TIER_MISSING, TIER_MOVING):
            creates = sum(1 for p in puts if not p.update and tier[id(p)] <= level)
            need = min(len(deletes), max(pulled, counts[identity] + creates - limit))
            tiered += [replace(d, phase=level) for d in deletes[pulled:need]]
            pulled = max(pulled, need)
        tiered += [replace(d, phase=TIER_PRUNE) for d in deletes[pulled:]]
        tiered += [replace(p, phase=tier[id(p)]) for p in puts]
    return sorted(tiered, key=lambda a: (a.phase, order[a.identity], a.kind != "delete", a.namespace))


def guard(
    actions: Sequence[FicAction], n_ours: int, observed: Observed, workspaces: Sequence[str], policy: Policy
) -> str | None:
    """Refuse (exit 3, nothing written) a plan that deletes more than an operator would expect. A relocation's
    old FIC does not count: its namespace keeps the FIC that has existed on its new identity for the grace, so
    that delete cannot cut anyone off (growing the pool prunes without an override)."""
    if policy.allow_mass_delete:
        return None
    if observed.namespaces_complete and not workspaces and n_ours:
        return f"observed zero workspace namespaces while {n_ours} FIC(s) of ours exist (--allow-mass-delete)"
    n_deletes = sum(1 for a in actions if isinstance(a, DeleteFic) and not a.replaced)
    limit = delete_threshold(n_ours, policy.max_deletes)
    if n_deletes > limit:
        return f"the plan deletes {n_deletes} FIC(s), more than --max-deletes {limit} (--allow-mass-delete)"
    return None


def delete_threshold(n_ours: int, max_deletes: int | None) -> int:
    return max_deletes if max_deletes is not None else max(10, n_ours // 4)
