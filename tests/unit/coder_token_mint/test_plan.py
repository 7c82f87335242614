"""The pure plan of coder-token-mint: decisions (keep / renew / force-rotate), which prefixed tokens may be
revoked and when, and the invariants that keep workspaces working (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.coder_token_mint.plan import (
    ClearEntry,
    CoderToken,
    CurrentEntry,
    MintState,
    MintToken,
    Policy,
    RevokeToken,
    WriteEntry,
    decide,
    in_vault_since,
    plan,
    token_name,
)

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = Policy("coder-cli-session", lifetime=30 * DAY, renew_before=10 * DAY, revoke_grace=DAY)


def tok(tid: str, age: timedelta, name: str | None = None, lifetime: timedelta = 30 * DAY) -> CoderToken:
    created = NOW - age
    return CoderToken(tid, name or f"coder-cli-session-{tid}", created, created + lifetime)


def entry(tid: str, written_ago: timedelta, left: timedelta, check: str = "valid", **kw: object) -> CurrentEntry:
    return CurrentEntry(
        token_id=tid,
        token_name=f"coder-cli-session-{tid}",
        expires_at=NOW + left,
        issued_at=NOW - written_ago,
        written_at=NOW - written_ago,
        check=check,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def kinds(p: object) -> list[str]:
    return [a.kind for a in p.actions]  # type: ignore[attr-defined]


def revoked(p: object) -> set[str]:
    return {a.token_id for a in p.actions if isinstance(a, RevokeToken)}  # type: ignore[attr-defined]


# ---- decisions ------------------------------------------------------------------------------------------------


def test_missing_entry_mints_then_writes_with_cas_zero() -> None:
    p = plan(MintState("ci", 0, None, ()), POLICY, NOW)
    assert kinds(p) == ["mint", "write-kv"]
    mint, write = p.actions
    assert isinstance(mint, MintToken) and mint.name == "coder-cli-session-prod-20260501"
    assert mint.lifetime == 30 * DAY and mint.user == "ci"
    assert isinstance(write, WriteEntry) and write.cas == 0 and write.user == "ci"
    assert p.sections["decision"]["verdict"] == "renew"


def test_valid_token_outside_the_renew_window_is_kept_and_nothing_is_written() -> None:
    state = MintState("ci", 3, entry("A", 5 * DAY, 25 * DAY), (tok("A", 5 * DAY),))
    p = plan(state, POLICY, NOW)
    assert p.actions == ()
    assert p.sections["decision"]["verdict"] == "keep"


def test_inside_the_renew_window_renews_with_cas_on_the_version_read() -> None:
    state = MintState("ci", 7, entry("A", 21 * DAY, 9 * DAY), (tok("A", 21 * DAY),))
    p = plan(state, POLICY, NOW)
    assert kinds(p) == ["mint", "write-kv"]
    assert p.actions[1].cas == 7  # type: ignore[attr-defined]
    assert "renew window" in p.sections["decision"]["reason"]


def test_renew_window_boundary_is_inclusive() -> None:
    exactly = MintState("ci", 1, entry("A", 20 * DAY, 10 * DAY), ())
    just_outside = MintState("ci", 1, entry("A", 20 * DAY, 10 * DAY + timedelta(seconds=1)), ())
    assert decide(exactly, POLICY, NOW).verdict == "renew"
    assert decide(just_outside, POLICY, NOW).verdict == "keep"


def test_coder_record_expiring_earlier_than_the_entry_says_wins() -> None:
    # the entry claims 25 days, Coder's record says 5: trust the earlier one
    state = MintState("ci", 1, entry("A", DAY, 25 * DAY), (tok("A", 25 * DAY),))
    assert decide(state, POLICY, NOW).verdict == "renew"


def test_invalid_token_renews_whatever_its_dates_say() -> None:
    state = MintState("ci", 1, entry("A", DAY, 29 * DAY, check="invalid"), (tok("A", DAY),))
    d = decide(state, POLICY, NOW)
    assert d.verdict == "renew" and d.reason.startswith("invalid")


def test_wrong_user_renews_and_warns() -> None:
    state = MintState("ci", 1, entry("A", DAY, 29 * DAY, check="wrong-user", authenticated_as="admin"), ())
    p = plan(state, POLICY, NOW)
    assert kinds(p) == ["mint", "write-kv"]
    assert "'admin'" in p.sections["decision"]["reason"]
    assert [f.rule for f in p.findings] == ["wrong-user"]


def test_malformed_entry_is_rewritten() -> None:
    state = MintState("ci", 1, entry("A", DAY, 29 * DAY, problem="missing coder_url"), (tok("A", DAY),))
    assert decide(state, POLICY, NOW).reason == "malformed entry: missing coder_url"


def test_name_taken_in_the_same_second_gets_a_suffix() -> None:
    taken = tok("X", timedelta(0), name="coder-cli-session-prod-20260501")
    p = plan(MintState("ci", 0, None, (taken,)), POLICY, NOW)
    assert p.actions[0].name == "coder-cli-session-2-prod-20260501"  # type: ignore[attr-defined]  # date still last


# ---- revocation -----------------------------------------------------------------------------------------------


def test_superseded_token_waits_for_the_grace_then_is_revoked() -> None:
    tokens = (tok("OLD", 25 * DAY), tok("NEW", timedelta(hours=2)))
    early = MintState("ci", 2, entry("NEW", timedelta(hours=2), 30 * DAY), tokens)
    p = plan(early, POLICY, NOW)
    assert p.actions == ()
    fates = {r["id"]: r["fate"] for r in p.sections["tokens"]}
    assert fates["NEW"] == "in Vault" and fates["OLD"].startswith("kept: the successor is in Vault since")

    still_early = MintState("ci", 2, entry("NEW", timedelta(hours=18), 30 * DAY), tokens)
    assert not revoked(plan(still_early, POLICY, NOW))

    late = MintState("ci", 2, entry("NEW", DAY + timedelta(seconds=1), 29 * DAY), tokens)
    p = plan(late, POLICY, NOW)
    assert revoked(p) == {"OLD"} and kinds(p) == ["revoke"]


def test_in_vault_since_is_the_later_of_issued_at_and_vault_created_time() -> None:
    e = CurrentEntry("A", "n", NOW, NOW - 3 * DAY, NOW - DAY / 2, "valid")
    assert in_vault_since(e) == NOW - DAY / 2
    # with that anchor the grace has not passed even though issued_at is three days old
    p = plan(MintState("ci", 1, e, (tok("OLD", 40 * DAY),)), POLICY, NOW - 25 * DAY)
    assert not revoked(p)


def test_orphan_from_a_run_that_died_before_writing_is_revoked_after_the_grace() -> None:
    tokens = (tok("CUR", 5 * DAY), tok("ORPH", 2 * DAY))
    p = plan(MintState("ci", 1, entry("CUR", 5 * DAY, 25 * DAY), tokens), POLICY, NOW)
    assert revoked(p) == {"ORPH"}
    assert p.actions[0].reason.startswith("orphan")  # type: ignore[attr-defined]


def test_young_unwritten_token_is_kept_it_may_be_a_concurrent_runs_mint() -> None:
    tokens = (tok("CUR", 5 * DAY), tok("INFLIGHT", timedelta(seconds=3)))
    p = plan(MintState("ci", 1, entry("CUR", 5 * DAY, 25 * DAY), tokens), POLICY, NOW)
    assert not revoked(p)


def test_no_revocation_while_vault_holds_no_working_token() -> None:
    tokens = (tok("A", 40 * DAY), tok("B", 20 * DAY))
    for e in (None, entry("B", 20 * DAY, 10 * DAY, check="invalid")):
        p = plan(MintState("ci", 1, e, tokens), POLICY, NOW)
        assert not revoked(p), e


def test_tokens_without_our_prefix_are_never_touched() -> None:
    tokens = (tok("CUR", 5 * DAY), tok("MINE", 20 * DAY, name="laptop"), tok("OTHER", 20 * DAY, name="coder-cli-x"))
    p = plan(MintState("ci", 1, entry("CUR", 5 * DAY, 25 * DAY), tokens), POLICY, NOW)
    assert not revoked(p)


def test_force_rotate_mints_writes_then_revokes_every_other_prefixed_token() -> None:
    tokens = (tok("CUR", 5 * DAY), tok("NEWISH", timedelta(seconds=5)), tok("KEEP", DAY, name="laptop"))
    force = Policy(**{**POLICY.__dict__, "force_rotate": True})
    p = plan(MintState("ci", 4, entry("CUR", 5 * DAY, 25 * DAY), tokens), force, NOW)
    assert kinds(p) == ["mint", "write-kv", "revoke", "revoke"]
    assert revoked(p) == {"CUR", "NEWISH"}


def test_force_rotate_also_revokes_an_unprefixed_token_in_vault_of_this_user() -> None:
    tokens = (tok("CUR", 5 * DAY, name="old-prefix-1"),)
    force = Policy(**{**POLICY.__dict__, "force_rotate": True})
    p = plan(MintState("ci", 4, entry("CUR", 5 * DAY, 25 * DAY), tokens), force, NOW)
    assert revoked(p) == {"CUR"}


def test_compromised_revokes_the_stored_token_first_then_replaces_clears_if_needed_and_notifies() -> None:
    tokens = (tok("OLD", 20 * DAY), tok("CUR", 5 * DAY), tok("KEEP", DAY, name="laptop"))
    policy = Policy(**{**POLICY.__dict__, "compromised": True, "webhook_host": "hooks.example.com"})
    p = plan(MintState("ci", 4, entry("CUR", 5 * DAY, 25 * DAY), tokens), policy, NOW)
    assert kinds(p) == ["revoke", "revoke", "mint", "write-kv", "clear-kv", "notify"]
    assert p.actions[0].token_id == "CUR"  # type: ignore[attr-defined]  # the token in Vault before anything else
    assert revoked(p) == {"CUR", "OLD"}
    clear = p.actions[4]
    assert isinstance(clear, ClearEntry) and clear.cas == 4 and clear.revoked_id == "CUR"
    assert p.sections["decision"]["verdict"] == "compromised"
    assert "hooks.example.com" in p.actions[5].describe()["target"]


def test_compromised_without_an_entry_or_webhook_only_revokes_and_replaces() -> None:
    policy = Policy(**{**POLICY.__dict__, "compromised": True})
    p = plan(MintState("ci", 0, None, (tok("A", 3 * DAY),)), policy, NOW)
    assert kinds(p) == ["revoke", "mint", "write-kv"]


def test_compromised_with_another_users_token_in_vault_is_an_error() -> None:
    policy = Policy(**{**POLICY.__dict__, "compromised": True})
    state = MintState("ci", 2, entry("X", DAY, 20 * DAY, check="wrong-user", authenticated_as="mallory"), ())
    p = plan(state, policy, NOW)
    assert ("error", "wrong-user") in {(f.severity, f.rule) for f in p.findings}


# ---- properties -----------------------------------------------------------------------------------------------

ids = st.sampled_from(["A", "B", "C", "D", "E", "F"])
# ages cluster around the one-day grace too, where an off-by-a-fraction rule would show
ages = st.timedeltas(min_value=timedelta(0), max_value=60 * DAY) | st.sampled_from(
    [DAY * k for k in (0.1, 0.5, 0.75, 0.99, 1, 1.01, 1.5)]
)
names = st.sampled_from(["coder-cli-session-", "laptop-", "coder-cli-"])
token_st = st.builds(lambda i, age, n: tok(i, age, name=n + i), ids, ages, names)
entry_st = st.none() | st.builds(
    lambda i, w, left, check: entry(i, w, left, check=check),
    ids,
    ages,
    st.timedeltas(min_value=-10 * DAY, max_value=40 * DAY),
    st.sampled_from(["valid", "invalid", "wrong-user"]),
)
state_st = st.builds(
    lambda u, v, e, ts: MintState(u, v, e, tuple({t.id: t for t in ts}.values())),
    st.just("ci"),
    st.integers(min_value=0, max_value=50),
    entry_st,
    st.lists(token_st, max_size=6),
)
policy_st = st.builds(
    lambda grace, force: Policy("coder-cli-session", 30 * DAY, 10 * DAY, grace, force_rotate=force),
    st.just(DAY) | st.timedeltas(min_value=timedelta(hours=1), max_value=5 * DAY),
    st.booleans(),
)


@settings(max_examples=400)
@given(state_st, policy_st)
def test_never_revokes_the_token_in_vault_unless_force_rotating_and_only_after_the_write(
    state: MintState, policy: Policy
) -> None:
    p = plan(state, policy, NOW)
    in_vault = state.entry.token_id if state.entry else None
    if not policy.force_rotate:
        assert in_vault not in revoked(p)
    kinds_ = kinds(p)
    if "revoke" in kinds_ and policy.force_rotate:
        assert kinds_[:2] == ["mint", "write-kv"]


@settings(max_examples=400)
@given(state_st, policy_st)
def test_never_revokes_while_the_successor_is_younger_than_the_grace(state: MintState, policy: Policy) -> None:
    p = plan(state, policy, NOW)
    if policy.force_rotate or not revoked(p):
        return
    since = in_vault_since(state.entry)
    assert since is not None and NOW - since >= policy.revoke_grace
    by_id = {t.id: t for t in state.tokens}
    for tid in revoked(p):
        created = by_id[tid].created_at
        assert by_id[tid].name.startswith("coder-cli-session-")
        assert created is not None and NOW - created >= policy.revoke_grace


@settings(max_examples=300)
@given(state_st, policy_st)
def test_plan_shape_is_deterministic_and_well_ordered(state: MintState, policy: Policy) -> None:
    p = plan(state, policy, NOW)
    assert p == plan(state, policy, NOW)
    k = kinds(p)
    assert k.count("mint") == k.count("write-kv") <= 1
    if "mint" in k:
        assert k.index("mint") == 0 and k.index("write-kv") == 1
        assert p.actions[1].cas == state.kv_version  # type: ignore[attr-defined]
        assert p.actions[0].name not in {t.name for t in state.tokens}  # type: ignore[attr-defined]
    assert len(revoked(p)) == k.count("revoke")  # nothing revoked twice
    if p.sections["decision"]["verdict"] == "keep":
        assert "mint" not in k and "write-kv" not in k


@settings(max_examples=200)
@given(state_st)
def test_force_rotate_leaves_no_other_prefixed_token(state: MintState) -> None:
    force = Policy(**{**POLICY.__dict__, "force_rotate": True})
    p = plan(state, force, NOW)
    prefixed = {t.id for t in state.tokens if t.name.startswith("coder-cli-session-")}
    assert prefixed <= revoked(p)
    assert kinds(p)[:2] == ["mint", "write-kv"]


def test_an_unreadable_token_record_is_an_error_finding_and_never_revoked() -> None:
    state = MintState("ci", 0, None, (), unreadable=("coder-cli-session-x (Zz00000000): allow_list entry 42",))
    p = plan(state, POLICY, NOW)
    (found,) = [f for f in p.findings if f.rule == "token-unreadable"]
    assert found.severity == "error" and found.subject == "ci/coder-cli-session-x (Zz00000000)"
    assert "allow_list entry 42" in found.message
    assert kinds(p) == ["mint", "write-kv"]  # Vault still gets a token; nothing is revoked blind


def test_every_minted_name_passes_the_token_policys_naming_rule() -> None:
    """Seed 001's `<purpose>-<env>-<yyyymmdd>`, as token-expiry-check reads it (issue 16)."""
    from jobs.token_expiry_check.policy import parse_policy

    rule = parse_policy('defaults: {name_pattern: "<purpose>-<environment:dev|staging|prod>-<yyyymmdd>"}', "p")
    pattern = rule.for_user("ci").name_pattern
    assert pattern is not None
    taken: set[str] = set()
    for env in ("dev", "staging", "prod"):
        for _ in range(3):  # three mints on one day: the second and third get a number in their purpose
            name = token_name("coder-cli-session", env, NOW, taken)
            assert pattern.matches(name), name
            taken.add(name)
    assert pattern.series("coder-cli-session-prod-20260501") == pattern.series("coder-cli-session-prod-20260601")
