"""The run harness: config -> connect -> observe -> plan -> (dry-run stops here) -> apply -> report.

Exit codes: 0 converged/healthy; 1 an action failed or a finding reached the job's threshold;
2 bad usage or configuration (nothing written); 3 a safety guard refused the plan (nothing written).
Dry-run is not a flag threaded through the job: it is this module printing the plan and stopping.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from lib import limits, logs, render, runinfo
from lib.cli import build_parser, effective, settings_named_in
from lib.model import Plan, Report, action_counts, finding_counts, has_errors, outcome_counts, worst_at_least
from lib.redact import scrub
from lib.settings import ConfigError, RunOptions, resolve, resolve_run
from lib.version import version

S = TypeVar("S")
C = TypeVar("C")
T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_REFUSED = 0, 1, 2, 3


@dataclass(frozen=True)
class JobSpec(Generic[S, C, T]):
    name: str
    description: str
    settings: type[S]
    connect: Callable[[S], C]
    observe: Callable[[C, S], T]
    plan: Callable[[T, S, datetime], Plan]
    apply: Callable[[Plan, C, S], Report]
    fail_at: Callable[[S], str] = lambda _s: "error"  # findings at/above this severity fail the run
    publish: Callable[[Report, S, int], None] | None = None  # metrics (gets the exit code); a dry-run too (cwj_dry_run)
    close: Callable[[C], None] | None = None  # release what connect took (e.g. revoke a Vault token)
    # the settings against the environment (which credential applies, a kubeconfig context): ConfigError here
    # is the same one line as a bad flag, before any log line or request; connect decides the same way again
    preflight: Callable[[S, Mapping[str, str]], None] | None = None
    examples: tuple[str, ...] = ()  # command lines for --help's epilog


def exit_code_for(report: Report, fail_at: str) -> int:
    """`error` findings mean the job could not see or do something it must (a failed observation, a
    conflict it refused): they fail the run whatever the job's threshold, so a blind run never passes."""
    if report.failed or has_errors(report.all_findings) or worst_at_least(report.all_findings, fail_at):
        return EXIT_FAILED
    return EXIT_OK


MAX_SUMMARY_FAILURES = 10  # run.summary names this many failures; the report has them all


@dataclass
class _Output:
    """The plan or report, printed after run.summary so the readable report never sits between log lines."""

    text: str = ""
    document: Mapping[str, Any] | None = None
    context: Mapping[str, Any] | None = None  # the run's own facts for the JSON document (render.plan_json)


def run(spec: JobSpec[S, C, T], argv: Sequence[str], environ: Mapping[str, str]) -> int:
    parser = build_parser(
        spec.name, spec.description, [RunOptions, spec.settings], version=version(), examples=spec.examples
    )
    parsed = parser.parse_args(list(argv))  # argparse itself exits 2 on unknown flags
    run_id = uuid.uuid4().hex[:12]
    started = time.monotonic()
    try:
        options, settings = resolve_run(spec.settings, parsed, environ)
        if spec.preflight is not None:
            spec.preflight(settings, environ)
    except ConfigError as exc:
        return _config_failure(spec, exc, parsed, environ, run_id, started)
    limits.set_limits(limits.Limits(options.request_timeout, options.retry_deadline))
    runinfo.set_current(runinfo.RunInfo(spec.name, run_id, options.cluster, started, options.dry_run))
    logs.configure(spec.name, run_id, options.log_format, options.log_level)
    log = logs.get_logger()
    shown = {"settings": effective(settings, parsed, environ), "options": effective(options, parsed, environ)}
    log.info("run.start", version=version(), dry_run=options.dry_run, **shown)
    if options.allow_insecure_http:
        log.warning("run.insecure_http_allowed", note="http:// admitted to loopback hosts: local tests only")
    summary: dict[str, Any] = {"dry_run": options.dry_run}
    out = _Output(context={"version": version(), "run_id": run_id, "dry_run": options.dry_run, **shown})
    code = EXIT_FAILED
    try:
        code = _run_phases(spec, settings, options, summary, log, out)
    except ConfigError as exc:
        for error in exc.errors:
            print(f"{spec.name}: configuration error: {scrub(str(error))}", file=sys.stderr)
        summary["error"] = f"configuration error: {exc}"
        code = EXIT_CONFIG
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        failure += settings_named_in(settings, failure)  # which setting pointed at the endpoint that failed
        log.error("run.failed", error=failure, exc_info=options.log_level == "debug")
        print(f"{spec.name}: failed: {scrub(failure)}", file=sys.stderr)
        summary["error"] = failure
        code = EXIT_FAILED
    if "failures" in summary:
        summary["failures"] = [f + settings_named_in(settings, f) for f in summary["failures"]]
        summary["error"] = summary["failures"][0]
    if out.document is not None and options.output == "log":
        log.info("run.report" if out.document.get("kind") == "report" else "run.plan", document=out.document)
    log.info("run.summary", exit_code=code, duration_s=round(time.monotonic() - started, 3), **summary)
    if out.document is not None and options.output != "log":
        print(render.as_json(out.document) if options.output == "json" else out.text, flush=True)
    return code


