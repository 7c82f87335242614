"""The run harness: config -> connect -> observe -> plan -> (dry-run stops here) -> apply -> report.

Exit codes: 0 converged/healthy; 1 an action failed or a finding reached the job's threshold;
2 bad usage or configuration (nothing written); 3 a safety guard refused the plan (nothing written).
Dry-run is not a flag threaded through the job: it is this module printing the plan and stopping.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from lib import limits, logs, render
from lib.model import Plan, Report, action_counts, finding_counts, has_errors, outcome_counts, worst_at_least
from lib.redact import scrub
from lib.settings import ConfigError, RunOptions, build_parser, resolve_run
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
    publish: Callable[[Report, S, int], None] | None = None  # metrics (gets the exit code); never on dry-run
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


def run(spec: JobSpec[S, C, T], argv: Sequence[str], environ: Mapping[str, str]) -> int:
    parser = build_parser(
        spec.name, spec.description, [RunOptions, spec.settings], version=version(), examples=spec.examples
    )
    parsed = parser.parse_args(list(argv))  # argparse itself exits 2 on unknown flags
    try:
        options, settings = resolve_run(spec.settings, parsed, environ)
        if spec.preflight is not None:
            spec.preflight(settings, environ)
    except ConfigError as exc:
        for error in exc.errors:  # every bad setting in one run, one line each
            print(f"{spec.name}: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    limits.set_limits(limits.Limits(options.request_timeout, options.retry_deadline))
    run_id = uuid.uuid4().hex[:12]
    logs.configure(spec.name, run_id, options.log_format, options.log_level)
    log = logs.get_logger()
    if options.allow_insecure_http:
        log.warning("run.insecure_http_allowed", note="http:// admitted to loopback hosts: local tests only")
    started = time.monotonic()
    summary: dict[str, Any] = {"dry_run": options.dry_run}
    code = EXIT_FAILED
    try:
        code = _run_phases(spec, settings, options, summary, log)
    except ConfigError as exc:
        for error in exc.errors:
            print(f"{spec.name}: configuration error: {scrub(str(error))}", file=sys.stderr)
        log.error("run.config_error", error=str(exc))
        code = EXIT_CONFIG
    except Exception as exc:
        log.error("run.failed", error=f"{type(exc).__name__}: {exc}", exc_info=options.log_level == "debug")
        print(f"{spec.name}: failed: {scrub(f'{type(exc).__name__}: {exc}')}", file=sys.stderr)
        code = EXIT_FAILED
    log.info("run.summary", exit_code=code, duration_s=round(time.monotonic() - started, 3), **summary)
    return code


def _run_phases(spec: JobSpec[S, C, T], settings: S, options: RunOptions, summary: dict[str, Any], log: Any) -> int:
    now = options.now or datetime.now(UTC)
    clients = spec.connect(settings)
    try:
        state = spec.observe(clients, settings)
        plan = spec.plan(state, settings, now)
        summary.update(planned=action_counts(plan), findings=finding_counts(plan.findings))
        log.info("plan.ready", actions=len(plan.actions), refusal=plan.refusal, **summary["planned"])
        if options.dry_run or plan.refusal:
            _emit(render.plan_text(spec.name, plan), render.plan_json(spec.name, plan), options.output)
            if plan.refusal:
                log.warning("plan.refused", reason=plan.refusal)
                return EXIT_REFUSED
            # A dry run that could not see everything is not a green light: same rule as a real run.
            return EXIT_FAILED if has_errors(plan.findings) else EXIT_OK
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
    _emit(render.report_text(spec.name, report), render.report_json(spec.name, report), options.output)
    code = exit_code_for(report, spec.fail_at(settings))
    if spec.publish is not None:
        try:
            spec.publish(report, settings, code)
        except Exception as exc:  # a metrics outage must not hide the run's own result, but it is not silent
            log.error("metrics.push_failed", error=f"{type(exc).__name__}: {exc}")
            summary["metrics_push_failed"] = True
            return EXIT_FAILED
    return code


def _emit(text: str, document: Mapping[str, Any], output: str) -> None:
    print(render.as_json(document) if output == "json" else text, flush=True)


def main(spec: JobSpec[Any, Any, Any]) -> None:
    import os

    sys.exit(run(spec, sys.argv[1:], os.environ))
