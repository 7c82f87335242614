"""coder-token-mint: keep a valid Coder CLI session token in Vault KV v2 for External Secrets to fan out,
rotate it before it expires, and revoke superseded tokens once their successor has been in Vault for a grace.

Flow (issues 5, 16): validate the bootstrap token (Vault is not touched when Coder refuses it) -> read the
target's roles and Coder's lifetime cap for it -> log in to Vault -> read the entry and its version -> ask
Coder about the token in it (with a call its scopes permit) -> list the user's tokens -> plan (plan.py, pure;
guards.py refuses a privileged target) -> apply (apply.py) in order, stopping at the first failed mint or write.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from jobs.coder_token_mint import plan as mint_plan
from jobs.coder_token_mint.plan import MintState
from jobs.coder_token_mint.settings import MintSettings
from lib import harness
from lib.auth_choice import connect_vault, vault_auth, vault_login
from lib.clients.coder_types import token_id
from lib.logs import get_logger
from lib.model import Plan, Report
from lib.redact import register_secret
from lib.settings import ConfigError, label_of

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from jobs.coder_token_mint.apply import Clients
    from lib.clients.vault import VaultClient

# The Coder, Vault, webhook and Prometheus clients (requests, hvac, prometheus_client) are imported where they
# are used, not above: `--help`, `--version` and a configuration error (exit 2) then load none of them
# (BENCHMARKS.md, start-up; tests/unit/test_startup_imports.py).


def connect(s: MintSettings) -> Clients:
    from jobs.coder_token_mint.apply import Clients
    from lib.clients.coder import CoderClient

    try:
        bootstrap = s.bootstrap_token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            label_of(MintSettings, "bootstrap_token_file"), f"expected a readable file ({exc.strerror})"
        ) from None
    if not bootstrap:
        raise ConfigError(label_of(MintSettings, "bootstrap_token_file"), "expected a token, the file is empty")
    register_secret(bootstrap)
    if s.webhook_url:
        register_secret(s.webhook_url)  # a Slack webhook URL is a credential
    vault = connect_vault(s.vault_auth, s.vault_jwt_file, _vault_labels())

    def login() -> VaultClient:
        return vault_login(vault, s.vault_addr, s.vault_role, s.vault_jwt_file, s.vault_auth_mount)

    return Clients(CoderClient(s.coder_url, bootstrap), login, bootstrap_id=token_id(bootstrap))


def _vault_labels() -> tuple[str, str]:
    return label_of(MintSettings, "vault_auth"), label_of(MintSettings, "vault_jwt_file")


def preflight(s: MintSettings, environ: Mapping[str, str]) -> None:
    vault_auth(s.vault_auth, environ, s.vault_jwt_file, _vault_labels())  # no Vault credential: exit 2, one line


# ---- observe (the Coder-side checks are in observe.py) ----------------------------------------------------


def observe(clients: Clients, s: MintSettings) -> MintState:
    from jobs.coder_token_mint.observe import (
        bootstrap_token,
        coder_token,
        inspect_entry,
        lifetime_cap,
        target_roles,
        validate_bootstrap,
    )

    me = validate_bootstrap(clients.coder)
    bootstrap = bootstrap_token(clients.coder, clients.bootstrap_id, me)
    user = clients.coder.user(s.user) if s.user else me
    roles, cap = target_roles(clients.coder, user), lifetime_cap(clients.coder, user)
    kv = clients.vault_client().read_kv(s.kv_mount, s.kv_path)
    entry = inspect_entry(clients.coder, kv, user)
    listing = clients.coder.tokens(user.username)
    tokens = tuple(coder_token(t) for t in listing)
    unreadable = tuple(f"{m.label}: {m.problem}" for m in listing.malformed)
    return MintState(user.username, kv.version, entry, tokens, roles, not s.user, cap, unreadable, user.id, bootstrap)


def plan(state: MintState, s: MintSettings, now: datetime) -> Plan:
    return mint_plan.plan(state, s.policy(), now)


def apply(p: Plan, clients: Clients, s: MintSettings) -> Report:
    from jobs.coder_token_mint import apply as applying

    return applying.apply(p, clients, s)


def close(clients: Clients) -> None:
    """Revoke the Vault token this run logged in for; an SRE's own VAULT_TOKEN is left alone."""
    from lib.clients.vault import VaultError

    if clients.vault is not None and clients.vault.owns_token:
        try:
            clients.vault.revoke_self()
        except VaultError as exc:
            get_logger().warning("vault.revoke_self_failed", error=str(exc))


def publish(report: Report, s: MintSettings, code: int) -> None:
    if s.pushgateway_url:
        from lib.clients import pushgateway

        pushgateway.publish(
            s.pushgateway_url,
            SPEC.name,
            report,
            exit_code=code,
            succeeded=code == 0,
            extra=lambda r: bootstrap_gauge(r, report),
        )


def bootstrap_gauge(registry: CollectorRegistry, report: Report) -> None:
    """The bootstrap token's expiry, the same series token-expiry-check pushes per token, so the chart's
    CoderTokenExpiring alert (14 days) covers the root of trust too."""
    from prometheus_client import Gauge

    section = report.plan.sections.get("bootstrap") or {}
    if not section.get("expires_at"):
        return
    gauge = Gauge(
        "cwj_token_expiry_timestamp_seconds",
        "Unix time each Coder token expires (a lower bound where expiry slides)",
        ["user", "token_name"],
        registry=registry,
    )
    expires = datetime.fromisoformat(section["expires_at"].replace("Z", "+00:00"))
    gauge.labels(section["user"], section["name"] or section["token_id"]).set(expires.timestamp())


SPEC = harness.JobSpec(
    name="coder-token-mint",
    description="Keep a valid Coder CLI session token in Vault KV v2; rotate it and revoke superseded tokens.",
    settings=MintSettings,
    connect=connect,
    observe=observe,
    plan=plan,
    apply=apply,
    publish=publish,
    close=close,
    preflight=preflight,
    examples=(
        "VAULT_TOKEN=$(vault print token) coder-token-mint --dry-run --coder-url https://coder.example.com \\",
        "    --bootstrap-token-file ./bootstrap-token --user workspace-bot --vault-addr https://vault.example.com:8200",
        "coder-token-mint --force-rotate  # a leaked token: mint, write, then revoke every other prefixed token",
    ),
)


def main() -> None:
    harness.main(SPEC)
