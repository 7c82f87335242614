"""The pure plan of coder-token-mint: what Vault and Coder hold now -> keep, renew or force-rotate, and which
of the user's prefixed tokens may be revoked. No I/O, no clock: `now` is an input.

When is a superseded token safe to revoke? When its successor has been readable in Vault for longer than
the grace, so External Secrets has had time to copy the successor into every workspace. "In Vault since" is
the LATER of the entry's `issued_at` (the job's clock when it minted) and the KV version's `created_time`
(Vault's clock when it stored it): `created_time` is the moment ESO could first see the value, `issued_at`
guards against a Vault clock running behind ours, and taking the later one only ever delays a revocation.
A prefixed token that is not in Vault is also kept while it is younger than the grace: it may be a
concurrent run's mint that is about to be written (it would otherwise be revoked under that run's feet).
`--force-rotate` is the compromise response and revokes every other prefixed token at once, but only after
the successor was written (apply stops at the first failed step).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from jobs.coder_token_mint.actions import ClearEntry, MintToken, Notify, RevokeToken, WriteEntry
from jobs.coder_token_mint.guards import bootstrap_findings, human, privilege_check, terms
from jobs.coder_token_mint.model import (
    ENTRY_FIELDS,
    CoderToken,
    CurrentEntry,
    MintState,
    Policy,
    TokenCheck,
)
from lib.model import Action, Finding, Plan
from lib.render import rfc3339

# the state and policy live in model.py, the actions in actions.py; settings.py prints durations with human
__all__ = [
    "ENTRY_FIELDS",
    "ClearEntry",
    "CoderToken",
    "CurrentEntry",
    "MintState",
    "MintToken",
    "Notify",
    "Policy",
    "RevokeToken",
    "TokenCheck",
    "WriteEntry",
    "human",
]

Verdict = Literal["keep", "renew", "force-rotate", "compromised"]


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str


# ---- decisions --------------------------------------------------------------------------------------------


def owned(tokens: tuple[CoderToken, ...], prefix: str) -> tuple[CoderToken, ...]:
    """Ours = the name starts with `<prefix>-`; sorted oldest first, then by id, for a stable plan."""
    mine = [t for t in tokens if t.name.startswith(prefix + "-")]
    return tuple(sorted(mine, key=lambda t: (t.created_at.isoformat() if t.created_at else "", t.id)))


def effective_expiry(state: MintState) -> datetime | None:
    """The earlier of the entry's expires_at and Coder's record: neither may be trusted to be later."""
    entry = state.entry
    if entry is None:
        return None
    record = next((t for t in state.tokens if t.id == entry.token_id), None)
    times = [t for t in (entry.expires_at, record.expires_at if record else None) if t]
    return min(times) if times else None


def decide(state: MintState, policy: Policy, now: datetime, renew_before: timedelta | None = None) -> Decision:
    """`renew_before`: the window after Coder's cap (guards.terms); the policy's own when not given."""
    window = renew_before or policy.renew_before or policy.lifetime / 3
    entry = state.entry
    if policy.compromised:
        return Decision(
            "compromised",
            "--compromised: the token in Vault is treated as leaked: revoke it and the job's other tokens first, "
            "then mint, check and store a successor",
        )
    if policy.force_rotate:
        return Decision("force-rotate", "--force-rotate: replace the token and revoke every other one now")
    if entry is None:
        return Decision("renew", "missing: Vault holds no token")
    if entry.check == "invalid":
        return Decision("renew", "invalid: Coder refuses the token in Vault")
    if entry.check == "wrong-user":
        return Decision("renew", f"wrong user: the token in Vault authenticates as {entry.authenticated_as!r}")
    if entry.problem:
        return Decision("renew", f"malformed entry: {entry.problem}")
    expiry = effective_expiry(state)
    if expiry is None:
        return Decision("renew", "unknown expiry: the entry has no expires_at")
    left = expiry - now
    if left <= window:
        return Decision(
            "renew",
            f"inside the renew window: {human(max(left, timedelta()))} left (renew at {human(window)})",
        )
    return Decision("keep", f"valid for {human(left)} more")


def in_vault_since(entry: CurrentEntry | None) -> datetime | None:
    """When the token in Vault became readable there, or None if Vault holds no working token."""
    if entry is None or entry.check != "valid":
        return None
    times = [t for t in (entry.written_at, entry.issued_at) if t]
    return max(times) if times else None


def judge_token(token: CoderToken, state: MintState, policy: Policy, now: datetime) -> tuple[bool, str]:
    """(revoke?, why) for one of our tokens that is not the one in Vault."""
    if policy.compromised:
        return True, "compromised: revoked before anything else"
    if policy.force_rotate:
        return True, "force-rotate"
    since = in_vault_since(state.entry)
    if since is None:
        return False, "kept: Vault holds no working token yet"
    if now - since < policy.revoke_grace:
        ends = rfc3339(since + policy.revoke_grace)
        return False, f"kept: the successor is in Vault since {rfc3339(since)}; grace ends {ends}"
    if token.created_at is None:
        return False, "kept: Coder reports no creation time"
    if now - token.created_at < policy.revoke_grace:
        after = rfc3339(token.created_at + policy.revoke_grace)
        return False, f"kept: minted {rfc3339(token.created_at)}, maybe by a concurrent run; revocable after {after}"
    if token.created_at > since:
        return True, "orphan: minted by a run that never wrote it to Vault"
    return True, "superseded or orphaned: not the token in Vault"


def token_rows(state: MintState, policy: Policy, now: datetime) -> tuple[list[dict[str, Any]], list[RevokeToken]]:
    """The user's prefixed tokens with their fate (shown in the plan), and the revocations."""
    entry_id = state.entry.token_id if state.entry else ""
    rows: list[dict[str, Any]] = []
    revokes: list[RevokeToken] = []
    for token in owned(state.tokens, policy.prefix):
        if token.id == entry_id and not policy.rotate_all:
            fate = "in Vault"
        else:
            revoke, fate = judge_token(token, state, policy, now)
            if revoke:
                revokes.append(RevokeToken(state.user, token.id, token.name, fate))
        rows.append(
            {
                "id": token.id,
                "name": token.name,
                "created_at": rfc3339(token.created_at) or None,
                "expires_at": rfc3339(token.expires_at) or None,
                "fate": fate,
            }
        )
    return rows, revokes


