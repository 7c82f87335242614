"""fic-reconcile: one federated identity credential per workspace namespace, on the pool identity its
CRC-32 shard selects, and no FIC of ours outliving its namespace. The plan is plan.py (pure), the settings
settings.py; this module only reads, writes and reports. Docs: docs/fic-reconcile.md."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.fic_reconcile import plan as fic_plan
from jobs.fic_reconcile.model import DeleteFic, FicAction, IdentityState, Observed, PutFic
from jobs.fic_reconcile.plan import is_ours
from jobs.fic_reconcile.settings import FicSettings
from lib import harness
from lib.clients.arm_types import ObservedFic
from lib.logs import get_logger
from lib.model import Finding, Outcome, Plan, Report
from lib.settings import ConfigError, label_of

if TYPE_CHECKING:
    from lib.clients.arm_msi import ArmMsi, PoolIdentity

# The Azure, Kubernetes and Prometheus clients are imported where they are used, not above: `--help` and a
# configuration error (exit 2) then cost ~0.1 s instead of ~0.35 s of imports (BENCHMARKS.md, start-up).

JOB = "fic-reconcile"


@dataclass(frozen=True)
class Clients:
    arm: ArmMsi
    pool: tuple[PoolIdentity, ...]


def connect(s: FicSettings) -> Clients:
    from azure.core.exceptions import AzureError, HttpResponseError

    from lib.clients.arm_msi import ArmError, ArmMsi, UnknownClientIds, describe_error, error_code, status_of
    from lib.clients.azure_auth import azure_credential

    log = get_logger()

    def on_retry(exc: Exception, attempt: int, wait: float) -> None:
        log.warning("arm.retry", status=status_of(exc), code=error_code(exc), attempt=attempt, wait_s=round(wait, 2))

    arm = ArmMsi(azure_credential(os.environ), s.subscription_id, s.resource_group, s.arm_endpoint, on_retry)
    try:
        pool = arm.resolve_pool(s.client_ids)
    except UnknownClientIds as exc:
        raise ConfigError(label_of(FicSettings, "client_ids"), f"{exc}; expected the pool's client ids") from None
    except HttpResponseError as exc:
        field = {"ResourceGroupNotFound": "resource_group", "SubscriptionNotFound": "subscription_id"}.get(
            error_code(exc)
        )
        if field is None:
            raise ArmError(f"ARM list identities in {s.resource_group}: {describe_error(exc)}") from None
        raise ConfigError(label_of(FicSettings, field), f"not found ({describe_error(exc)})") from None
    except AzureError as exc:  # connection refused, timeouts, an answer that is not JSON
        raise ArmError(f"ARM list identities in {s.resource_group}: {describe_error(exc)}") from None
    return Clients(arm, tuple(pool))


def _namespaces(selector: str | None) -> list[str]:
    from lib.clients.kube import NamespaceApi, api_client, namespace_names

    return namespace_names(NamespaceApi(api_client(os.environ)), selector)


def observe(c: Clients, s: FicSettings) -> Observed:
    """Every identity's FICs (--concurrency at a time) and, beside them, the namespace list (the Kubernetes
    client's ~0.2 s of imports are spent while the ARM reads wait on the network)."""
    with ThreadPoolExecutor(max_workers=1) as kube, ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        listing = kube.submit(_namespaces, s.namespace_selector)
        identities = tuple(workers.map(lambda p: _read_identity(c.arm, p), c.pool))
        try:
            names = listing.result()
        except Exception as exc:  # any failure: the plan may create but must not delete
            return Observed((), False, identities, f"{type(exc).__name__}: {exc}".splitlines()[0])
    return Observed(tuple(names), True, identities)


def _read_identity(arm: ArmMsi, p: PoolIdentity) -> IdentityState:
    from lib.clients.arm_msi import describe_error

    try:
        return IdentityState(p.name, p.client_id, tuple(arm.list_fics(p.name)))
    except Exception as exc:
        return IdentityState(p.name, p.client_id, (), complete=False, error=describe_error(exc))


def plan(state: Observed, s: FicSettings, _now: datetime) -> Plan:
    return fic_plan.plan(state, s.policy())


