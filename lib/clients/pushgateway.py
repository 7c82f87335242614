"""Metrics to a Prometheus Pushgateway: a CronJob is gone before anyone could scrape it.

A push replaces a whole group (PUT), so each job pushes two groups, keyed by job and cluster (two clusters on
one Pushgateway never overwrite each other; --cluster, `clusterName` in the chart):

- `/metrics/job/<job>/cluster/<cluster>`, replaced by every run that reaches publish, failed or not:
  `cwj_last_run_timestamp_seconds`, `cwj_last_run_duration_seconds`, `cwj_last_run_exit_code`,
  `cwj_build_info{version}` (always 1), `cwj_dry_run` (1: the run only planned; a dry-run pushes this group
  too, so a chart left on `dryRun` shows), `cwj_actions{kind,result}` and `cwj_findings{severity,rule}`
  (counts in that run: gauges, hence no `_total`), and each job's own gauges (`extra`);
- `/metrics/job/<job>/cluster/<cluster>/outcome/success`, replaced only by a run that succeeded and wrote:
  `cwj_last_success_timestamp_seconds`. A failed run never touches it, so the staleness alert
  (`time() - cwj_last_success_timestamp_seconds`) keeps its series exactly when the job fails.

Labels never carry secret values: they are names and kinds.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from urllib.error import HTTPError, URLError
from urllib.parse import urlparse

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from lib import limits, reach, runinfo
from lib.model import Report
from lib.retry import Backoff, call_with_retry, retry_after_seconds
from lib.version import version

PUSH_BACKOFF = Backoff(base=0.5, cap=5.0, deadline=20.0, max_attempts=3)
SUCCESS_GROUP = {"outcome": "success"}

Extra = Callable[[CollectorRegistry], None]


def run_registry(report: Report, exit_code: int, extra: Extra | None = None) -> CollectorRegistry:
    """What every run that reaches publish pushes, failed or not."""
    registry = CollectorRegistry()
    Gauge("cwj_last_run_timestamp_seconds", "Unix time the job last finished a run", registry=registry).set(time.time())
    Gauge("cwj_last_run_duration_seconds", "How long the last run took", registry=registry).set(
        round(runinfo.elapsed(), 3)
    )
    Gauge(
        "cwj_last_run_exit_code", "Exit code of the last run (0 ok, 1 failed, 2 config, 3 refused)", registry=registry
    ).set(exit_code)
    Gauge("cwj_build_info", "Version of coder-wi-jobs that pushed; always 1", ["version"], registry=registry).labels(
        version()
    ).set(1)
    Gauge("cwj_dry_run", "1 when the last run was a dry-run (it wrote nothing)", registry=registry).set(
        1 if runinfo.current().dry_run else 0
    )
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


def success_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge("cwj_last_success_timestamp_seconds", "Unix time the job last succeeded", registry=registry).set(time.time())
    return registry


def publish(url: str, job: str, report: Report, *, exit_code: int, succeeded: bool, extra: Extra | None = None) -> None:
    """Push the run group, then (only when the run succeeded, and wrote: never a dry-run) the success group."""
    cluster = {"cluster": runinfo.current().cluster}
    push(url, job, run_registry(report, exit_code, extra), grouping=cluster)
    if succeeded and not runinfo.current().dry_run:
        push(url, job, success_registry(), grouping={**cluster, **SUCCESS_GROUP})


class PushError(Exception):
    """The push failed after its retries: one line naming the Pushgateway's host (never its credentials)."""


def push(
    url: str, job: str, registry: CollectorRegistry, timeout: float = 10.0, grouping: Mapping[str, str] | None = None
) -> None:
    """PUT the registry to the group; a refused connection, a timeout, 429 (honouring Retry-After) or 5xx is
    retried."""
    host = urlparse(url).netloc.rsplit("@", 1)[-1]  # user:password@ is never printed
    key = dict(grouping or {})
    path = "/".join([f"/metrics/job/{job}", *(f"{k}/{v}" for k, v in key.items())])
    try:
        call_with_retry(
            lambda: push_to_gateway(url, job=job, registry=registry, grouping_key=key, timeout=limits.timeout(timeout)),
            transient=_transient,
            retry_after=lambda e: retry_after_seconds(dict(e.headers.items())) if isinstance(e, HTTPError) else None,
            backoff=PUSH_BACKOFF,
            client="pushgateway",
            call=f"PUT {path}",
        )
    except OSError as exc:  # urllib's HTTPError, URLError and socket timeouts are all OSErrors
        raise PushError(f"Pushgateway PUT {path} to {host} failed: {_describe(exc)}") from None


def _transient(exc: Exception) -> bool:
    if isinstance(exc, HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, OSError)


def _describe(exc: OSError) -> str:
    if isinstance(exc, HTTPError):
        return f"HTTP {exc.code}"
    unreachable = reach.describe(exc)
    if unreachable:
        return unreachable
    if isinstance(exc, URLError):
        return f"{type(exc.reason).__name__}: {exc.reason}"
    return f"{type(exc).__name__}: {exc}"
