"""fic-reconcile's writes: the plan's actions against ARM, then the relocation record, then a read-back.

Tier by tier (the plan's urgency, plan.py), one lane per identity, lanes in parallel, each lane strictly one
write at a time (ARM answers concurrent writes to one identity with 409), every write paced by the run's budget
(lib/budget.py). A write the budget cannot start, or one ARM keeps throttling past it, is deferred: not a failure,
the next run observes afresh and continues. One failed write never stops the others. With --probe, the FICs just
created are then probed at Entra (probe.py) inside what is left of the budget.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from jobs.fic_reconcile import cluster
from jobs.fic_reconcile.identity_binding.model import BINDING_ACTIONS, BindingAction, bindings_after
from jobs.fic_reconcile.model import DeleteFic, FicAction, IdentityState, PutFic, RecordRelocations
from jobs.fic_reconcile.placement import is_ours
from jobs.fic_reconcile.probe import Created, spread
from jobs.fic_reconcile.settings import FicSettings
from lib.budget import RunBudget, deferral_findings
from lib.clients.arm_types import ObservedFic
from lib.model import Finding, Outcome, Plan, Report
from lib.redact import first_line

if TYPE_CHECKING:
    from lib.clients.aks_bindings import AksBindings
    from lib.clients.arm_msi import ArmMsi, PoolIdentity


@dataclass(frozen=True)
class Clients:
    arm: ArmMsi
    pool: tuple[PoolIdentity, ...]
    state_namespace: str  # where the relocation record lives
    budget: RunBudget
    tenant_id: str = ""  # the pool's tenant, for --probe's exchanges
    aks: AksBindings | None = None  # the cluster's identity bindings (--mode other than fic)
    issuer_problem: str = ""  # the issuer's discovery document could not be read (issuer.py): a warning


def read_identity(arm: ArmMsi, p: PoolIdentity) -> IdentityState:
    from lib.clients.arm_msi import describe_error

    try:
        return IdentityState(p.name, p.client_id, tuple(arm.list_fics(p.name)))
    except Exception as exc:
        return IdentityState(p.name, p.client_id, (), complete=False, error=describe_error(exc))


def apply(p: Plan, c: Clients, s: FicSettings) -> Report:
    outcomes: dict[int, Outcome] = {}
    tiers: dict[int, dict[str, list[tuple[int, FicAction]]]] = defaultdict(lambda: defaultdict(list))
    records: list[tuple[int, RecordRelocations]] = []
    bindings: list[tuple[int, BindingAction]] = []
    for index, action in enumerate(p.actions):
        if isinstance(action, BINDING_ACTIONS):
            bindings.append((index, action))
        elif isinstance(action, RecordRelocations):
            records.append((index, action))
        else:
            assert isinstance(action, PutFic | DeleteFic)
            tiers[action.phase][action.identity].append((index, action))
    if bindings:  # the binding path first: a FIC prune never waits on it (modes.py), but new namespaces do
        from jobs.fic_reconcile.identity_binding.apply import apply_bindings

        outcomes.update(apply_bindings(bindings, c.aks, s, c.budget))
    created: list[Created] = []
    with ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        for tier in sorted(tiers):
            for lane in workers.map(lambda lane: _run_lane(c, lane), tiers[tier].values()):
                for index, outcome, made in lane:
                    outcomes[index] = outcome
                    created += [made] if made is not None else []
    unfinished = [o.action for o in outcomes.values() if o.result in ("failed", "deferred")]
    unwritten = {a.namespace for a in unfinished if isinstance(a, PutFic)}
    undeleted = {a.namespace for a in unfinished if isinstance(a, DeleteFic)}
    for index, record in records:
        outcomes[index] = _write_record(record, unwritten, undeleted, c, s)
    done = tuple(outcomes[i] for i in sorted(outcomes))
    findings, occupancy = verify(c, s, p, done)
    waited = [m.credential_after_s for m in created if m.credential_after_s is not None]
    sections: dict[str, object] = {"occupancy_after": occupancy, "time_to_credential": time_to_credential(waited)}
    if "identity_bindings" in p.sections:
        sections["identity_bindings_after"] = bindings_after(p.sections["identity_bindings"], done)
    findings += deferral_findings(done)
    if s.probe:
        from jobs.fic_reconcile.probe import probe_created

        probed = probe_created(created, s, c.budget.left(), c.tenant_id, c.arm.scope)
        sections.update(time_to_usable=probed.summary(), probe=probed.rows())
        findings += probed.findings()
    return Report(p, done, tuple(findings), sections)


Written = tuple[int, Outcome, Created | None]  # index, outcome, and what the probe needs of a create


def _run_lane(c: Clients, lane: Sequence[tuple[int, FicAction]]) -> list[Written]:
    from lib.clients.arm_msi import describe_error, status_of

    results: list[Written] = []
    for index, action in lane:
        if not c.budget.take_write():
            results.append((index, Outcome(action, "deferred", "run budget spent: the next run continues"), None))
            continue
        try:
            if isinstance(action, PutFic):
                c.arm.put_fic(action.identity, action.fic, action.spec, within=c.budget.left())
                seconds = _since_namespace_created(action)
                made = None if action.update else _created(action, seconds)
                detail = f"time to credential {seconds:.1f}s" if seconds is not None else ""
                results.append((index, Outcome(action, "ok", detail), made))
            else:
                c.arm.delete_fic(action.identity, action.fic, within=c.budget.left())
                results.append((index, Outcome(action, "ok"), None))
        except Exception as exc:  # recorded, and the rest continues
            throttled = status_of(exc) == 429  # still throttled when the budget ran out: the next run continues
            outcome = Outcome(action, "deferred" if throttled else "failed", describe_error(exc))
            results.append((index, outcome, None))
    return results


def _created(action: PutFic, seconds: float | None) -> Created:
    return Created(action.namespace, action.identity, action.client_id, time.monotonic(), seconds)


def _since_namespace_created(action: PutFic) -> float | None:
    if action.update or action.namespace_created is None:
        return None
    return max(0.0, (datetime.now(UTC) - action.namespace_created).total_seconds())


def time_to_credential(waited: Sequence[float]) -> dict[str, float | int]:
    """Seconds from a namespace's creation to its FIC's, over this run's creates (p50, p99, max)."""
    return {"created": len(waited), **spread(waited)}