def apply(p: Plan, c: Clients, s: FicSettings) -> Report:
    """Phase by phase (the plan's cross-identity order); within a phase one lane per identity, lanes in
    parallel, each lane strictly sequential. A relocation delete whose replacement failed is skipped."""
    outcomes: dict[int, Outcome] = {}
    unwritten: set[str] = set()  # namespaces whose put failed: their old FICs must stay
    phases: dict[int, dict[str, list[tuple[int, FicAction]]]] = defaultdict(lambda: defaultdict(list))
    for index, action in enumerate(p.actions):
        assert isinstance(action, PutFic | DeleteFic)
        phases[action.phase][action.identity].append((index, action))
    with ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        for phase in sorted(phases):
            lanes = [(c.arm, lane, frozenset(unwritten)) for lane in phases[phase].values()]
            for lane in workers.map(lambda args: _run_lane(*args), lanes):
                for index, outcome in lane:
                    outcomes[index] = outcome
                    if outcome.result == "failed" and isinstance(outcome.action, PutFic):
                        unwritten.add(outcome.action.namespace)
    done = tuple(outcomes[i] for i in sorted(outcomes))
    findings, occupancy = verify(c, s, p, done)
    return Report(p, done, tuple(findings), {"occupancy_after": occupancy})


def _run_lane(arm: ArmMsi, lane: Sequence[tuple[int, FicAction]], skip: frozenset[str]) -> list[tuple[int, Outcome]]:
    from lib.clients.arm_msi import describe_error

    results = []
    for index, action in lane:
        if isinstance(action, DeleteFic) and action.after_put and action.namespace in skip:
            results.append((index, Outcome(action, "skipped", "its replacement was not written; kept")))
            continue
        try:
            if isinstance(action, PutFic):
                arm.put_fic(action.identity, action.fic, action.spec)
            else:
                arm.delete_fic(action.identity, action.fic)
            results.append((index, Outcome(action, "ok")))
        except Exception as exc:  # recorded, and the rest continues
            results.append((index, Outcome(action, "failed", describe_error(exc))))
    return results


def verify(c: Clients, s: FicSettings, p: Plan, done: Sequence[Outcome]) -> tuple[list[Finding], list[dict[str, str]]]:
    """Re-read every identity written to (--concurrency at a time); what differs from what was just written
    is drift."""
    written = {o.action.identity for o in done if o.result != "skipped" and isinstance(o.action, PutFic | DeleteFic)}
    reread = sorted((p for p in c.pool if p.name in written), key=lambda p: p.name)
    now: dict[str, tuple[ObservedFic, ...]] = {}
    findings = []
    with ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        for state in workers.map(lambda p: _read_identity(c.arm, p), reread):
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
            ours = sum(1 for f in now[row["identity"]] if is_ours(f.name, s.fic_prefix))
            row.update(ours=str(ours), unmanaged=str(len(now[row["identity"]]) - ours))
        row.pop("planned", None)
    return findings, rows


def publish(report: Report, s: FicSettings, code: int) -> None:
    if not s.pushgateway_url:
        return
    from prometheus_client import CollectorRegistry, Gauge

    from lib.clients import pushgateway

    def occupancy(registry: CollectorRegistry) -> None:
        fics = Gauge("cwj_fic_identity_fics", "FICs per pool identity", ["identity", "owner"], registry=registry)
        limit = Gauge("cwj_fic_identity_limit", "FIC limit per pool identity", ["identity"], registry=registry)
        for row in report.sections.get("occupancy_after", []):
            fics.labels(row["identity"], "ours").set(float(row["ours"]))
            fics.labels(row["identity"], "unmanaged").set(float(row["unmanaged"]))
            limit.labels(row["identity"]).set(float(row["limit"]))
        pool = report.plan.sections.get("pool_capacity", {})
        Gauge("cwj_fic_pool_namespaces", "Workspace namespaces", registry=registry).set(pool.get("namespaces", 0))
        Gauge("cwj_fic_pool_safe_namespaces", "Namespaces the pool holds at <=1% overflow risk", registry=registry).set(
            pool.get("safe_namespaces", 0)
        )

    pushgateway.push(s.pushgateway_url, JOB, pushgateway.report_registry(JOB, report, code == 0, occupancy))


SPEC = harness.JobSpec(
    name=JOB,
    description="Keep one federated identity credential per workspace namespace on its shard's pool identity.",
    settings=FicSettings,
    connect=connect,
    observe=observe,
    plan=plan,
    apply=apply,
    publish=publish,
    close=lambda c: c.arm.close(),
)


def main() -> None:
    harness.main(SPEC)
