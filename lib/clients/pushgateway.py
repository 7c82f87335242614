"""Metrics to a Prometheus Pushgateway: a CronJob is gone before anyone could scrape it.

Every job pushes `cwj_last_run_timestamp_seconds`, `cwj_last_success_timestamp_seconds` (only when the
run succeeded, so "the job stopped succeeding" is alertable) and `cwj_actions_total{kind,result}`;
jobs add their own gauges through `extra`. Labels never carry secret values: they are names and kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from lib import limits
from lib.model import Report
from lib.retry import Backoff, call_with_retry, retry_after_seconds

PUSH_BACKOFF = Backoff(base=0.5, cap=5.0, deadline=20.0, max_attempts=3)

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


class PushError(Exception):
    """The push failed after its retries: one line naming the Pushgateway's host (never its credentials)."""


def push(url: str, job: str, registry: CollectorRegistry, timeout: float = 10.0) -> None:
    """PUT the registry; a refused connection, a timeout, 429 (honouring Retry-After) or 5xx is retried."""
    host = urlparse(url).netloc.rsplit("@", 1)[-1]  # user:password@ is never printed
    try:
        call_with_retry(
            # Grouping by job only: each run replaces the previous run's series instead of piling up.
            lambda: push_to_gateway(url, job=job, registry=registry, timeout=limits.timeout(timeout)),
            transient=_transient,
            retry_after=lambda e: retry_after_seconds(dict(e.headers.items())) if isinstance(e, HTTPError) else None,
            backoff=PUSH_BACKOFF,
        )
    except OSError as exc:  # urllib's HTTPError, URLError and socket timeouts are all OSErrors
        raise PushError(f"Pushgateway PUT /metrics/job/{job} to {host} failed: {_describe(exc)}") from None


def _transient(exc: Exception) -> bool:
    if isinstance(exc, HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, OSError)


def _describe(exc: OSError) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