def force_rotate_extra(state: MintState, policy: Policy) -> list[RevokeToken]:
    """Under --force-rotate and --compromised the token in Vault is revoked too, even when it lacks our prefix
    (prefix changed), as long as it is one of this user's tokens."""
    entry = state.entry
    if not policy.rotate_all or entry is None:
        return []
    ours = {t.id for t in owned(state.tokens, policy.prefix)}
    record = next((t for t in state.tokens if t.id == entry.token_id), None)
    if record is None or record.id in ours:
        return []
    why = "compromised: the token in Vault" if policy.compromised else "force-rotate: the token in Vault"
    return [RevokeToken(state.user, record.id, record.name, why)]


def compromise_order(
    state: MintState, policy: Policy, revokes: list[RevokeToken], replace: list[Action]
) -> list[Action]:
    """--compromised: revoke first (the token in Vault before the others), then mint, check and store a
    successor; then, applied only if no successor got stored, overwrite the entry so it does not keep serving
    the revoked token; then report the outcome to the webhook."""
    stored = state.entry.token_id if state.entry else ""
    first = sorted(revokes, key=lambda r: r.token_id != stored)
    after: list[Action] = []
    if state.entry is not None:
        after.append(ClearEntry(policy.kv_mount, policy.kv_path, state.kv_version, state.user, stored))
    if policy.webhook_host:
        after.append(Notify(policy.webhook_host))
    return [*first, *replace, *after]


