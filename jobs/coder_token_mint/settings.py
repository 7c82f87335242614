"""Settings of coder-token-mint: every flag, its env var, its parser, and the cross-field rules.

Durations take Go units and days (`30d`, `720h`, `1h30m`). The renew window must be shorter than the
lifetime (or every run would mint) and the revoke grace shorter than the renew window (or a superseded
token could expire while workspaces still hold it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

from jobs.coder_token_mint.guards import PRIVILEGED_ROLES
from jobs.coder_token_mint.plan import Policy, human
from lib.auth_choice import POD_SA_TOKEN, vault_auth_setting
from lib.settings import (
    CODER,
    OUTPUT,
    SAFETY,
    VAULT,
    ConfigError,
    label_of,
    one_of,
    parse_duration,
    parse_https_url,
    parse_kv_path,
    parse_readable_file,
    parse_service_url,
    setting,
    switch,
)


class Duration(timedelta):
    """A default that prints as it is written (`30d`, `1d`) in --help and in the README's settings table."""

    def __repr__(self) -> str:
        return human(self)

    __str__ = __repr__


class Items(tuple[str, ...]):
    """A list default that prints as the env var takes it (`a,b`) in --help and the README."""

    def __repr__(self) -> str:
        return ",".join(self)

    __str__ = __repr__


# The least scopes with which `coder whoami` and the workspace CLI work (ssh, port-forward, apps, list), per
# Coder's scope expansion (coderd/rbac/scopes.go `compositePerms`): `coder:workspaces.access` = workspace read,
# ssh, application_connect + template read + organization_member read; `user:read` (coder PR #23348) lets the
# token read its own user, which `coder whoami` does (GET /api/v2/users/me). Coder's own VS Code extension asks
# for these plus workspace create/operate ("Scopes the extension and the CLI need"). Starting and stopping
# workspaces needs `coder:workspaces.operate` on top. Servers before PR #23348 (2026-03) refuse `user:read`:
# pass --scope for them (e.g. `--scope coder:workspaces.access --scope coder:all`; docs/coder-token-mint.md).
DEFAULT_SCOPES = Items(("coder:workspaces.access", "user:read"))


def parse_role(raw: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9-]*", raw.strip()):
        raise ValueError(f"expected a Coder role name such as owner or organization-admin, got {raw!r}")
    return raw.strip()


def parse_positive_duration(raw: str) -> timedelta:
    value = parse_duration(raw)
    if value <= timedelta():
        raise ValueError(f"expected a duration above zero, got {raw!r}")
    return value


def parse_prefix(raw: str) -> str:
    """The names' <purpose>: lowercase letters and digits joined by single dashes, so that every minted name
    passes the token policy's naming rule (token-expiry-check's `<purpose>`)."""
    if len(raw) > 48 or not re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", raw):
        raise ValueError(
            f"expected 1-48 lowercase letters and digits joined by single dashes (the names' <purpose>), got {raw!r}"
        )
    return raw


# The legacy names Coder still accepts (coderd/rbac/scopes_catalog.go IsExternalScope: "Include `all` and
# `application_connect` for backward compatibility"); seed 002 writes `application_connect`.
LEGACY_SCOPES = ("all", "application_connect")


def parse_scope(raw: str) -> str:
    value = raw.strip()
    if value in LEGACY_SCOPES:
        return value
    if not re.fullmatch(r"([a-z][a-z0-9_]*|\*):([a-z][a-z0-9_.]*|\*)", value):
        raise ValueError(
            "expected a Coder scope resource:action such as coder:workspaces.access (or the legacy all, "
            f"application_connect), got {raw!r}"
        )
    return value


def parse_allow(raw: str) -> str:
    match = re.fullmatch(r"([a-z][a-z0-9_]*|\*):([0-9a-fA-F-]{36}|\*)", raw.strip())
    if not match or (
        match.group(2) != "*"
        and not re.fullmatch(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}", match.group(2))
    ):
        raise ValueError(f"expected an allow-list entry type:id with a UUID or * as id, got {raw!r}")
    return raw.strip().lower()


