"""Pure judgement for token-expiry-check: what was observed + the policy + now -> findings, the per-token
table and the alerts that are new in this run. No I/O, no clock; deterministic order.

Which alerts are new (the stateless threshold crossings) and their text live in alerts.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from jobs.token_expiry_check.alerts import DAY, Alert, new_alert
from jobs.token_expiry_check.policy import Policy, Rules
from lib.clients.coder_types import Malformed, Token, User
from lib.model import Finding, Severity
from lib.render import rfc3339

SLIDE_SLACK = timedelta(minutes=5)  # expires_at beyond created_at + lifetime by more than this = it slid
ALL_SCOPES = frozenset({"all", "coder:all"})
NOT_FOUND_STATUSES = frozenset({400, 404})  # older Coder: 400 "must be an existing uuid or username"


@dataclass(frozen=True)
class ReadError:
    call: str  # user | roles | tokens
    status: int
    text: str  # Coder's own words: message (detail)


@dataclass(frozen=True)
class Account:
    name: str  # as named with --user, or the username from the users list
    listed: bool  # named explicitly with --user
    user: User | None = None
    site_roles: tuple[str, ...] | None = None
    tokens: tuple[Token, ...] | None = None
    errors: tuple[ReadError, ...] = ()
    malformed: tuple[Malformed, ...] = ()  # token records Coder sent that could not be read


@dataclass(frozen=True)
class VaultHeld:
    """The workspace token coder-token-mint keeps in Vault, as this run found it."""

    location: str  # mount/path
    unreadable: str = ""  # Vault refused or failed: the check is blind
    problem: str = ""  # no entry, or Coder rejects the token: workspaces cannot use it
    user: str = ""
    token_name: str = ""
    token_id: str = ""
    issued_at: datetime | None = None
    expires_at: datetime | None = None  # Coder's record when readable, else the KV entry's
    scopes: tuple[str, ...] = ()  # from Coder's record (unknown, (), when the reader may not read it)


@dataclass(frozen=True)
class Observation:
    server_version: str
    accounts: tuple[Account, ...]
    vault: VaultHeld | None = None
    reader: User | None = None  # whose token this run reads with

    @property
    def reader_sees_all_tokens(self) -> bool:
        # Coder's built-in roles: only `owner` may read other users' API keys; others' keys vanish silently.
        return self.reader is None or "owner" in self.reader.roles


@dataclass(frozen=True)
class Evaluation:
    findings: tuple[Finding, ...]
    rows: tuple[dict[str, Any], ...]
    alerts: tuple[Alert, ...]
    sliding_observed: int  # tokens whose expires_at moved past created_at + lifetime


def evaluate(
    observed: Observation,
    policy: Policy,
    now: datetime,
    interval: timedelta,
    renew_before: timedelta | None = None,
) -> Evaluation:
    findings: list[Finding] = []
    rows: list[dict[str, Any]] = []
    alerts: list[Alert] = []
    for account in sorted(observed.accounts, key=lambda a: a.name):
        rules = policy.for_user(account.user.username if account.user else account.name)
        findings += account_findings(account, rules, observed.reader_sees_all_tokens)
        for token in sorted(account.tokens or (), key=lambda t: (t.token_name, t.id)):
            superseded = is_superseded(token, account.tokens or (), rules, now)
            findings += token_findings(account.name, token, rules, now, superseded)
            rows.append(token_row(account.name, token, now, superseded))
            alert = None if superseded else new_alert(account.name, token, rules, now, interval)
            if alert is not None:
                alerts.append(alert)
    findings += reader_findings(observed, policy)
    if observed.vault is not None:
        findings += vault_findings(observed.vault, now, renew_before)
    sliding = sum(1 for a in observed.accounts for t in a.tokens or () if has_slid(t))
    return Evaluation(tuple(findings), tuple(rows), tuple(alerts), sliding)


# ---- accounts ----------------------------------------------------------------------------------------------


def reader_findings(observed: Observation, policy: Policy) -> list[Finding]:
    """Empty token lists read by a non-owner cannot be told from hidden ones: a blind check, never a pass."""
    reader = observed.reader
    if reader is None or observed.reader_sees_all_tokens:
        return []
    unverifiable = sorted(
        a.name
        for a in observed.accounts
        if a.tokens == ()
        and not a.malformed
        and a.user is not None
        and a.user.id != reader.id
        and not expects_tokens(a, policy.for_user(a.user.username))  # those get tokens-not-visible
    )
    if not unverifiable:
        return []
    return [
        Finding(
            "error",
            "tokens-unverifiable",
            reader.username,
            f"the --token-file user's roles ({', '.join(reader.roles) or 'member'}) cannot read other users' tokens "
            f"and Coder hides them silently, so the empty token lists of {', '.join(unverifiable)} prove nothing",
        )
    ]


def account_findings(account: Account, rules: Rules, reader_sees_all: bool = True) -> list[Finding]:
    out = [read_error_finding(account.name, e) for e in account.errors]
    out += [
        Finding(
            "error",
            "token-unreadable",
            f"{account.name}/{m.label}",
            f"Coder sent a token record this check cannot read ({m.problem}): its expiry and scopes are unknown",
        )
        for m in account.malformed
    ]
    if account.user is None:
        return out
    if rules.allowed_site_roles is not None and account.site_roles is not None:
        extra = sorted(set(account.site_roles) - set(rules.allowed_site_roles))
        if extra:
            allowed = ", ".join(rules.allowed_site_roles) or "none"
            out.append(
                Finding(
                    "critical",
                    "roles-not-allowed",
                    account.name,
                    f"site roles {', '.join(extra)} beyond the allowed set ({allowed})",
                )
            )
    if account.tokens == () and not account.malformed and expects_tokens(account, rules):
        why = (
            "it holds none"
            if reader_sees_all
            else "Coder silently drops tokens the caller may not read: the --token-file token lacks that right"
        )
        out.append(
            Finding(
                "error",
                "tokens-not-visible",
                account.name,
                f"Coder listed no tokens for an account that should hold some; {why}",
            )
        )
    return out


def read_error_finding(name: str, error: ReadError) -> Finding:
    if error.call == "user" and error.status in NOT_FOUND_STATUSES:
        return Finding("critical", "user-not-found", name, f"Coder answered {error.status}: {error.text}")
    return Finding(
        "error",
        f"{error.call}-unreadable",
        name,
        f"cannot read {error.call}: "
        + (f"Coder answered {error.status}: " if error.status else "Coder did not answer: ")
        + error.text,
    )


def expects_tokens(account: Account, rules: Rules) -> bool:
    if rules.expect_tokens is not None:
        return rules.expect_tokens
    return account.listed and account.user is not None and account.user.is_service_account


# ---- tokens ------------------------------------------------------------------------------------------------


def lifetime(token: Token) -> timedelta | None:
    """The requested lifetime: `lifetime_seconds`, since `expires_at - created_at` grows with sliding expiry."""
    if token.lifetime_seconds > 0:
        return timedelta(seconds=token.lifetime_seconds)
    if token.expires_at and token.created_at:
        return token.expires_at - token.created_at
    return None


def has_slid(token: Token) -> bool:
    if not (token.expires_at and token.created_at and token.lifetime_seconds > 0):
        return False
    return token.expires_at > token.created_at + timedelta(seconds=token.lifetime_seconds) + SLIDE_SLACK


def is_superseded(token: Token, siblings: tuple[Token, ...], rules: Rules, now: datetime) -> bool:
    """An expired token whose series (same name apart from its date) has a newer token still valid."""
    if token.expires_at is None or token.expires_at > now or rules.name_pattern is None:
        return False
    series = rules.name_pattern.series(token.token_name)
    if series is None:
        return False
    return any(
        other.id != token.id
        and other.expires_at is not None
        and other.expires_at > now
        and rules.name_pattern.series(other.token_name) == series
        for other in siblings
    )


def token_findings(user: str, token: Token, rules: Rules, now: datetime, superseded: bool) -> list[Finding]:
    subject = f"{user}/{token.token_name}"
    out: list[Finding] = []

    def add(severity: Severity, rule: str, message: str) -> None:
        out.append(Finding(severity, rule, subject, message))

    expires = token.expires_at
    if expires is not None and expires <= now:
        if superseded:
            add(
                "info",
                "token-expired-superseded",
                f"expired at {rfc3339(expires)}; a newer token of its series is valid",
            )
        else:
            add("critical", "token-expired", f"expired at {rfc3339(expires)}")
    elif expires is not None and expires - now <= rules.warn_days * DAY:
        add("warning", "token-expiring", f"expires in {days(expires - now)} days at {rfc3339(expires)}")
    life = lifetime(token)
    if life is not None and life > rules.max_lifetime_days * DAY:
        add("critical", "lifetime-over-max", f"lifetime {days(life)} days exceeds {rules.max_lifetime_days} days")
    if not rules.allow_all_scope and ALL_SCOPES & set(token.scopes):
        add("warning", "scope-all", f"holds the all scope ({', '.join(token.scopes)}) where it is not allowed")
    if rules.name_pattern is not None and not rules.name_pattern.matches(token.token_name):
        add("warning", "name-off-pattern", f"name does not match {rules.name_pattern.source!r}")
    if expires is None or expires > now:
        out += usage_findings(subject, token, rules, now)
    return out


def usage_findings(subject: str, token: Token, rules: Rules, now: datetime) -> list[Finding]:
    if rules.unused_days is None:
        return []
    if token.last_used is None:
        return [Finding("info", "token-never-used", subject, "never used")]
    if now - token.last_used > rules.unused_days * DAY:
        return [Finding("info", "token-unused", subject, f"last used {days(now - token.last_used)} days ago")]
    return []


def token_row(user: str, token: Token, now: datetime, superseded: bool) -> dict[str, Any]:
    life = lifetime(token)
    expires = token.expires_at
    if expires is None:
        status = "no-expiry"
    elif expires <= now:
        status = "superseded" if superseded else "expired"
    else:
        status = "valid"
    return {
        "user": user,
        "token_name": token.token_name,
        "id": token.id,
        "created_at": rfc3339(token.created_at) or None,
        "expires_at": rfc3339(expires) or None,
        "days_left": day_count(expires - now) if expires else None,
        "lifetime_days": day_count(life) if life is not None else None,
        "scopes": list(token.scopes),
        "last_used": rfc3339(token.last_used) or None,  # None: never used
        "status": status,
    }


# ---- the Vault-held workspace token ------------------------------------------------------------------------


def vault_findings(held: VaultHeld, now: datetime, renew_before: timedelta | None = None) -> list[Finding]:
    """`renew_before`: coder-token-mint's --renew-before; None = its default, a third of the token's lifetime."""
    subject = f"vault:{held.location}"
    if held.unreadable:
        return [Finding("error", "vault-unreadable", subject, held.unreadable)]
    if held.problem:
        return [Finding("critical", "vault-token-invalid", subject, held.problem)]
    out = []
    if ALL_SCOPES & set(held.scopes):
        out.append(
            Finding(
                "warning",
                "scope-all",
                subject,
                f"token {held.token_id} holds the all scope ({', '.join(held.scopes)}) and External Secrets copies it "
                "into every workspace: mint it with least scopes (coder-token-mint's default --scope)",
            )
        )
    expires = held.expires_at
    if expires is None:
        return out
    if expires <= now:
        return [
            *out,
            Finding("critical", "vault-token-invalid", subject, f"token {held.token_id} expired at {rfc3339(expires)}"),
        ]
    window, how = renew_window(held, renew_before)
    if window is not None and expires - now <= window:
        out.append(
            Finding(
                "warning",
                "vault-token-renew-window",
                subject,
                f"token {held.token_id} expires in {days(expires - now)} days at {rfc3339(expires)}, inside its renew "
                f"window ({how}): coder-token-mint should have replaced it",
            )
        )
    return out


def renew_window(held: VaultHeld, renew_before: timedelta | None) -> tuple[timedelta | None, str]:
    if renew_before is not None:
        return renew_before, f"--renew-before {days(renew_before)} days"
    if held.issued_at is None or held.expires_at is None:
        return None, ""
    return (held.expires_at - held.issued_at) / 3, "the last third of its lifetime, coder-token-mint's default"


# ---- formatting --------------------------------------------------------------------------------------------


def days(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 86400:.1f}"


def day_count(delta: timedelta) -> float:
    """Days to one decimal, as a number (the JSON row's type; the text table prints it as it is)."""
    return round(delta.total_seconds() / 86400, 1)