def _write_record(
    record: RecordRelocations, unwritten: set[str], undeleted: set[str], c: Clients, s: FicSettings
) -> Outcome:
    """The planned record, less namespaces whose new FIC is not there, plus those whose old FIC still is."""
    entries = [r for r in record.relocations if r.namespace not in unwritten]
    entries += [r for r in record.finishing if r.namespace in undeleted]
    try:
        cluster.write_record(cluster.kube_api(s), c.state_namespace, s.state_configmap, entries, record.version)
    except Exception as exc:  # a conflict (another run wrote first) or an outage: the next run starts over
        return Outcome(record, "failed", first_line(f"{type(exc).__name__}: {exc}"))
    differs = len(entries) != len(record.relocations)
    return Outcome(record, "ok", f"{len(entries)} entries written" if differs else "")


def verify(c: Clients, s: FicSettings, p: Plan, done: Sequence[Outcome]) -> tuple[list[Finding], list[dict[str, str]]]:
    """Re-read every identity written to (--concurrency at a time); what differs from what was just written
    is drift."""
    written = {
        o.action.identity for o in done if o.result in ("ok", "failed") and isinstance(o.action, PutFic | DeleteFic)
    }
    reread = sorted((p for p in c.pool if p.name in written), key=lambda p: p.name)
    now: dict[str, tuple[ObservedFic, ...]] = {}
    findings = []
    with ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        for state in workers.map(lambda p: read_identity(c.arm, p), reread):
            if state.complete:
                now[state.name] = state.fics
            else:
                findings.append(Finding("error", "verify-failed", state.name, state.error))
    for o in done:
        a = o.action
        if o.result != "ok" or not isinstance(a, PutFic | DeleteFic) or a.identity not in now:
            continue
        seen = {f.name.lower(): f for f in now[a.identity]}.get(a.fic.lower())
        if isinstance(a, PutFic) and (seen is None or seen.spec != a.spec):
            findings.append(Finding("error", "drift", f"{a.identity}/{a.fic}", "written, but reads back different"))
        if isinstance(a, DeleteFic) and seen is not None:
            findings.append(Finding("error", "drift", f"{a.identity}/{a.fic}", "deleted, but still present"))
    rows = [dict(r) for r in p.sections.get("capacity", [])]
    for row in rows:
        if row["identity"] in now:
            ours = sum(1 for f in now[row["identity"]] if is_ours(f, s.fic_prefix, s.issuer))
            row.update(ours=ours, unmanaged=len(now[row["identity"]]) - ours)
        row.pop("planned", None)
    return findings, rows