@dataclass(frozen=True)
class MintSettings:
    coder_url: str = setting("--coder-url", "Coder deployment URL", env="CODER_URL", parse=parse_https_url, group=CODER)
    bootstrap_token_file: Path = setting(
        "--bootstrap-token-file",
        "file holding the long-lived bootstrap token (an Owner's token to mint for another --user)",
        env="CWJ_BOOTSTRAP_TOKEN_FILE",
        parse=parse_readable_file,
        group=CODER,
    )
    user: str = setting(
        "--user",
        "whose token is minted: a dedicated non-privileged account; default the bootstrap token's own user, which "
        "is refused when privileged (an Owner always is)",
        default="",
        group=CODER,
        metavar="USER",
    )
    token_name_prefix: str = setting(
        "--token-name-prefix",
        "names are <prefix>-<env>-<yyyymmdd> (the token policy's naming rule); marks the tokens this job owns",
        parse=parse_prefix,
        default="coder-cli-session",
        metavar="PREFIX",
    )
    env: str = setting(
        "--env",
        "the environment in the token names: dev, staging or prod (the naming rule's <environment>)",
        parse=one_of("dev", "staging", "prod"),
        default="prod",
        group=CODER,
    )
    lifetime: timedelta = setting(
        "--lifetime",
        "token lifetime: 30d, 720h, 1h30m",
        parse=parse_positive_duration,
        default=Duration(days=30),
        metavar="DURATION",
    )
    renew_before: timedelta | None = setting(
        "--renew-before",
        "mint a successor when less than this is left; default a third of --lifetime",
        parse=parse_positive_duration,
        default=None,
        metavar="DURATION",
    )
    revoke_grace: timedelta = setting(
        "--revoke-grace",
        "revoke a superseded token once its successor has been in Vault this long; must exceed "
        "the External Secrets refresh interval",
        parse=parse_positive_duration,
        default=Duration(hours=24),
        metavar="DURATION",
    )
    scope: tuple[str, ...] = setting(
        "--scope",
        "Coder scope resource:action; default the least set for `coder whoami` and the workspace CLI",
        parse=parse_scope,
        default=DEFAULT_SCOPES,
        repeatable=True,
        group=CODER,
        metavar="RESOURCE:ACTION",
    )
    allow: tuple[str, ...] = setting(
        "--allow", "allow-list entry type:id", parse=parse_allow, default=(), repeatable=True, metavar="TYPE:ID"
    )
    vault_addr: str = setting("--vault-addr", "Vault address", env="VAULT_ADDR", parse=parse_service_url, group=VAULT)
    vault_auth: str = vault_auth_setting()
    vault_role: str = setting(
        "--vault-role", "Vault Kubernetes-auth role", default="coder-token-writer", group=VAULT, metavar="ROLE"
    )
    vault_jwt_file: Path = setting(
        "--vault-jwt-file",
        "service-account JWT for Kubernetes auth, read fresh each run",
        parse=Path,
        default=POD_SA_TOKEN,
        group=VAULT,
    )
    vault_auth_mount: str = setting(
        "--vault-auth-mount", "mount of the Kubernetes auth method", default="kubernetes", group=VAULT, metavar="PATH"
    )
    kv_mount: str = setting("--kv-mount", "KV v2 mount", parse=parse_kv_path, default="secret", group=VAULT)
    kv_path: str = setting(
        "--kv-path", "KV v2 path of the entry", parse=parse_kv_path, default="coder-cli-session-token", group=VAULT
    )
    privileged_roles: tuple[str, ...] = setting(
        "--privileged-roles",
        "site or organization roles a target --user must not hold (the token reaches every workspace)",
        parse=parse_role,
        default=Items(PRIVILEGED_ROLES),
        repeatable=True,
        group=SAFETY,
        metavar="ROLE",
    )
    allow_privileged_user: bool = switch(
        "--allow-privileged-user",
        "mint even when --user holds one of --privileged-roles (a warning, not a refusal)",
        group=SAFETY,
    )
    force_rotate: bool = switch(
        "--force-rotate",
        "rotate now: mint, write, then revoke every other prefixed token (a planned rotation; for a leak use "
        "--compromised)",
        group=SAFETY,
    )
    compromised: bool = switch(
        "--compromised",
        "compromise response: revoke the token in Vault and every other prefixed token first, then mint, check "
        "and store a successor; if none can be stored, empty the entry (never serve the revoked token); exit 1 "
        "on any failure; report to --webhook-url",
        group=SAFETY,
    )
    bootstrap_warn_before: timedelta = setting(
        "--bootstrap-warn-before",
        "warn when the bootstrap token expires within this (the token policy's warn_days)",
        parse=parse_positive_duration,
        default=Duration(days=14),
        metavar="DURATION",
    )
    bootstrap_max_lifetime: timedelta = setting(
        "--bootstrap-max-lifetime",
        "warn when the bootstrap token's lifetime exceeds this (the token policy's max_lifetime_days)",
        parse=parse_positive_duration,
        default=Duration(days=90),
        metavar="DURATION",
    )
    webhook_url: str = setting(
        "--webhook-url",
        "POST the outcome of a --compromised run here (Slack-compatible JSON); a credential: pass it by env",
        parse=parse_service_url,
        default="",
        group=OUTPUT,
        secret=True,
    )
    pushgateway_url: str = setting(
        "--pushgateway-url", "Prometheus Pushgateway; empty: no push", parse=parse_service_url, default="", group=OUTPUT
    )

    @property
    def renew_window(self) -> timedelta:
        return self.renew_before if self.renew_before is not None else self.lifetime / 3

    def check(self) -> None:
        if self.renew_window >= self.lifetime:
            raise ConfigError(
                label_of(MintSettings, "renew_before"),
                f"expected less than --lifetime ({human(self.lifetime)})",
            )
        if self.revoke_grace >= self.renew_window:
            raise ConfigError(
                label_of(MintSettings, "revoke_grace"),
                f"expected less than the renew window ({human(self.renew_window)}): a superseded token must "
                "still be valid when its grace ends",
            )

    def policy(self) -> Policy:
        return Policy(
            self.token_name_prefix,
            self.lifetime,
            self.renew_before,
            self.revoke_grace,
            tuple(self.scope),
            tuple(self.allow),
            self.force_rotate,
            self.kv_mount,
            self.kv_path,
            tuple(self.privileged_roles),
            self.allow_privileged_user,
            self.compromised,
            urlparse(self.webhook_url).netloc if self.compromised and self.webhook_url else "",
            self.env,
            self.bootstrap_warn_before,
            self.bootstrap_max_lifetime,
        )
