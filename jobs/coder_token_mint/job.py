"""coder-token-mint: keep a valid Coder CLI session token in Vault KV v2 for External Secrets to fan out,
rotate it before it expires, and revoke superseded tokens once their successor has been in Vault for a grace.

Flow (issue 5): validate the bootstrap token (Vault is not touched when Coder refuses it) -> log in to
Vault -> read the entry and its version -> ask Coder about the token in it -> list the user's tokens ->
plan (plan.py, pure) -> apply in order, stopping at the first failed mint or write.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from jobs.coder_token_mint import plan as mint_plan
from jobs.coder_token_mint.observe import coder_token, inspect_entry, validate_bootstrap
from jobs.coder_token_mint.plan import MintState, MintToken, RevokeToken, WriteEntry
from jobs.coder_token_mint.settings import MintSettings
from lib import harness
from lib.auth_choice import connect_vault, vault_auth, vault_login
from lib.clients.coder import CoderClient, CoderError, Token, token_id
from lib.clients.pushgateway import push, report_registry
from lib.clients.vault import CheckAndSetMismatch, VaultClient, VaultError
from lib.logs import get_logger
from lib.model import Outcome, Plan, Report
from lib.redact import register_secret
from lib.render import rfc3339
from lib.settings import ConfigError, label_of


@dataclass
class Clients:
    coder: CoderClient
    login: Callable[[], VaultClient]  # called only after Coder accepted the bootstrap token
    vault: VaultClient | None = None

    def vault_client(self) -> VaultClient:
        if self.vault is None:
            self.vault = self.login()
        return self.vault


def connect(s: MintSettings) -> Clients:
    try:
        bootstrap = s.bootstrap_token_file.read_text().strip()
    except OSError as exc:
        raise ConfigError(
            label_of(MintSettings, "bootstrap_token_file"), f"expected a readable file ({exc.strerror})"
        ) from None
    if not bootstrap:
        raise ConfigError(label_of(MintSettings, "bootstrap_token_file"), "expected a token, the file is empty")
    register_secret(bootstrap)
    vault = connect_vault(s.vault_auth, s.vault_jwt_file, _vault_labels())

    def login() -> VaultClient:
        return vault_login(vault, s.vault_addr, s.vault_role, s.vault_jwt_file, s.vault_auth_mount)

    return Clients(CoderClient(s.coder_url, bootstrap), login)


def _vault_labels() -> tuple[str, str]:
    return label_of(MintSettings, "vault_auth"), label_of(MintSettings, "vault_jwt_file")


def preflight(s: MintSettings, environ: Mapping[str, str]) -> None:
    vault_auth(s.vault_auth, environ, s.vault_jwt_file, _vault_labels())  # no Vault credential: exit 2, one line


# ---- observe (the Coder-side checks are in observe.py) ----------------------------------------------------


def observe(clients: Clients, s: MintSettings) -> MintState:
    me = validate_bootstrap(clients.coder)
    user = clients.coder.user(s.user) if s.user else me
    kv = clients.vault_client().read_kv(s.kv_mount, s.kv_path)
    entry = inspect_entry(clients.coder, kv, user)
    tokens = tuple(coder_token(t) for t in clients.coder.tokens(user.username))
    return MintState(user.username, kv.version, entry, tokens)


def plan(state: MintState, s: MintSettings, now: datetime) -> Plan:
    return mint_plan.plan(state, s.policy(), now)


# ---- apply ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Minted:
    key: str = field(repr=False)
    id: str
    name: str
    issued_at: datetime
    expires_at: datetime


@dataclass
class Progress:
    minted: Minted | None = None
    halted: str = ""  # set by a failed mint or write: later steps are skipped, never run on stale ground


def apply(p: Plan, clients: Clients, s: MintSettings) -> Report:
    progress = Progress()
    outcomes: list[Outcome] = []
    for action in p.actions:
        if progress.halted:
            outcomes.append(Outcome(action, "skipped", progress.halted))
        elif isinstance(action, MintToken):
            outcomes += mint(action, clients, progress)
        elif isinstance(action, WriteEntry):
            outcomes += write(action, clients, s, progress)
        elif isinstance(action, RevokeToken):
            outcomes.append(revoke(action, clients.coder))
    written = progress.minted if progress.minted and not progress.halted else None
    return Report(p, tuple(outcomes), sections={"written": _written_section(written)} if written else {})


def _written_section(m: Minted) -> dict[str, str]:
    return {"token_id": m.id, "token_name": m.name, "expires_at": rfc3339(m.expires_at)}


def _create(action: MintToken, coder: CoderClient) -> tuple[str, str]:
    try:
        return coder.create_token(action.user, action.name, action.lifetime, action.scopes, action.allow), action.name
    except CoderError as exc:
        if exc.status != 409:
            raise
    name = f"{action.name}-{secrets.token_hex(3)}"  # a concurrent run took the name: retry once with a new one
    return coder.create_token(action.user, name, action.lifetime, action.scopes, action.allow), name


def mint(action: MintToken, clients: Clients, progress: Progress) -> list[Outcome]:
    try:
        key, name = _create(action, clients.coder)
    except (CoderError, requests.RequestException) as exc:
        # a create whose answer was lost may still have made a token: it is an orphan for a later run
        progress.halted = "skipped: the mint failed"
        return [Outcome(action, "failed", str(exc))]
    kid = token_id(key)
    try:
        problem, record = _check_minted(clients.coder, key, action.user)
    except (CoderError, requests.RequestException) as exc:
        problem, record = str(exc), None
    if problem or record is None:
        progress.halted = "skipped: the minted token did not check out"
        undo = revoke(RevokeToken(action.user, kid, name, "the new token did not check out"), clients.coder)
        return [Outcome(action, "failed", f"minted {name} but it does not work: {problem}"), undo]
    issued = record.created_at or datetime.now(UTC)
    expires = record.expires_at or issued + action.lifetime
    progress.minted = Minted(key, kid, name, issued, expires)
    renamed = f" (name {action.name} was taken)" if name != action.name else ""
    return [Outcome(action, "ok", f"minted {name} id {kid}{renamed}, expires {rfc3339(expires)}")]


def _check_minted(coder: CoderClient, key: str, user: str) -> tuple[str, Token | None]:
    """The new token must answer /users/me (what `coder whoami` calls) as the user; its record gives expiry."""
    who = coder.with_token(key).me()
    if who.username != user:
        return f"it authenticates as {who.username!r}, not {user!r}", None
    return "", coder.token(user, token_id(key))


def entry_data(m: Minted, user: str, coder_url: str) -> dict[str, str]:
    return {
        "token": m.key,
        "token_id": m.id,
        "token_name": m.name,
        "user": user,
        "coder_url": coder_url,
        "issued_at": rfc3339(m.issued_at),
        "expires_at": rfc3339(m.expires_at),
    }


def write(action: WriteEntry, clients: Clients, s: MintSettings, progress: Progress) -> list[Outcome]:
    m = progress.minted
    if m is None:
        return [Outcome(action, "skipped", "nothing was minted")]
    try:
        data = entry_data(m, action.user, s.coder_url)
        version = clients.vault_client().write_kv(action.mount, action.path, data, action.cas)
        return [Outcome(action, "ok", f"version {version} holds {m.name} ({m.id})")]
    except CheckAndSetMismatch:
        return lost_race(action, clients, progress)
    except VaultError as exc:
        progress.halted = "skipped: the Vault write failed"
        return [
            Outcome(
                action,
                "failed",
                f"{exc}; {m.name} ({m.id}) is left unwritten: a later run revokes it after --revoke-grace",
            )
        ]


def lost_race(action: WriteEntry, clients: Clients, progress: Progress) -> list[Outcome]:
    """Check-and-set failed. Our own earlier attempt may have landed (a retried write whose answer was lost):
    read back before deciding, and never revoke the token Vault now holds."""
    m = progress.minted
    assert m is not None
    try:
        now_in_vault = clients.vault_client().read_kv(action.mount, action.path)
    except VaultError as exc:
        progress.halted = "skipped: could not tell who won the write"
        return [Outcome(action, "failed", f"check-and-set failed and the read-back failed too: {exc}")]
    if now_in_vault.data and now_in_vault.data.get("token_id") == m.id:
        return [
            Outcome(action, "ok", f"version {now_in_vault.version} holds {m.name} ({m.id}) (confirmed by read-back)")
        ]
    progress.halted = "skipped: a concurrent run wrote first"
    undo = RevokeToken(action.user, m.id, m.name, "lost check-and-set to a concurrent run")
    return [
        Outcome(
            action, "skipped", f"check-and-set lost: version {now_in_vault.version} was written by a concurrent run"
        ),
        revoke(undo, clients.coder),
    ]


def revoke(action: RevokeToken, coder: CoderClient) -> Outcome:
    try:
        coder.delete_token(action.user, action.token_id)
    except CoderError as exc:
        if exc.status == 404:
            return Outcome(action, "ok", "already gone")
        return Outcome(action, "failed", str(exc))
    except requests.RequestException as exc:  # one unreachable call must not hide the other revocations
        return Outcome(action, "failed", f"{type(exc).__name__}: {exc}")
    return Outcome(action, "ok", "revoked")


def close(clients: Clients) -> None:
    """Revoke the Vault token this run logged in for; an SRE's own VAULT_TOKEN is left alone."""
    if clients.vault is not None and clients.vault.owns_token:
        try:
            clients.vault.revoke_self()
        except VaultError as exc:
            get_logger().warning("vault.revoke_self_failed", error=str(exc))


def publish(report: Report, s: MintSettings, code: int) -> None:
    if s.pushgateway_url:
        push(s.pushgateway_url, SPEC.name, report_registry(SPEC.name, report, code == 0))


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
)


def main() -> None:
    harness.main(SPEC)
