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

from jobs.coder_token_mint.plan import Policy, human
from lib.auth_choice import vault_auth_setting
from lib.clients.vault import POD_SA_TOKEN
from lib.settings import (
    ConfigError,
    label_of,
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


def parse_positive_duration(raw: str) -> timedelta:
    value = parse_duration(raw)
    if value <= timedelta():
        raise ValueError(f"expected a duration above zero, got {raw!r}")
    return value


def parse_prefix(raw: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,47}", raw):
        raise ValueError(f"expected 1-48 letters, digits, '-' or '_' starting with a letter or digit, got {raw!r}")
    return raw


def parse_scope(raw: str) -> str:
    if not re.fullmatch(r"([a-z][a-z0-9_]*|\*):([a-z][a-z0-9_.]*|\*)", raw.strip()):
        raise ValueError(f"expected a Coder scope resource:action such as coder:workspaces.access, got {raw!r}")
    return raw.strip()


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
    coder_url: str = setting("--coder-url", "Coder deployment URL", env="CODER_URL", parse=parse_https_url)
    bootstrap_token_file: Path = setting(
        "--bootstrap-token-file",
        "file holding the long-lived bootstrap token (an Owner's token to mint for another --user)",
        env="CWJ_BOOTSTRAP_TOKEN_FILE",
        parse=parse_readable_file,
    )
    user: str = setting("--user", "whose token is minted; default the bootstrap token's own user", default="")
    token_name_prefix: str = setting(
        "--token-name-prefix",
        "names are <prefix>-<UTC timestamp>; marks the tokens this job owns",
        parse=parse_prefix,
        default="coder-cli-session",
    )
    lifetime: timedelta = setting(
        "--lifetime", "token lifetime: 30d, 720h, 1h30m", parse=parse_positive_duration, default=Duration(days=30)
    )
    renew_before: timedelta | None = setting(
        "--renew-before",
        "mint a successor when less than this is left; default a third of --lifetime",
        parse=parse_positive_duration,
        default=None,
    )
    revoke_grace: timedelta = setting(
        "--revoke-grace",
        "revoke a superseded token once its successor has been in Vault this long; must exceed "
        "the External Secrets refresh interval",
        parse=parse_positive_duration,
        default=Duration(hours=24),
    )
    scope: tuple[str, ...] = setting(
        "--scope", "Coder scope resource:action", parse=parse_scope, default=(), repeatable=True
    )
    allow: tuple[str, ...] = setting(
        "--allow", "allow-list entry type:id", parse=parse_allow, default=(), repeatable=True
    )
    vault_addr: str = setting("--vault-addr", "Vault address", env="VAULT_ADDR", parse=parse_service_url)
    vault_auth: str = vault_auth_setting()
    vault_role: str = setting("--vault-role", "Vault Kubernetes-auth role", default="coder-token-writer")
    vault_jwt_file: Path = setting(
        "--vault-jwt-file",
        "service-account JWT for Kubernetes auth, read fresh each run",
        parse=Path,
        default=POD_SA_TOKEN,
    )
    vault_auth_mount: str = setting("--vault-auth-mount", "mount of the Kubernetes auth method", default="kubernetes")
    kv_mount: str = setting("--kv-mount", "KV v2 mount", parse=parse_kv_path, default="secret")
    kv_path: str = setting(
        "--kv-path", "KV v2 path of the entry", parse=parse_kv_path, default="coder-cli-session-token"
    )
    force_rotate: bool = switch(
        "--force-rotate", "compromise response: mint, write, revoke every other prefixed token now"
    )
    pushgateway_url: str = setting(
        "--pushgateway-url", "Prometheus Pushgateway; empty: no push", parse=parse_service_url, default=""
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
            self.renew_window,
            self.revoke_grace,
            self.scope,
            self.allow,
            self.force_rotate,
            self.kv_mount,
            self.kv_path,
        )