def _config_failure(
    spec: JobSpec[S, C, T],
    exc: ConfigError,
    parsed: argparse.Namespace,
    environ: Mapping[str, str],
    run_id: str,
    started: float,
) -> int:
    """Every bad setting on its own line, then run.summary like any other run (log format and level as set,
    when those two were readable)."""
    for error in exc.errors:  # every bad setting in one run, one line each
        print(f"{spec.name}: configuration error: {error}", file=sys.stderr)
    try:
        options = resolve(RunOptions, parsed, environ)
        log_format, log_level = options.log_format, options.log_level
    except ConfigError:
        log_format, log_level = "auto", "info"
    logs.configure(spec.name, run_id, log_format, log_level)
    logs.get_logger().info(
        "run.summary",
        exit_code=EXIT_CONFIG,
        duration_s=round(time.monotonic() - started, 3),
        error=f"configuration error: {'; '.join(str(e) for e in exc.errors)}",
        config_errors=[str(e) for e in exc.errors],
    )
    return EXIT_CONFIG


def _failures(report: Report) -> list[str]:
    """One line per failed action and `error` finding, for run.summary (the report has every detail)."""
    lines = [
        f"{' '.join(str(v) for v in o.action.describe().values() if v)}: {o.detail}".strip(": ") for o in report.failed
    ]
    lines += [f"{f.rule} {f.subject}: {f.message}" for f in report.all_findings if f.severity == "error"]
    return lines


def _run_phases(
    spec: JobSpec[S, C, T], settings: S, options: RunOptions, summary: dict[str, Any], log: Any, out: _Output
) -> int:
    now = options.now or datetime.now(UTC)
    context = {**(out.context or {}), "as_of": render.rfc3339(now)}  # --now, or the clock
    clients = spec.connect(settings)
    try:
        state = spec.observe(clients, settings)
        plan = spec.plan(state, settings, now)
        summary.update(planned=action_counts(plan), findings=finding_counts(plan.findings))
        log.info("plan.ready", actions=len(plan.actions), refusal=plan.refusal, **summary["planned"])
        if options.dry_run or plan.refusal:
            out.text, out.document = render.plan_text(spec.name, plan), render.plan_json(spec.name, plan, context)
            if plan.refusal:
                log.warning("plan.refused", reason=plan.refusal)
                summary["error"] = f"refused: {plan.refusal}"
                return EXIT_REFUSED
            # A dry run that could not see everything is not a green light: same rule as a real run.
            errors = [f"{f.rule} {f.subject}: {f.message}" for f in plan.findings if f.severity == "error"]
            if errors:
                summary.update(error=errors[0], failures=errors[:MAX_SUMMARY_FAILURES])
            code = EXIT_FAILED if errors else EXIT_OK
            # its metrics say it was a dry-run (cwj_dry_run 1, never a success): a chart left on dryRun shows
            return _publish(spec, Report(plan), settings, code, summary, log)
        report = spec.apply(plan, clients, settings)
    finally:
        if spec.close is not None:
            with suppress(Exception):
                spec.close(clients)
    for outcome in report.outcomes:
        event = "action.failed" if outcome.result == "failed" else "action.done"
        fields = {**outcome.action.describe(), "result": outcome.result, "detail": outcome.detail}
        (log.error if outcome.result == "failed" else log.info)(event, **fields)
    for finding in report.all_findings:
        log.warning("finding", **finding.describe())
    summary.update(results=outcome_counts(report), findings=finding_counts(report.all_findings))
    failures = _failures(report)
    if failures:
        summary.update(error=failures[0], failures=failures[:MAX_SUMMARY_FAILURES])
    out.text, out.document = render.report_text(spec.name, report), render.report_json(spec.name, report, context)
    return _publish(spec, report, settings, exit_code_for(report, spec.fail_at(settings)), summary, log)


def _publish(spec: JobSpec[S, C, T], report: Report, settings: S, code: int, summary: dict[str, Any], log: Any) -> int:
    if spec.publish is not None:
        try:
            spec.publish(report, settings, code)
        except Exception as exc:  # a metrics outage must not hide the run's own result, but it is not silent
            log.error("metrics.push_failed", error=f"{type(exc).__name__}: {exc}")
            summary["metrics_push_failed"] = True
            summary.setdefault("error", f"metrics push failed: {type(exc).__name__}: {exc}")
            return EXIT_FAILED
    return code


def main(spec: JobSpec[Any, Any, Any]) -> None:
    import os

    sys.exit(run(spec, sys.argv[1:], os.environ))
