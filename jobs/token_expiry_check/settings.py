"""Settings of token-expiry-check: every flag, its env var, its parser (the --policy-file YAML is parsed and
validated by policy.py while the flags are read, so a bad policy exits 2 before any request), and
the cross-field rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from jobs.token_expiry_check.policy import Policy, load_policy_file
from lib.auth_choice import POD_SA_TOKEN, vault_auth_setting
from lib.settings import (
    CODER,
    OUTPUT,
    VAULT,
    ConfigError,
    label_of,
    one_of,
    optional,
    parse_duration,
    parse_https_url,
    parse_kv_path,
    parse_readable_file,
    parse_service_url,
    setting,
    switch,
)


@dataclass(frozen=True)
class ExpirySettings:
    coder_url: str = setting("--coder-url", "Coder base URL", env="CODER_URL", parse=parse_https_url, group=CODER)
    token_file: Path = setting(
        "--token-file",
        "file holding a Coder token that can read the accounts' tokens (Owner: Coder hides them from Auditors)",
        env="CWJ_CODER_TOKEN_FILE",
        parse=parse_readable_file,
        group=CODER,
    )
    users: tuple[str, ...] = setting(
        "--user", "check this user (username or id)", default=(), repeatable=True, group=CODER, metavar="USER"
    )
    all_users: bool = switch("--all-users", "check every user the token can list", group=CODER)
    policy_file: Policy | None = setting(
        "--policy-file",
        "YAML token policy (defaults plus per-user overrides); built-in defaults when unset",
        env="CWJ_POLICY_FILE",
        parse=load_policy_file,
        default=None,
        metavar="FILE",
    )
    vault_check: bool = switch(
        "--vault-check", "also check the Vault-held workspace token from coder-token-mint", group=VAULT
    )
    vault_addr: str = setting(
        "--vault-addr",
        "Vault address (for --vault-check)",
        env="VAULT_ADDR",
        parse=optional(parse_service_url, ""),
        default="",
        group=VAULT,
    )
    vault_auth: str = vault_auth_setting()
    vault_role: str = setting(
        "--vault-role", "Vault Kubernetes-auth role", default="token-expiry-check", group=VAULT, metavar="ROLE"
    )
    vault_jwt_file: Path = setting(
        "--vault-jwt-file",
        "service-account JWT for Vault Kubernetes auth",
        parse=Path,
        default=POD_SA_TOKEN,
        group=VAULT,
    )
    vault_auth_mount: str = setting(
        "--vault-auth-mount",
        "mount of the Kubernetes auth method",
        parse=parse_kv_path,
        default="kubernetes",
        group=VAULT,
    )
    kv_mount: str = setting(
        "--kv-mount", "KV v2 mount coder-token-mint writes to", parse=parse_kv_path, default="secret", group=VAULT
    )
    kv_path: str = setting(
        "--kv-path",
        "KV v2 path of coder-token-mint's entry",
        parse=parse_kv_path,
        default="coder-cli-session-token",
        group=VAULT,
    )
    renew_before: timedelta | None = setting(
        "--renew-before",
        "coder-token-mint's --renew-before, for --vault-check's renew-window rule; default a third of the token's "
        "lifetime, the mint's own default",
        parse=parse_duration,
        default=None,
        group=VAULT,
    )
    fail_on: str = setting(
        "--fail-on",
        "lowest finding severity that makes the run exit 1",
        parse=one_of("warning", "critical", "never"),
        default="critical",
    )
    webhook_url: str | None = setting(
        "--webhook-url",
        "POST new alerts here (Slack-compatible JSON)",
        parse=parse_service_url,
        default=None,
        group=OUTPUT,
        secret=True,
    )
    pushgateway_url: str | None = setting(
        "--pushgateway-url",
        "push metrics to this Prometheus Pushgateway",
        parse=parse_service_url,
        default=None,
        group=OUTPUT,
    )
    schedule_interval: timedelta = setting(
        "--schedule-interval",
        "time between scheduled runs; alerts fire for thresholds crossed within it",
        parse=parse_duration,
        default=timedelta(hours=24),
    )

    @property
    def policy(self) -> Policy:
        return self.policy_file or Policy()

    def check(self) -> None:
        if bool(self.users) == self.all_users:
            raise ConfigError(
                f"{label_of(ExpirySettings, 'users')} / {label_of(ExpirySettings, 'all_users')}",
                "expected either one or more --user or --all-users",
            )
        if self.schedule_interval <= timedelta(0):
            raise ConfigError(label_of(ExpirySettings, "schedule_interval"), "expected a positive duration such as 24h")
        if self.vault_check and not self.vault_addr:
            raise ConfigError(
                label_of(ExpirySettings, "vault_addr"), "expected an https:// Vault address with --vault-check"
            )
