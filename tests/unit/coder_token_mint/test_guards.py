"""coder-token-mint's checks of the target account (issue 16): a privileged target is refused (exit 3, nothing
minted), Coder's lifetime cap lowers what is minted with a warning naming it, and renewal follows the lifetime
really minted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from jobs.coder_token_mint.guards import PRIVILEGED_ROLES, Target, privilege_check, terms
from jobs.coder_token_mint.plan import CoderToken, CurrentEntry, MintState, MintToken, Policy, plan

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = Policy("coder-cli-session", lifetime=30 * DAY, renew_before=None, revoke_grace=DAY)


def state(
    roles: tuple[str, ...] = (),
    default: bool = False,
    cap: timedelta | None = None,
    tokens: tuple[CoderToken, ...] = (),
) -> MintState:
    return MintState("ci", 0, None, tokens, roles, default, cap)


# ---- the privilege guard ---------------------------------------------------------------------------------------


def test_an_owner_target_without_user_is_refused_naming_the_user_setting() -> None:
    p = plan(state(("owner",), default=True), POLICY, NOW)
    assert p.refusal is not None and p.actions == ()
    assert "--user (CWJ_USER)" in p.refusal and "owner" in p.refusal and "--allow-privileged-user" in p.refusal
    assert "bootstrap token's own account" in p.refusal


def test_every_admin_role_is_privileged_by_default_and_org_roles_count() -> None:
    for role in ("user-admin", "template-admin", "auditor", "organization-admin"):
        assert plan(state((role,)), POLICY, NOW).refusal is not None, role
    assert plan(state(("organization-member",)), POLICY, NOW).refusal is None


def test_refusal_drops_revocations_too() -> None:
    old = CoderToken("A", "coder-cli-session-old", NOW - 40 * DAY, NOW - 10 * DAY)
    p = plan(state(("owner",), tokens=(old,)), Policy("coder-cli-session", 30 * DAY, None, DAY, force_rotate=True), NOW)
    assert p.refusal is not None and p.actions == ()


def test_allow_privileged_user_mints_with_a_warning() -> None:
    policy = Policy("coder-cli-session", 30 * DAY, None, DAY, allow_privileged=True)
    p = plan(state(("template-admin",)), policy, NOW)
    assert p.refusal is None and [a.kind for a in p.actions] == ["mint", "write-kv"]
    assert [(f.severity, f.rule) for f in p.findings] == [("warning", "privileged-user")]


def test_the_privileged_list_is_a_setting() -> None:
    policy = Policy("coder-cli-session", 30 * DAY, None, DAY, privileged_roles=("owner",))
    assert plan(state(("auditor",)), policy, NOW).refusal is None
    assert plan(state(("owner",)), policy, NOW).refusal is not None


@given(st.lists(st.sampled_from([*PRIVILEGED_ROLES, "member", "organization-member", "custom-x"]), max_size=4))
def test_refused_exactly_when_a_privileged_role_is_held(roles: list[str]) -> None:
    refusal, _ = privilege_check(Target("u", tuple(roles)), PRIVILEGED_ROLES, False)
    assert (refusal is not None) == bool(set(roles) & set(PRIVILEGED_ROLES))


# ---- Coder's lifetime cap --------------------------------------------------------------------------------------


def test_lifetime_over_the_cap_is_minted_at_the_cap_with_a_warning_naming_it() -> None:
    p = plan(state(cap=timedelta(hours=168)), POLICY, NOW)
    mint = p.actions[0]
    assert isinstance(mint, MintToken) and mint.lifetime == timedelta(hours=168)
    (warning,) = [f for f in p.findings if f.rule == "lifetime-capped"]
    assert warning.severity == "warning" and "7d" in warning.message and "30d" in warning.message
    assert p.sections["terms"] == {
        "requested_lifetime": "30d",
        "coder_cap": "7d",
        "lifetime": "7d",
        "renew_before": "2d8h",
    }


def test_renewal_follows_the_capped_lifetime() -> None:
    # a 7-day token with 2 days left: inside a third of 7 days, though far outside a third of the 30 requested
    current = CurrentEntry("A", "coder-cli-session-a", NOW + 2 * DAY, NOW - 5 * DAY, NOW - 5 * DAY, "valid")
    tokens = (CoderToken("A", "coder-cli-session-a", NOW - 5 * DAY, NOW + 2 * DAY),)
    capped = MintState("ci", 1, current, tokens, (), False, timedelta(days=7))
    assert plan(capped, POLICY, NOW).sections["decision"]["verdict"] == "renew"
    uncapped = MintState("ci", 1, current, tokens)
    assert (
        plan(uncapped, Policy("p", 30 * DAY, timedelta(hours=36), DAY), NOW).sections["decision"]["verdict"] == "keep"
    )


def test_a_grace_not_below_the_capped_renew_window_is_an_error_finding() -> None:
    p = plan(state(cap=timedelta(days=2)), POLICY, NOW)  # renew at 16h, grace 1d
    assert ("error", "grace-over-renew-window") in {(f.severity, f.rule) for f in p.findings}


def test_an_explicit_renew_window_over_the_capped_lifetime_falls_back_to_a_third() -> None:
    agreed = terms(Target("ci", lifetime_cap=timedelta(days=7)), 30 * DAY, 10 * DAY, DAY)
    assert agreed.lifetime == 7 * DAY and agreed.renew_before == 7 * DAY / 3
    assert "renew-window-adjusted" in {f.rule for f in agreed.findings}


@given(
    requested=st.integers(1, 400).map(lambda d: d * DAY),
    cap=st.one_of(st.none(), st.integers(1, 400 * 24).map(lambda h: h * timedelta(hours=1))),
)
def test_minted_lifetime_never_exceeds_the_cap_and_renewal_is_inside_it(
    requested: timedelta, cap: timedelta | None
) -> None:
    agreed = terms(Target("ci", lifetime_cap=cap), requested, None, timedelta(hours=1))
    assert agreed.lifetime <= requested and (cap is None or agreed.lifetime <= cap)
    assert timedelta() < agreed.renew_before < agreed.lifetime
    assert (agreed.lifetime < requested) == any(f.rule == "lifetime-capped" for f in agreed.findings)


# ---- the bootstrap token (seed 001's policy applies to the root of trust too) ------------------------------------


def test_the_bootstrap_tokens_expiry_and_lifetime_are_checked() -> None:
    from jobs.coder_token_mint.guards import BootstrapToken

    ok = BootstrapToken("admin", "AbCdEf1234", "bootstrap", NOW + 30 * DAY, 60 * DAY)
    assert plan(MintState("ci", 0, None, (), bootstrap=ok), POLICY, NOW).findings == ()
    soon = BootstrapToken("admin", "AbCdEf1234", "bootstrap", NOW + 10 * DAY, 365 * DAY)
    found = {
        (f.severity, f.rule, f.subject)
        for f in plan(MintState("ci", 0, None, (), bootstrap=soon), POLICY, NOW).findings
    }
    assert found == {
        ("warning", "bootstrap-expiring", "bootstrap:admin/bootstrap"),
        ("warning", "bootstrap-lifetime-over-max", "bootstrap:admin/bootstrap"),
    }
    p = plan(MintState("ci", 0, None, (), bootstrap=soon), POLICY, NOW)
    assert (
        p.sections["bootstrap"]["expires_at"] == "2026-05-11T12:00:00Z"
        and p.sections["bootstrap"]["lifetime"] == "365d"
    )
