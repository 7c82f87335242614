"""fic-reconcile's own gauges, pushed beside the common ones (lib/clients/pushgateway.py): FIC slots per
identity, pool headroom, shard disagreements, foreign-issuer FICs, deferred work, time to credential and (with
--probe) time to usable."""

from __future__ import annotations

from collections import Counter
from typing import Any

from jobs.fic_reconcile.identity_binding.model import bindings_after
from jobs.fic_reconcile.model import DeleteFic
from lib.model import Report


def fic_gauges(report: Report, registry: Any) -> None:
    from prometheus_client import Gauge

    fics = Gauge("cwj_fic_identity_fics", "FICs per pool identity", ["identity", "owner"], registry=registry)
    limit = Gauge("cwj_fic_identity_limit", "FIC limit per pool identity", ["identity"], registry=registry)
    for row in report.sections.get("occupancy_after", []):
        fics.labels(row["identity"], "ours").set(float(row["ours"]))
        fics.labels(row["identity"], "unmanaged").set(float(row["unmanaged"]))
        limit.labels(row["identity"]).set(float(row["limit"]))
    foreign = Gauge(
        "cwj_fic_foreign_issuer_credentials",
        "FICs on the pool identity whose issuer is neither the cluster's nor in --known-issuers",
        ["identity"],
        registry=registry,
    )
    held = Counter(row["identity"] for row in report.plan.sections.get("foreign_issuer_credentials", []))
    for row in report.plan.sections.get("capacity", []):  # every pool identity: 0 when clean, so alerts resolve
        foreign.labels(row["identity"]).set(held[row["identity"]])
    pool = report.plan.sections.get("pool_capacity", {})
    Gauge("cwj_fic_pool_namespaces", "Workspace namespaces", registry=registry).set(pool.get("namespaces", 0))
    Gauge("cwj_fic_pool_safe_namespaces", "Namespaces the pool holds at <=1% overflow risk", registry=registry).set(
        pool.get("safe_namespaces", 0)
    )
    Gauge(
        "cwj_fic_shard_disagreements",
        "Namespaces whose workspace ServiceAccount names another pool identity than --shard-hash predicts",
        registry=registry,
    ).set(report.plan.sections.get("placement", {}).get("disagreeing", 0))
    deferred = Gauge(
        "cwj_fic_deferred_actions", "Writes left for the next run (run budget)", ["kind"], registry=registry
    )
    counts = Counter(o.action.kind for o in report.outcomes if o.result == "deferred")
    for kind in ("create", "update", "delete"):
        deferred.labels(kind).set(counts[kind])
    ttc = Gauge(
        "cwj_fic_time_to_credential_seconds",
        "Seconds from a namespace's creation to its FIC, over this run's creates",
        ["quantile"],
        registry=registry,
    )
    longest = Gauge(
        "cwj_fic_time_to_credential_max_seconds", "The longest time to credential in this run", registry=registry
    )
    waited = report.sections.get("time_to_credential", {})
    if waited.get("created"):  # a run that created nothing pushes no sample: no made-up zero
        ttc.labels("0.5").set(waited["p50_s"])
        ttc.labels("0.99").set(waited["p99_s"])
        longest.set(waited["max_s"])
    _time_to_usable(report, registry)
    _bindings(report, registry)


def _time_to_usable(report: Report, registry: Any) -> None:
    """The families exist in every push; samples only from a run that probed (--probe off: no made-up zeros)."""
    from prometheus_client import Gauge

    results = Gauge(
        "cwj_fic_probe_namespaces",
        "Namespaces the readiness probe tried, by whether Entra granted their exchange within the bound",
        ["result"],
        registry=registry,
    )
    ttu = Gauge(
        "cwj_fic_time_to_usable_seconds",
        "Seconds from a namespace's creation to Entra's first grant of its workspace's exchange (probed)",
        ["quantile"],
        registry=registry,
    )
    longest = Gauge("cwj_fic_time_to_usable_max_seconds", "The longest time to usable in this run", registry=registry)
    probed = report.sections.get("time_to_usable")
    if probed is None:
        return
    results.labels("usable").set(probed["usable"])
    results.labels("not_usable").set(probed["not_usable"])
    if "p50_s" in probed:  # something was granted
        ttu.labels("0.5").set(probed["p50_s"])
        ttu.labels("0.99").set(probed["p99_s"])
        longest.set(probed["max_s"])


def _bindings(report: Report, registry: Any) -> None:
    """--mode identity-binding|both: per identity, whether its binding is usable and how many ServiceAccounts its
    ClusterRoleBinding names after the run; our per-namespace FICs the migration has still to prune. The families
    exist in every push; samples only from a run in those modes (fic mode: no made-up zeros)."""
    from prometheus_client import Gauge

    ready = Gauge(
        "cwj_fic_identity_binding_ready",
        "1 when the pool identity's AKS identity binding has provisioned (Succeeded)",
        ["identity"],
        registry=registry,
    )
    subjects = Gauge(
        "cwj_fic_rbac_subjects",
        "Workspace ServiceAccounts the identity's ClusterRoleBinding names after the run",
        ["identity"],
        registry=registry,
    )
    remaining = Gauge(
        "cwj_fic_migration_fics_remaining",
        "Per-namespace FICs of ours on the identity that the identity-binding migration has still to prune",
        ["identity"],
        registry=registry,
    )
    for row in bindings_after(report.plan.sections.get("identity_bindings", []), report.outcomes):  # dry-run too
        ready.labels(row["identity"]).set(1.0 if row["binding"] == "Succeeded" else 0.0)
        subjects.labels(row["identity"]).set(float(row["subjects"]))
    if "fic_migration" not in report.plan.sections:
        return
    ok = [o.action for o in report.outcomes if o.result == "ok"]
    pruned = Counter(a.identity for a in ok if isinstance(a, DeleteFic))
    for row in report.plan.sections.get("capacity", []):
        remaining.labels(row["identity"]).set(float(int(row["ours"]) - pruned[row["identity"]]))
