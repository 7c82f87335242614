"""Applying a coder-token-mint plan, in its order: mint (and check the new token with a call its own scopes
permit), write with check-and-set, revoke; under --compromised revoke first, then replace, then clear the entry
when no successor got stored, then report to the webhook. A failed mint or write halts the steps after it that
depend on it; every outcome is reported.

Which failed writes revoke the token just minted: a definite refusal (Vault answered 4xx, e.g. 403 permission
denied, after the client's own retries of 429) means the value is not in Vault, so nobody can hold the token
and it is revoked at once. An ambiguous failure (a 5xx, a timeout, a dropped connection) may have stored it,
where External Secrets could copy it any moment: it is left to a later run, which revokes it once it is older
than --revoke-grace and not the token in Vault (plan.py).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import requests

from jobs.coder_token_mint.actions import ClearEntry, MintToken, Notify, RevokeToken, WriteEntry
from jobs.coder_token_mint.settings import MintSettings
from lib.clients.coder import CoderClient, CoderError, Token, token_id
from lib.clients.vault import CheckAndSetMismatch, VaultClient, VaultError
from lib.clients.webhook import Webhook, WebhookError, slack_payload
from lib.model import Outcome, Plan, Report
from lib.render import rfc3339


@dataclass
class Clients:
    coder: CoderClient
    login: Callable[[], VaultClient]  # called only after Coder accepted the bootstrap token
    vault: VaultClient | None = None
    bootstrap_id: str = ""  # the key id of the bootstrap token (the part before its dash), never its value

    def vault_client(self) -> VaultClient:
        if self.vault is None:
            self.vault = self.login()
        return self.vault


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
    stored: bool = False  # Vault holds a successor (ours, or a concurrent run's that won check-and-set)


def apply(p: Plan, clients: Clients, s: MintSettings) -> Report:
    progress = Progress()
    outcomes: list[Outcome] = []
    for action in p.actions:
        if isinstance(action, ClearEntry):  # runs exactly when the steps before it did not store a successor
            outcomes.append(clear_entry(action, clients, s, progress))
        elif isinstance(action, Notify):  # reports whatever happened, so it runs after a failure too
            outcomes.append(notify(action, tuple(outcomes), s))
        elif progress.halted:
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
    # a concurrent run took the name: retry once with a random word in the purpose, the date still last
    head, env, date = action.name.rsplit("-", 2)
    name = f"{head}-{secrets.token_hex(3)}-{env}-{date}"
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
        problem, record, how = _check_minted(clients.coder, key, action)
    except (CoderError, requests.RequestException) as exc:
        # the check itself failed (an outage, not the token's answer): never revoke for that; a later run
        # checks the token in Vault again, with a call its scopes permit
        problem, record, how = "", None, f"validation skipped: {exc}"
    if problem:
        progress.halted = "skipped: the minted token did not check out"
        undo = revoke(RevokeToken(action.user, kid, name, "the new token did not check out"), clients.coder)
        return [Outcome(action, "failed", f"minted {name} but it does not work: {problem}"), undo]
    issued = (record.created_at if record else None) or datetime.now(UTC)
    expires = (record.expires_at if record else None) or issued + action.lifetime
    progress.minted = Minted(key, kid, name, issued, expires)
    renamed = f" (name {action.name} was taken)" if name != action.name else ""
    return [Outcome(action, "ok", f"minted {name} id {kid}{renamed}, expires {rfc3339(expires)}; checked: {how}")]


def _check_minted(coder: CoderClient, key: str, action: MintToken) -> tuple[str, Token | None, str]:
    """(problem, record, how): the new token's record (read with the bootstrap token) must name the user, and
    the token itself must answer a call its own scopes permit as that user: /users/me (what `coder whoami`
    calls) when it may read its user, else /deployment/ssh. A problem means the token is revoked at once; a
    call its scopes do not permit is never made, so it cannot fail one."""
    record = coder.token(action.user, token_id(key))
    if action.user_id and record.user_id != action.user_id:
        return f"its record names user {record.user_id}, not {action.user!r}", None, ""
    probe = coder.probe(key, record)
    if probe.outcome == "invalid":
        return f"Coder refuses it: {probe.how}", None, ""
    if probe.username and probe.username != action.user:
        return f"it authenticates as {probe.username!r}, not {action.user!r}", None, ""
    return "", record, probe.how


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
        progress.stored = True
        return [Outcome(action, "ok", f"version {version} holds {m.name} ({m.id})")]
    except CheckAndSetMismatch:
        return lost_race(action, clients, progress)
    except VaultError as exc:
        progress.halted = "skipped: the Vault write failed"
        if exc.status is not None and 400 <= exc.status < 500:  # refused: the value is not in Vault
            undo = RevokeToken(action.user, m.id, m.name, f"Vault refused the write ({exc.status}): never stored")
            detail = f"{exc}; {m.name} ({m.id}) was never stored, so it is revoked now"
            return [Outcome(action, "failed", detail), revoke(undo, clients.coder)]
        return [
            Outcome(
                action,
                "failed",
                f"{exc}; {m.name} ({m.id}) may have been stored: a later run revokes it after --revoke-grace "
                "unless it is the token in Vault",
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
    progress.stored = bool(now_in_vault.data and now_in_vault.data.get("token"))
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


# ---- --compromised: when no successor got stored, and the report to people ----------------------------------


def revoked_entry(action: ClearEntry, coder_url: str, now: datetime) -> dict[str, str]:
    """The entry's layout with the token emptied: External Secrets then copies an empty token, not a revoked one
    that looks current; token-expiry-check --vault-check reports it; the next run mints a successor."""
    return {
        "token": "",
        "token_id": action.revoked_id,
        "token_name": "",
        "user": action.user,
        "coder_url": coder_url,
        "issued_at": "",
        "expires_at": "",
        "status": "revoked",
        "revoked_at": rfc3339(now),
        "reason": "compromised: the token was revoked and no successor could be stored; run coder-token-mint again",
    }


def clear_entry(action: ClearEntry, clients: Clients, s: MintSettings, progress: Progress) -> Outcome:
    if progress.stored:
        return Outcome(action, "skipped", "a successor is stored")
    try:
        vault = clients.vault_client()
        data = revoked_entry(action, s.coder_url, datetime.now(UTC))
        try:
            version = vault.write_kv(action.mount, action.path, data, action.cas)
        except CheckAndSetMismatch:  # written since we read: clear it only while it still holds the revoked token
            current = vault.read_kv(action.mount, action.path)
            if current.data is not None and current.data.get("token_id") != action.revoked_id:
                return Outcome(action, "ok", f"version {current.version} no longer holds {action.revoked_id}")
            version = vault.write_kv(action.mount, action.path, data, current.version)
    except VaultError as exc:
        return Outcome(
            action,
            "failed",
            f"{exc}; Vault still serves revoked {action.revoked_id}: workspaces get 401 until a run stores a successor",
        )
    return Outcome(action, "ok", f"version {version}: token emptied, status revoked; the next run mints a successor")


def notify(action: Notify, outcomes: tuple[Outcome, ...], s: MintSettings) -> Outcome:
    failed = [o for o in outcomes if o.result == "failed"]
    verdict = "FAILED, act now" if failed else "done"
    lines = [f"{o.action.kind} {o.action.describe()['target']}: {o.result} {o.detail}".strip() for o in outcomes]
    facts = {"job": "coder-token-mint", "mode": "compromised", "failed": len(failed)}
    try:
        Webhook(s.webhook_url).post(slack_payload(f"coder-token-mint --compromised: {verdict}", lines, facts))
    except WebhookError as exc:
        return Outcome(action, "failed", str(exc))
    return Outcome(action, "ok", f"posted ({verdict})")
