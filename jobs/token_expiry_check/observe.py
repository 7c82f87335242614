"""What token-expiry-check reads before it plans: the accounts and their tokens from Coder, and, under
--vault-check, coder-token-mint's entry in Vault and what Coder says of the token in it. Reads only; every read
failure is kept as data for the rules (rules.py)."""

from __future__ import annotations

from dataclasses import dataclass

from jobs.token_expiry_check.rules import Account, Observation, ReadError, VaultHeld
from jobs.token_expiry_check.settings import ExpirySettings
from lib.auth_choice import VaultAuth, vault_login
from lib.clients.coder import CoderClient, CoderError, Token, User, parse_time, token_id
from lib.clients.vault import VaultClient, VaultError
from lib.redact import register_secret


@dataclass
class Clients:
    coder: CoderClient
    vault_auth: VaultAuth | None = None  # decided by connect (exit 2 when nothing applies), used by observe
    vault: VaultClient | None = None  # logged in by observe, revoked by close


def observe_all(clients: Clients, settings: ExpirySettings) -> Observation:
    coder = clients.coder
    reader = coder.me()  # a rejected --token-file token fails the run here, in Coder's words
    version = str(coder.buildinfo().get("version", ""))
    if settings.all_users:
        accounts = tuple(observe_account(coder, user.username, False, user) for user in coder.users())
    else:
        accounts = tuple(observe_account(coder, name, True) for name in dict.fromkeys(settings.users))
    vault = observe_vault(clients, settings) if settings.vault_check else None
    return Observation(version, accounts, vault, reader)


def observe_account(coder: CoderClient, name: str, listed: bool, user: User | None = None) -> Account:
    """Every read failure is kept, in Coder's words, as data for the rules: one user never hides another."""
    if user is None:
        try:
            user = coder.user(name)
        except CoderError as exc:
            return Account(name, listed, errors=(read_error("user", exc),))
    # Site roles come with the user (User.roles): /users/{u}/roles needs user:read_personal, which an
    # auditor lacks, and it adds only organization roles.
    try:
        listing = coder.tokens(user.id)
    except CoderError as exc:
        return Account(name, listed, user, user.roles, None, (read_error("tokens", exc),))
    return Account(name, listed, user, user.roles, listing.tokens, malformed=listing.malformed)


def read_error(call: str, exc: CoderError) -> ReadError:
    return ReadError(call, exc.status, coder_words(exc))


def coder_words(exc: CoderError) -> str:
    return exc.message + (f" ({exc.detail})" if exc.detail else "")


def observe_vault(clients: Clients, settings: ExpirySettings) -> VaultHeld:
    """Read coder-token-mint's entry and ask Coder about the token in it. Checking it authenticates with
    it, which on servers with sliding expiry also pushes its expiry forward, exactly as a workspace would."""
    location = f"{settings.kv_mount}/{settings.kv_path}"
    auth = clients.vault_auth
    if auth is None:  # connect decides it whenever --vault-check is on
        return VaultHeld(location, unreadable="no Vault credential was decided")
    try:
        clients.vault = vault_login(
            auth, settings.vault_addr, settings.vault_role, settings.vault_jwt_file, settings.vault_auth_mount
        )
        entry = clients.vault.read_kv(settings.kv_mount, settings.kv_path)
    except (VaultError, OSError) as exc:
        return VaultHeld(location, unreadable=str(exc))
    data = entry.data or {}
    token = data.get("token", "")
    if not token:
        return VaultHeld(location, problem=f"no token in the entry (version {entry.version})")
    register_secret(token)
    tid = token_id(token)
    try:  # its record (scopes, expiry); an auditor's --token-file may not read it (404)
        record: Token | None = clients.coder.token(data.get("user") or "me", tid)
    except CoderError:
        record = None
    try:  # with a call the token's own scopes permit: a scoped token is never failed for /users/me
        probe = clients.coder.probe(token, record)
    except CoderError as exc:
        return VaultHeld(location, problem=f"Coder rejects token {tid}: {coder_words(exc)}")
    if probe.outcome == "invalid":
        return VaultHeld(location, problem=f"Coder rejects token {tid}: {probe.how}")
    who = probe.username or owner_name(clients.coder, record)
    if data.get("user") and who and who != data["user"]:
        return VaultHeld(location, problem=f"token authenticates as {who}, the entry says {data['user']}")
    issued, expires = parse_time(data.get("issued_at")), parse_time(data.get("expires_at"))
    if record is not None:  # Coder's record is the truth where expiry slides; the entry's copy is the fallback
        issued, expires = record.created_at or issued, record.expires_at or expires
    name = data.get("token_name", "")
    scopes = record.scopes if record is not None else ()
    return VaultHeld(location, "", "", who or data.get("user", ""), name, tid, issued, expires, scopes)


def owner_name(coder: CoderClient, record: Token | None) -> str:
    if record is None:
        return ""
    try:
        return coder.user(record.user_id).username
    except CoderError:
        return ""
