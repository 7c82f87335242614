"""What coder-token-mint asks Coder before it plans: whether the bootstrap token is accepted, and what the
token in the Vault entry is (valid, for whom, with which dates). Reads only; the plan is plan.py."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from jobs.coder_token_mint import plan as mint_plan
from jobs.coder_token_mint.model import BootstrapToken
from jobs.coder_token_mint.plan import ENTRY_FIELDS, CurrentEntry
from jobs.coder_token_mint.settings import MintSettings
from lib.clients.coder import CoderClient, CoderError, Token, User, token_id
from lib.clients.vault import KvEntry
from lib.settings import label_of, parse_timestamp


class BootstrapTokenRejected(Exception):
    pass


def validate_bootstrap(coder: CoderClient) -> User:
    try:
        return coder.me()
    except CoderError as exc:
        if exc.status != 401:
            raise
        raise BootstrapTokenRejected(
            f"Coder refused the bootstrap token from {label_of(MintSettings, 'bootstrap_token_file')}: "
            f"{exc.message}" + (f" ({exc.detail})" if exc.detail else "") + "; Vault was not touched"
        ) from None


def bootstrap_token(coder: CoderClient, key_id: str, me: User) -> BootstrapToken:
    """The bootstrap token's own record (name, expiry, requested lifetime), read with itself."""
    try:
        record = coder.token("me", key_id)
    except CoderError as exc:
        return BootstrapToken(me.username, key_id, unreadable=f"its record could not be read: {exc}")
    lifetime = timedelta(seconds=record.lifetime_seconds) if record.lifetime_seconds > 0 else None
    return BootstrapToken(me.username, key_id, record.token_name, record.expires_at, lifetime)


def target_roles(coder: CoderClient, user: User) -> tuple[str, ...]:
    """Site and organization roles (an organization-admin is privileged too); the site roles alone when the
    roles endpoint is not readable (404: the bootstrap token lacks user:read_personal on that user)."""
    try:
        return coder.roles(user.id)
    except CoderError as exc:
        if exc.status != 404:
            raise
        return user.roles


def lifetime_cap(coder: CoderClient, user: User) -> timedelta | None:
    """Coder's max_token_lifetime for the target (its roles pick it: Owners get the admin cap). None when the
    server has no such route (404): the mint itself then meets the cap, in Coder's words."""
    try:
        return coder.max_token_lifetime(user.id)
    except CoderError as exc:
        if exc.status != 404:
            raise
        return None


def inspect_entry(coder: CoderClient, kv: KvEntry, user: User) -> CurrentEntry | None:
    data = kv.data
    if data is None or not data.get("token"):  # deleted, or emptied by a --compromised run: no token to judge
        return None
    token = data.get("token", "")
    missing = [f for f in ENTRY_FIELDS if not data.get(f)]
    expires, issued, bad = _times(data)
    problems = [f"missing {', '.join(missing)}" if missing else "", bad]
    if token and data.get("token_id") and data["token_id"] != token_id(token):
        problems.append("token_id does not match the token")
    check: mint_plan.TokenCheck = "invalid"
    who = how = ""
    if token:
        check, who, how = _token_check(coder, token, user)
    return CurrentEntry(
        token_id=token_id(token) if token else data.get("token_id", ""),
        token_name=data.get("token_name", ""),
        expires_at=expires,
        issued_at=issued,
        written_at=kv.created_time,
        check=check,
        authenticated_as=who,
        problem="; ".join(p for p in problems if p),
        checked_by=how,
    )


def _times(data: Mapping[str, str]) -> tuple[datetime | None, datetime | None, str]:
    """expires_at and issued_at, and what is wrong with them (an unparseable time forces a rewrite)."""
    parsed: dict[str, datetime | None] = {}
    bad = []
    for name in ("expires_at", "issued_at"):
        try:
            parsed[name] = parse_timestamp(data[name]) if data.get(name) else None
        except ValueError:
            parsed[name] = None
            bad.append(f"{name} is not RFC 3339")
    return parsed["expires_at"], parsed["issued_at"], "; ".join(bad)


def _token_check(coder: CoderClient, token: str, user: User) -> tuple[mint_plan.TokenCheck, str, str]:
    """(check, who, how). Trust the server: a token Coder answers 401 for is invalid whatever its dates say.
    The token is asked with a call its own scopes permit (CoderClient.probe, from its record, which the
    bootstrap token reads): a scoped token that may not read its user is never judged by /users/me."""
    try:
        record: Token | None = coder.token(user.id, token_id(token))
    except CoderError as exc:
        if exc.status != 404:
            raise
        record = None  # gone (the token itself will say 401) or not readable with the bootstrap token
    probe = coder.probe(token, record)
    if probe.outcome == "invalid":
        return "invalid", "", probe.how
    if record is not None and record.user_id != user.id:
        return "wrong-user", probe.username or record.username or record.user_id, probe.how
    if probe.username and probe.username != user.username:
        return "wrong-user", probe.username, probe.how
    return "valid", probe.username or user.username, probe.how


def coder_token(t: Token) -> mint_plan.CoderToken:
    return mint_plan.CoderToken(t.id, t.token_name, t.created_at, t.expires_at)
