"""fic-reconcile: one federated identity credential per workspace namespace, on the pool identity its
workspace ServiceAccount names (else the one its shard predicts), and no FIC of ours outliving its namespace.
The plan is plan.py (pure), the settings settings.py, the Kubernetes reads cluster.py; this module only
reads, writes and reports. Docs: docs/fic-reconcile.md."""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.fic_reconcile import cluster
from jobs.fic_reconcile import plan as fic_plan
from jobs.fic_reconcile.model import DeleteFic, FicAction, IdentityState, Observed, PutFic, RecordRelocations
from jobs.fic_reconcile.placement import is_ours
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
    state_namespace: str  # where the relocation record lives


def connect(s: FicSettings) -> Clients:
    from azure.core.exceptions import AzureError, HttpResponseError

    from lib.clients.arm_msi import ArmError, ArmMsi, UnknownClientIds, describe_error, error_code, status_of
    from lib.clients.azure_auth import azure_credential

    log = get_logger()
    state_namespace = cluster.state_namespace(s)  # a configuration error before any request

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
    return Clients(arm, tuple(pool), state_namespace)


def _read_cluster(s: FicSettings, namespace: str) -> cluster.ClusterView:
    try:
        return cluster.read_cluster(cluster.kube_api(), s, namespace)
    except Exception as exc:  # no usable configuration: nothing from the cluster, so no deletes
        return cluster.ClusterView(namespaces_error=f"{type(exc).__name__}: {exc}".splitlines()[0])


def observe(c: Clients, s: FicSettings) -> Observed:
    """Every identity's FICs (--concurrency at a time) and, beside them, the cluster's side: namespaces,
    workspace ServiceAccounts, the relocation record (the Kubernetes client's ~0.2 s of imports are spent
    while the ARM reads wait on the network)."""
    with ThreadPoolExecutor(max_workers=1) as kube, ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        reading = kube.submit(_read_cluster, s, c.state_namespace)
        identities = tuple(workers.map(lambda p: _read_identity(c.arm, p), c.pool))
        view = reading.result()
    return Observed(
        namespaces=view.namespaces,
        namespaces_complete=not view.namespaces_error,
        identities=identities,
        namespaces_error=view.namespaces_error,
        accounts_error=view.accounts_error,
        relocations=view.relocations,
        state_error=view.state_error,
        state_problems=view.state_problems,
        state_version=view.state_version,
    )


def _read_identity(arm: ArmMsi, p: PoolIdentity) -> IdentityState:
    from lib.clients.arm_msi import describe_error

    try:
        return IdentityState(p.name, p.client_id, tuple(arm.list_fics(p.name)))
    except Exception as exc:
        return IdentityState(p.name, p.client_id, (), complete=False, error=describe_error(exc))


def plan(state: Observed, s: FicSettings, now: datetime) -> Plan:
    return fic_plan.plan(state, s.policy(), now)


def apply(p: Plan, c: Clients, s: FicSettings) -> Report:
    """The FIC writes: one lane per identity, lanes in parallel, each lane strictly sequential (deletes
    first). Then the relocation record, less the namespaces whose new FIC could not be written."""
    outcomes: dict[int, Outcome] = {}
    lanes: dict[str, list[tuple[int, FicAction]]] = defaultdict(list)
    records: list[tuple[int, RecordRelocations]] = []
    for index, action in enumerate(p.actions):
        if isinstance(action, RecordRelocations):
            records.append((index, action))
        else:
            assert isinstance(action, PutFic | DeleteFic)
            lanes[action.identity].append((index, action))
    with ThreadPoolExecutor(max_workers=s.concurrency) as workers:
        for lane in workers.map(lambda lane: _run_lane(c.arm, lane), lanes.values()):
            outcomes.update(lane)
    failed = [o.action for o in outcomes.values() if o.result == "failed"]
    unwritten = {a.namespace for a in failed if isinstance(a, PutFic)}
    undeleted = {a.namespace for a in failed if isinstance(a, DeleteFic)}
    for index, record in records:
        outcomes[index] = _write_record(record, unwritten, undeleted, c, s)
    done = tuple(outcomes[i] for i in sorted(outcomes))
    findings, occupancy = verify(c, s, p, done)
    return Report(p, done, tuple(findings), {"occupancy_after": occupancy})


def _write_record(
    record: RecordRelocations, unwritten: set[str], undeleted: set[str], c: Clients, s: FicSettings
) -> Outcome:
    """The planned record, less namespaces whose new FIC failed, plus those whose old FIC is still there."""
    entries = [r for r in record.relocations if r.namespace not in unwritten]
    entries += [r for r in record.finishing if r.namespace in undeleted]
    try:
        cluster.write_record(cluster.kube_api(), c.state_namespace, s.state_configmap, entries, record.version)
    except Exception as exc:  # a conflict (another run wrote first) or an outage: the next run starts over
        return Outcome(record, "failed", f"{type(exc).__name__}: {exc}".splitlines()[0])
    differs = len(entries) != len(record.relocations)
    return Outcome(record, "ok", f"{len(entries)} entries written" if differs else "")


def _run_lane(arm: ArmMsi, lane: Sequence[tuple[int, FicAction]]) -> list[tuple[int, Outcome]]:
    from lib.clients.arm_msi import describe_error

    results = []
    for index, action in lane:
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
            ours = sum(1 for f in now[row["identity"]] if is_ours(f, s.fic_prefix, s.issuer))
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
        disagreeing = report.plan.sections.get("placement", {}).get("disagreeing", 0)
        Gauge(
            "cwj_fic_shard_disagreements",
            "Namespaces whose workspace ServiceAccount names another pool identity than --shard-hash predicts",
            registry=registry,
        ).set(disagreeing)

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
