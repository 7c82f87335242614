"""What coder-token-mint observed and what it was told: the state the pure plan (plan.py) reads, and the policy
the settings make. Never a token value."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from jobs.coder_token_mint.guards import PRIVILEGED_ROLES, BootstrapToken, Target

__all__ = ["BootstrapToken"]  # the plan's state uses it; guards.py defines it beside the checks that read it

TokenCheck = Literal["valid", "invalid", "wrong-user"]
ENTRY_FIELDS = ("token", "token_id", "token_name", "user", "coder_url", "issued_at", "expires_at")


@dataclass(frozen=True)
class Policy:
    prefix: str
    lifetime: timedelta  # requested; Coder's cap for the target may lower it (guards.terms)
    renew_before: timedelta | None  # None: a third of the lifetime minted
    revoke_grace: timedelta
    scopes: tuple[str, ...] = ()
    allow: tuple[str, ...] = ()
    force_rotate: bool = False
    kv_mount: str = "secret"
    kv_path: str = "coder-cli-session-token"
    privileged_roles: tuple[str, ...] = PRIVILEGED_ROLES
    allow_privileged: bool = False
    compromised: bool = False  # the compromise response: revoke first, then replace (compromise order below)
    webhook_host: str = ""  # where a compromise response reports its outcome ("" = no webhook)
    env: str = "prod"  # the <env> of the token names <prefix>-<env>-<yyyymmdd>
    bootstrap_warn: timedelta = timedelta(days=14)  # the token policy's warn_days, for the bootstrap token
    bootstrap_max_lifetime: timedelta = timedelta(days=90)  # the token policy's max_lifetime_days

    @property
    def rotate_all(self) -> bool:
        """Every other prefixed token (and the one in Vault) goes now: --force-rotate and --compromised."""
        return self.force_rotate or self.compromised


@dataclass(frozen=True)
class CurrentEntry:
    """The KV entry as read, and what Coder said about the token in it. Never the token value."""

    token_id: str  # the id part of the token value itself
    token_name: str
    expires_at: datetime | None  # the entry's expires_at
    issued_at: datetime | None
    written_at: datetime | None  # Vault's created_time of the version read
    check: TokenCheck  # what Coder said to the token itself, on a call its scopes permit
    authenticated_as: str = ""
    problem: str = ""  # why the entry must be rewritten even if the token works (missing or bad fields)
    checked_by: str = ""  # which call checked it (/users/me, or /deployment/ssh when its scopes forbid that)


@dataclass(frozen=True)
class CoderToken:
    id: str
    name: str
    created_at: datetime | None
    expires_at: datetime | None


@dataclass(frozen=True)
class MintState:
    user: str  # the username whose tokens are minted and cleaned
    kv_version: int  # the version check-and-set must match (0: no entry yet)
    entry: CurrentEntry | None  # None: no entry, or its latest version is deleted
    tokens: tuple[CoderToken, ...]  # every API token of the user, expired ones included
    roles: tuple[str, ...] = ()  # the user's site and organization roles
    user_is_default: bool = False  # no --user: the bootstrap token's own account
    lifetime_cap: timedelta | None = None  # Coder's max_token_lifetime for the user; None: not reported
    unreadable: tuple[str, ...] = ()  # token records Coder sent that could not be read: "name (id): problem"
    user_id: str = ""  # the user's id: a minted token's record must name it
    bootstrap: BootstrapToken | None = None

    @property
    def target(self) -> Target:
        return Target(self.user, self.roles, self.user_is_default, self.lifetime_cap)
