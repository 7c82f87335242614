"""token-expiry-check: warn before Coder service-account tokens expire; flag over-long and over-privileged ones.

observe: the accounts (named with --user, or every user) with their site roles and tokens, always listed
with include_expired=true. plan: the pure rules in rules.py -> findings and the token table, and alerts.py
-> the alerts new since the last scheduled run. apply: post those alerts to the webhook. Nothing is ever
written to Coder. publish: per-token expiry timestamps and findings to a Pushgateway.
Settings (flags, env vars, cross-field rules): settings.py; the policy file: policy.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.token_expiry_check.alerts import Alert
from jobs.token_expiry_check.rules import Observation, evaluate
from jobs.token_expiry_check.settings import ExpirySettings
from lib import harness
from lib.auth_choice import connect_vault, vault_auth
from lib.model import Outcome, Plan, Report, has_errors
from lib.render import rfc3339
from lib.settings import ConfigError, label_of

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from jobs.token_expiry_check.observe import Clients

# The Coder, Vault, webhook and Prometheus clients (requests, hvac, prometheus_client), and observe.py that
# reads through them, are imported where they are used, not above: `--help`, `--version` and a configuration
# error (exit 2) then load none of them (BENCHMARKS.md, start-up; tests/unit/test_startup_imports.py).

NAME = "token-expiry-check"


# ---- connect / observe ---------------------------------------------------------------------------------------


def read_token_file(path: Path) -> str:
    token = path.read_text(encoding="utf-8").strip()
    if not token:
        raise ConfigError(
            label_of(ExpirySettings, "token_file"), f"expected a Coder token in {path}, the file is empty"
        )
    return token


def connect(settings: ExpirySettings) -> Clients:
    from jobs.token_expiry_check.observe import Clients
    from lib.clients.coder import CoderClient

    coder = CoderClient(settings.coder_url, read_token_file(settings.token_file))
    if not settings.vault_check:
        return Clients(coder)
    return Clients(coder, connect_vault(settings.vault_auth, settings.vault_jwt_file, _vault_labels()))


def _vault_labels() -> tuple[str, str]:
    return label_of(ExpirySettings, "vault_auth"), label_of(ExpirySettings, "vault_jwt_file")


def preflight(settings: ExpirySettings, environ: Mapping[str, str]) -> None:
    if settings.vault_check:  # no Vault credential: exit 2 in one line, before any request
        vault_auth(settings.vault_auth, environ, settings.vault_jwt_file, _vault_labels())


def close(clients: Clients) -> None:
    if clients.vault is not None and clients.vault.owns_token:
        clients.vault.revoke_self()


def observe(clients: Clients, settings: ExpirySettings) -> Observation:
    from jobs.token_expiry_check.observe import observe_all

    return observe_all(clients, settings)


# ---- plan ------------------------------------------------------------------------------------------------------


def plan(observed: Observation, settings: ExpirySettings, now: datetime) -> Plan:
    result = evaluate(observed, settings.policy, now, settings.schedule_interval, settings.renew_before)
    return Plan(
        actions=result.alerts,
        findings=result.findings,
        sections={
            "checked_at": rfc3339(now),
            "server": {"version": observed.server_version, "expiry": expiry_note(result.sliding_observed)},
            "tokens": list(result.rows),
        },
    )


def expiry_note(sliding_observed: int) -> str:
    # Coder slid API-token expiry on every use until PR #26376 (2026-06), which was also backported to
    # older release branches (#26442, 2.29), so a version number cannot tell; the tokens themselves can.
    if sliding_observed:
        return (
            f"sliding expiry observed on {sliding_observed} token(s): expires_at is a lower bound that moves "
            "forward with use; lifetime is judged by lifetime_seconds"
        )
    return (
        "no token shows sliding expiry, but servers without PR #26376 slide expires_at on use unless run with "
        "--disable-session-expiry-refresh: treat expires_at as a lower bound; lifetime is judged by lifetime_seconds"
    )


# ---- apply: post the new alerts ----------------------------------------------------------------------------------


def apply(plan: Plan, clients: Clients, settings: ExpirySettings) -> Report:
    alerts = [a for a in plan.actions if isinstance(a, Alert)]
    if not alerts:
        return Report(plan)
    if settings.webhook_url is None:
        return Report(plan, tuple(Outcome(a, "skipped", "no --webhook-url") for a in alerts))
    from lib.clients.webhook import Webhook, WebhookError, slack_payload

    payload = slack_payload(
        f"{NAME}: {len(alerts)} Coder token alert(s)",
        [a.text() for a in alerts],
        {"alerts": [a.describe() for a in alerts]},
    )
    try:
        Webhook(settings.webhook_url).post(payload)
    except WebhookError as exc:
        return Report(plan, tuple(Outcome(a, "failed", str(exc)) for a in alerts))
    return Report(plan, tuple(Outcome(a, "ok", "posted") for a in alerts))


def fail_at(settings: ExpirySettings) -> str:
    # `error` findings (the check could not see something: unreadable tokens, a 403) fail the run in the
    # harness whatever --fail-on says: a blind check must never pass as healthy, not even report-only.
    return settings.fail_on


# ---- publish ----------------------------------------------------------------------------------------------------


def publish(report: Report, settings: ExpirySettings, code: int) -> None:
    if settings.pushgateway_url is None:
        return
    from lib.clients import pushgateway

    # the check saw everything and delivered its alerts
    succeeded = not report.failed and not has_errors(report.all_findings)
    pushgateway.publish(
        settings.pushgateway_url,
        NAME,
        report,
        exit_code=code,
        succeeded=succeeded,
        extra=lambda r: token_gauges(r, report),
    )


def token_gauges(registry: CollectorRegistry, report: Report) -> None:
    from prometheus_client import Gauge

    expiry = Gauge(
        "cwj_token_expiry_timestamp_seconds",
        "Unix time each Coder token expires (a lower bound where expiry slides)",
        ["user", "token_name"],
        registry=registry,
    )
    rows: list[dict[str, Any]] = list(report.plan.sections.get("tokens", []))
    for row in rows:
        if row["expires_at"]:
            stamp = datetime.fromisoformat(row["expires_at"].replace("Z", "+00:00")).timestamp()
            expiry.labels(row["user"], row["token_name"]).set(stamp)


SPEC = harness.JobSpec(
    name=NAME,
    description=__doc__.splitlines()[0] if __doc__ else NAME,
    settings=ExpirySettings,
    connect=connect,
    observe=observe,
    plan=plan,
    apply=apply,
    fail_at=fail_at,
    publish=publish,
    close=close,
    preflight=preflight,
    examples=(
        "token-expiry-check --coder-url https://coder.example.com --token-file ./owner-token --all-users",
        "token-expiry-check --user workspace-bot --fail-on warning --now 2026-07-01T00:00:00Z   # what alerts then?",
    ),
)


def main() -> None:
    harness.main(SPEC)