def token_name(prefix: str, env: str, now: datetime, taken: set[str]) -> str:
    """`<purpose>-<env>-<yyyymmdd>`, the token naming rule of the token policy (seed 001; token-expiry-check's
    `name_pattern` "<purpose>-<environment:dev|staging|prod>-<yyyymmdd>"), the purpose being the prefix. A second
    mint on one day (a rotation, a rehearsal --now) gets `-<n>` in its purpose, so the date stays last and the
    name still passes the rule: Coder answers 409 on a reused name, expired rows included, until purged."""
    date = now.strftime("%Y%m%d")
    name, n = f"{prefix}-{env}-{date}", 1
    while name in taken:
        n += 1
        name = f"{prefix}-{n}-{env}-{date}"
    return name


def plan(state: MintState, policy: Policy, now: datetime) -> Plan:
    refusal, guard_findings = privilege_check(state.target, policy.privileged_roles, policy.allow_privileged)
    agreed = terms(state.target, policy.lifetime, policy.renew_before, policy.revoke_grace)
    decision = decide(state, policy, now, agreed.renew_before)
    rows, revokes = token_rows(state, policy, now)
    revokes += force_rotate_extra(state, policy)
    actions: list[Action] = []
    if decision.verdict != "keep":
        name = token_name(policy.prefix, policy.env, now, {t.name for t in state.tokens})
        actions.append(
            MintToken(state.user, name, agreed.lifetime, policy.scopes, policy.allow, decision.reason, state.user_id)
        )
        actions.append(WriteEntry(policy.kv_mount, policy.kv_path, state.kv_version, state.user))
    actions = compromise_order(state, policy, revokes, actions) if policy.compromised else [*actions, *revokes]
    found = (
        guard_findings
        + agreed.findings
        + findings(state, policy)
        + bootstrap_findings(state.bootstrap, policy.bootstrap_warn, policy.bootstrap_max_lifetime, now)
    )
    extra = sections(state, policy, decision, rows) | {"terms": agreed.describe(state.target)}
    if refusal is not None:  # a safety guard: nothing is minted, written or revoked, in a dry-run too
        return Plan(actions=(), findings=found, refusal=refusal, sections=extra)
    return Plan(actions=tuple(actions), findings=found, sections=extra)


def findings(state: MintState, policy: Policy) -> tuple[Finding, ...]:
    entry = state.entry
    found = [
        Finding(
            "error",
            "token-unreadable",
            f"{state.user}/{what.partition(': ')[0]}",
            f"Coder sent a token record this job cannot read ({what.partition(': ')[2]}); it is neither "
            "judged nor revoked",
        )
        for what in state.unreadable
    ]
    if entry is not None and entry.check == "wrong-user":
        found.append(
            Finding(
                "error" if policy.compromised else "warning",
                "wrong-user",
                f"{policy.kv_mount}/data/{policy.kv_path}",
                f"the token in Vault belongs to {entry.authenticated_as!r}, not {state.user!r}; "
                "this job does not revoke another user's tokens",
            )
        )
    return tuple(found)


def sections(state: MintState, policy: Policy, decision: Decision, rows: list[dict[str, Any]]) -> dict[str, Any]:
    entry = state.entry
    current: dict[str, Any] = {"kv": f"{policy.kv_mount}/data/{policy.kv_path}", "version": state.kv_version}
    if entry is not None:
        current |= {
            "token_id": entry.token_id,
            "token_name": entry.token_name,
            "check": entry.check,
            "checked_by": entry.checked_by,
            "expires_at": rfc3339(effective_expiry(state)) or None,
            "in_vault_since": rfc3339(in_vault_since(entry)) or None,
        }
    return {
        "decision": {
            "verdict": decision.verdict,
            "reason": decision.reason,
            "user": state.user,
            "roles": ", ".join(state.roles) or "member",
        },
        "vault_entry": current,
        "tokens": rows,
        "bootstrap": bootstrap_section(state),
    }


def bootstrap_section(state: MintState) -> dict[str, Any]:
    token = state.bootstrap
    if token is None:
        return {}
    return {
        "user": token.user,
        "name": token.name,
        "token_id": token.token_id,
        "expires_at": rfc3339(token.expires_at) or None,  # typed: null when Coder reports none
        "lifetime": human(token.lifetime) if token.lifetime else None,
    }
