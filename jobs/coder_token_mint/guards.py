"""What coder-token-mint checks about the target account before it mints (pure, no I/O): is the account
privileged, and which lifetime and renew window does Coder's cap for it leave.

Why the privilege guard: the token in Vault is copied by External Secrets into every workspace namespace, so
anyone who can read a Secret in any workspace holds it. A token of an Owner (or any admin or auditor) there
hands the whole deployment to every workspace user. With the defaults (no --user) the target is the
bootstrap token's own user, which is an Owner whenever it may mint for others: that is refused too.

Why the cap: Coder refuses a lifetime over `max_token_lifetime` for the target user (coderd/apikey.go
`validateAPIKeyLifetime`, `getMaxTokenLifetime`: `--max-admin-token-lifetime`, default 168h, for Owners, else
`--max-token-lifetime`), answering 400 "lifetime must be less than 168h0m0s". The plan asks
`/users/{user}/keys/tokens/tokenconfig` first and mints for min(requested, cap), so a dry-run shows what a run
does, and the renew window follows the lifetime really minted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from lib.model import Finding

# Site roles (codersdk/rbacroles.go) and organization roles that see or change more than the account's own
# resources. `member` and `organization-member` are what every user has.
PRIVILEGED_ROLES = (
    "owner",
    "user-admin",
    "template-admin",
    "auditor",
    "organization-admin",
    "organization-user-admin",
    "organization-template-admin",
    "organization-auditor",
)


def human(duration: timedelta) -> str:
    seconds = int(duration.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{v}{u}" for v, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if v]
    return "".join(parts) or "0s"


@dataclass(frozen=True)
class Target:
    """The account the token is minted for, as observed."""

    user: str
    roles: tuple[str, ...] = ()  # site and organization roles; `member` is implicit
    from_bootstrap: bool = False  # no --user: the bootstrap token's own account
    lifetime_cap: timedelta | None = None  # Coder's max_token_lifetime for it; None: not reported


@dataclass(frozen=True)
class BootstrapToken:
    """The long-lived Owner token the job runs with, as its own record says (never its value)."""

    user: str
    token_id: str
    name: str = ""
    expires_at: datetime | None = None
    lifetime: timedelta | None = None  # the requested lifetime (lifetime_seconds), not expires - created
    unreadable: str = ""  # why its record could not be read


@dataclass(frozen=True)
class Terms:
    """What a mint asks for, after Coder's cap, and when a successor is minted."""

    requested: timedelta
    lifetime: timedelta
    renew_before: timedelta
    findings: tuple[Finding, ...] = ()

    def describe(self, target: Target) -> dict[str, str]:
        cap = human(target.lifetime_cap) if target.lifetime_cap else "not reported"
        return {
            "requested_lifetime": human(self.requested),
            "coder_cap": cap,
            "lifetime": human(self.lifetime),
            "renew_before": human(self.renew_before),
        }


def privilege_check(
    target: Target, privileged: tuple[str, ...], allowed: bool
) -> tuple[str | None, tuple[Finding, ...]]:
    """(refusal, findings): a privileged target is refused unless --allow-privileged-user."""
    held = sorted(set(target.roles) & set(privileged))
    if not held:
        return None, ()
    roles = ", ".join(held)
    if allowed:
        return None, (
            Finding(
                "warning",
                "privileged-user",
                target.user,
                f"--allow-privileged-user: the token fanned out to every workspace carries the roles {roles}",
            ),
        )
    who = f"{target.user!r}" + (
        " (the bootstrap token's own account: no --user was given)" if target.from_bootstrap else ""
    )
    fix = (
        "set --user (CWJ_USER) to a dedicated non-privileged account"
        if target.from_bootstrap
        else "choose a non-privileged --user (CWJ_USER)"
    )
    refusal = (
        f"refused to mint for {who}: its roles {roles} are privileged (--privileged-roles), and External Secrets "
        f"copies this token into every workspace namespace; {fix}, or pass --allow-privileged-user to accept it"
    )
    return refusal, ()


def terms(target: Target, requested: timedelta, renew_before: timedelta | None, revoke_grace: timedelta) -> Terms:
    findings: list[Finding] = []
    lifetime = requested
    cap = target.lifetime_cap
    if cap is not None and timedelta() < cap < requested:
        lifetime = cap
        findings.append(
            Finding(
                "warning",
                "lifetime-capped",
                target.user,
                f"--lifetime {human(requested)} is over Coder's cap for {target.user!r} (max_token_lifetime "
                f"{human(cap)}); tokens are minted for {human(cap)}",
            )
        )
    window = lifetime / 3 if renew_before is None else renew_before
    if window >= lifetime:
        findings.append(
            Finding(
                "warning",
                "renew-window-adjusted",
                target.user,
                f"--renew-before {human(window)} is not below the lifetime minted ({human(lifetime)}): every run "
                f"would mint; renewing when a third ({human(lifetime / 3)}) is left instead",
            )
        )
        window = lifetime / 3
    if revoke_grace >= window:
        findings.append(
            Finding(
                "error",
                "grace-over-renew-window",
                target.user,
                f"--revoke-grace {human(revoke_grace)} is not below the renew window {human(window)} of the lifetime "
                "minted: a superseded token could expire while workspaces still hold it; lower --revoke-grace",
            )
        )
    return Terms(requested, lifetime, window, tuple(findings))


def bootstrap_findings(
    token: BootstrapToken | None, warn: timedelta, max_lifetime: timedelta, now: datetime
) -> tuple[Finding, ...]:
    """The bootstrap Owner token is the root of trust and lives long: the token policy (seed 001: warn 14 days
    before expiry, lifetime at most 90 days) applies to it too. When it expires every run fails."""
    if token is None:
        return ()
    subject = f"bootstrap:{token.user}/{token.name or token.token_id}"
    if token.unreadable:
        return (Finding("warning", "bootstrap-unverifiable", subject, token.unreadable),)
    out: list[Finding] = []
    if token.expires_at is not None and token.expires_at - now <= warn:
        left = max(token.expires_at - now, timedelta())
        out.append(
            Finding(
                "warning",
                "bootstrap-expiring",
                subject,
                f"the bootstrap token expires in {human(left)} at {token.expires_at.isoformat()}: mint a new one and "
                "update its Secret before then, or every run fails and Vault's token is no longer renewed",
            )
        )
    if token.lifetime is not None and token.lifetime > max_lifetime:
        out.append(
            Finding(
                "warning",
                "bootstrap-lifetime-over-max",
                subject,
                f"the bootstrap token's lifetime {human(token.lifetime)} exceeds the token policy's "
                f"{human(max_lifetime)}: replace it with a shorter-lived one",
            )
        )
    return tuple(out)
