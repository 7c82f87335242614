"""Metrics to a Prometheus Pushgateway: a CronJob is gone before anyone could scrape it.

Every job pushes `cwj_last_run_timestamp_seconds`, `cwj_last_success_timestamp_seconds` (only when the
run succeeded, so "the job stopped succeeding" is alertable) and `cwj_actions_total{kind,result}`;
jobs add their own gauges through `extra`. Labels never carry secret values: they are names and kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from lib.model import Report

Extra = Callable[[CollectorRegistry], None]


def report_registry(job: str, report: Report, succeeded: bool, extra: Extra | None = None) -> CollectorRegistry:
    registry = CollectorRegistry()
    now = time.time()
    Gauge("cwj_last_run_timestamp_seconds", "Unix time the job last finished", registry=registry).set(now)
    if succeeded:
        Gauge("cwj_last_success_timestamp_seconds", "Unix time the job last succeeded", registry=registry).set(now)
    actions = Gauge("cwj_actions", "Actions in the last run by kind and result", ["kind", "result"], registry=registry)
    for outcome in report.outcomes:
        actions.labels(outcome.action.kind, outcome.result).inc()
    findings = Gauge(
        "cwj_findings", "Findings in the last run by severity and rule", ["severity", "rule"], registry=registry
    )
    for finding in report.all_findings:
        findings.labels(finding.severity, finding.rule).inc()
    if extra is not None:
        extra(registry)
    return registry


def push(url: str, job: str, registry: CollectorRegistry, timeout: float = 10.0) -> None:
    # Grouping by job only: each run replaces the previous run's series instead of piling up.
    push_to_gateway(url, job=job, registry=registry, timeout=timeout)
