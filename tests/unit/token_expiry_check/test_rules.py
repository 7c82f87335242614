"""The pure rules of token-expiry-check: each rule, severity and subject; stateless alert de-duplication."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from jobs.token_expiry_check.alerts import new_alert, thresholds
from jobs.token_expiry_check.policy import Policy, Rules, parse_policy
from jobs.token_expiry_check.rules import (
    Account,
    Observation,
    ReadError,
    VaultHeld,
    evaluate,
)
from lib.clients.coder import Token, User

NOW = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
DAY = timedelta(days=1)
POLICY = parse_policy(
    """
defaults:
  name_pattern: "<purpose>-<environment>-<yyyymmdd>"
users:
  cicd-template-deployer:
    allowed_site_roles: [template-admin]
    allow_all_scope: false
    expect_tokens: true
""",
    "policy.yaml",
)


def user(name: str, roles: tuple[str, ...] = (), service_account: bool = False) -> User:
    return User(f"id-{name}", name, "active", roles, service_account)


def token(
    name: str,
    *,
    created: datetime = NOW - 10 * DAY,
    life: timedelta = 30 * DAY,
    expires: datetime | None = None,
    last_used: datetime | None = NOW - DAY,
    scopes: tuple[str, ...] = ("coder:templates.author",),
    tid: str = "",
) -> Token:
    return Token(
        id=tid or name[:10],
        user_id="u",
        token_name=name,
        created_at=created,
        expires_at=expires or created + life,
        last_used=last_used,
        lifetime_seconds=int(life.total_seconds()),
        scopes=scopes,
        allow_list=("*:*",),
    )


def account(u: User, *tokens: Token, listed: bool = True) -> Account:
    return Account(u.username, listed, u, u.roles, tuple(tokens))


def judged(*accounts: Account, vault: VaultHeld | None = None, policy: Policy = POLICY) -> set[tuple[str, str, str]]:
    result = evaluate(Observation("v2.29.0", accounts, vault), policy, NOW, DAY)
    return {(f.severity, f.rule, f.subject) for f in result.findings}


def test_a_compliant_account_has_no_findings() -> None:
    cicd = user("cicd-template-deployer", ("template-admin",), service_account=True)
    assert judged(account(cicd, token("cicd-template-prod-20260219"))) == set()


def test_each_rule_once_with_its_severity() -> None:
    cicd = user("cicd-template-deployer", ("template-admin", "user-admin"))
    bot = user("bot")
    accounts = (
        account(cicd, token("cicd-template-prod-20260219", scopes=("coder:all",))),
        account(
            bot,
            token("bot-ci-prod-20251101", created=NOW - 40 * DAY),  # expired 10 days ago
            token("bot-ci-staging-20260218", created=NOW - 20 * DAY),  # 10 days left
            token("bot-ci-dev-20260215", life=365 * DAY),  # lifetime over 90 days
            token("Deploy Token", life=60 * DAY),  # off-pattern
            token("bot-idle-prod-20260101", life=80 * DAY, last_used=None),
            token("bot-old-prod-20260102", life=80 * DAY, last_used=NOW - 45 * DAY),
        ),
        Account("ghost", True, errors=(ReadError("user", 404, "Resource not found"),)),
    )
    assert judged(*accounts) == {
        ("critical", "roles-not-allowed", "cicd-template-deployer"),
        ("warning", "scope-all", "cicd-template-deployer/cicd-template-prod-20260219"),
        ("critical", "token-expired", "bot/bot-ci-prod-20251101"),
        ("warning", "token-expiring", "bot/bot-ci-staging-20260218"),
        ("critical", "lifetime-over-max", "bot/bot-ci-dev-20260215"),
        ("warning", "name-off-pattern", "bot/Deploy Token"),
        ("info", "token-never-used", "bot/bot-idle-prod-20260101"),
        ("info", "token-unused", "bot/bot-old-prod-20260102"),
        ("critical", "user-not-found", "ghost"),
    }


def test_the_all_scope_is_fine_where_the_policy_allows_it() -> None:
    assert judged(account(user("bot"), token("bot-ci-prod-20260219", scopes=("all",)))) == set()


def test_seed_document_examples() -> None:
    # `coder tokens create --lifetime 8760h` breaks the 90-day rule; a 2160h template-admin-only token passes
    cicd = user("cicd-template-deployer", ("template-admin",))
    long = token("cicd-template-prod-20241216", life=timedelta(hours=8760), created=NOW - DAY)
    assert judged(account(cicd, long)) == {
        ("critical", "lifetime-over-max", "cicd-template-deployer/cicd-template-prod-20241216")
    }
    ok = token("cicd-template-prod-20241216", life=timedelta(hours=2160), created=NOW - DAY)
    assert judged(account(cicd, ok)) == set()


def test_lifetime_is_judged_by_lifetime_seconds_not_by_a_slid_expiry() -> None:
    slid = token("bot-ci-prod-20260101", created=NOW - 200 * DAY, life=30 * DAY, expires=NOW + 25 * DAY)
    result = evaluate(Observation("", (account(user("bot"), slid),)), POLICY, NOW, DAY)
    assert {f.rule for f in result.findings} == set()
    assert result.sliding_observed == 1


def test_an_expired_token_replaced_by_its_series_successor_is_only_info_and_never_alerts() -> None:
    old = token("bot-ci-prod-20251201", created=NOW - 31 * DAY, tid="old")  # expired 1 day ago: in the window
    new = token("bot-ci-prod-20260227", created=NOW - 2 * DAY, tid="new")
    other = token("bot-ci-dev-20260227", created=NOW - 2 * DAY, tid="other")  # another series does not count
    result = evaluate(Observation("", (account(user("bot"), old, new),)), POLICY, NOW, 2 * DAY)
    assert {(f.severity, f.rule) for f in result.findings} == {("info", "token-expired-superseded")}
    assert result.alerts == ()
    result = evaluate(Observation("", (account(user("bot"), old, other),)), POLICY, NOW, 2 * DAY)
    assert {(f.severity, f.rule) for f in result.findings} == {("critical", "token-expired")}
    assert [a.reason for a in result.alerts] == ["expired"]


def test_an_empty_token_list_is_an_error_only_where_tokens_are_expected() -> None:
    policy = Policy()
    sa = user("ci-bot", service_account=True)
    assert judged(account(sa), policy=policy) == {("error", "tokens-not-visible", "ci-bot")}
    assert judged(account(sa, listed=False), policy=policy) == set()  # --all-users: no expectation by default
    assert judged(account(user("person")), policy=policy) == set()
    expects = Policy(Rules(expect_tokens=True))
    assert judged(account(user("person"), listed=False), policy=expects) == {("error", "tokens-not-visible", "person")}


def test_read_errors_keep_coders_words() -> None:
    accounts = (
        Account("old-server", True, errors=(ReadError("user", 400, '"user" must be an existing uuid or username.'),)),
        Account(
            "hidden",
            True,
            user("hidden"),
            errors=(ReadError("roles", 403, "Forbidden."), ReadError("tokens", 404, "Resource not found")),
        ),
    )
    result = evaluate(Observation("", accounts), POLICY, NOW, DAY)
    found = {(f.severity, f.rule, f.subject): f.message for f in result.findings}
    assert set(found) == {
        ("critical", "user-not-found", "old-server"),
        ("error", "roles-unreadable", "hidden"),
        ("error", "tokens-unreadable", "hidden"),
    }
    assert "must be an existing uuid or username" in found[("critical", "user-not-found", "old-server")]
    assert "403: Forbidden." in found[("error", "roles-unreadable", "hidden")]


def test_rows_list_every_token_with_days_left() -> None:
    t = token("bot-ci-prod-20260219", created=NOW - 20 * DAY)
    result = evaluate(Observation("", (account(user("bot"), t),)), POLICY, NOW, DAY)
    assert result.rows == (
        {
            "user": "bot",
            "token_name": "bot-ci-prod-20260219",
            "id": "bot-ci-pro",
            "created_at": "2026-02-09T09:30:00Z",
            "expires_at": "2026-03-11T09:30:00Z",
            "days_left": 10.0,
            "lifetime_days": 30.0,
            "scopes": ["coder:templates.author"],
            "last_used": "2026-02-28T09:30:00Z",
            "status": "valid",
        },
    )


def test_output_does_not_depend_on_observation_order() -> None:
    a = account(user("a"), token("a-x-prod-20260101", created=NOW - 20 * DAY), token("Bad", tid="b"))
    b = account(user("b"), token("b-x-prod-20260101", created=NOW - 30 * DAY))
    assert evaluate(Observation("", (a, b)), POLICY, NOW, DAY) == evaluate(Observation("", (b, a)), POLICY, NOW, DAY)


# ---- the Vault-held workspace token ------------------------------------------------------------------------


def test_vault_token_findings() -> None:
    base = VaultHeld("secret/coder-cli-session-token", user="coder-wi", token_id="abc", issued_at=NOW - 20 * DAY)
    fresh = VaultHeld(**{**base.__dict__, "expires_at": NOW + 10 * DAY})  # 10 of 30 days left: at the edge
    assert judged(vault=fresh) == {("warning", "vault-token-renew-window", "vault:secret/coder-cli-session-token")}
    healthy = VaultHeld(**{**base.__dict__, "expires_at": NOW + 11 * DAY})
    assert judged(vault=healthy) == set()
    expired = VaultHeld(**{**base.__dict__, "expires_at": NOW - DAY})
    assert judged(vault=expired) == {("critical", "vault-token-invalid", "vault:secret/coder-cli-session-token")}
    rejected = VaultHeld("secret/coder-cli-session-token", problem="Coder answered 401: API key is invalid.")
    assert judged(vault=rejected) == {("critical", "vault-token-invalid", "vault:secret/coder-cli-session-token")}


def test_the_renew_window_rule_follows_the_mints_renew_before() -> None:
    """Issue 16: not a hard-coded last third; coder-token-mint's --renew-before when given (the chart passes it)."""
    held = VaultHeld(
        "secret/coder-cli-session-token", token_id="abc", issued_at=NOW - 20 * DAY, expires_at=NOW + 5 * DAY
    )
    rule = ("warning", "vault-token-renew-window", "vault:secret/coder-cli-session-token")

    def with_window(window: timedelta | None) -> set[tuple[str, str, str]]:
        result = evaluate(Observation("v2", (), held), POLICY, NOW, DAY, window)
        return {(f.severity, f.rule, f.subject) for f in result.findings}

    assert with_window(None) == {rule}  # 5 days left of 25: inside the last third
    assert with_window(4 * DAY) == set()  # the mint renews at 4 days: not yet its business
    assert with_window(6 * DAY) == {rule}


def test_the_fanned_out_token_holding_the_all_scope_is_flagged() -> None:
    held = VaultHeld(
        "secret/coder-cli-session-token",
        token_id="abc",
        issued_at=NOW - DAY,
        expires_at=NOW + 29 * DAY,
        scopes=("coder:all",),
    )
    assert judged(vault=held) == {("warning", "scope-all", "vault:secret/coder-cli-session-token")}
    least = VaultHeld(**{**held.__dict__, "scopes": ("coder:workspaces.access", "user:read")})
    assert judged(vault=least) == set()


# ---- alerts ------------------------------------------------------------------------------------------------


def test_a_crossing_alerts_once_inside_the_window_only() -> None:
    t = token("bot-ci-prod-20260101", created=NOW - 16 * DAY, life=30 * DAY)  # 14 days left exactly now
    rules = Rules()
    alert = new_alert("bot", t, rules, NOW, DAY)
    assert alert is not None and alert.reason == "14d" and "expires within 14 day(s)" in alert.text()
    assert new_alert("bot", t, rules, NOW + DAY - timedelta(seconds=1), DAY) is not None  # same window
    assert new_alert("bot", t, rules, NOW + DAY, DAY) is None  # the next run: already alerted
    assert new_alert("bot", t, rules, NOW - timedelta(seconds=1), DAY) is None  # not crossed yet


def test_thresholds_follow_the_warn_window() -> None:
    assert thresholds(Rules()) == (14, 7, 3, 1)
    assert thresholds(Rules(warn_days=30)) == (30, 14, 7, 3, 1)
    assert thresholds(Rules(warn_days=5)) == (5, 3, 1)
    assert thresholds(Rules(warn_days=0)) == ()


def _alerts_over_life(
    created: datetime, life: timedelta, first_run: timedelta, interval: timedelta, rules: Rules
) -> list[tuple[str, datetime]]:
    t = token("bot-ci-prod-20260101", created=created, life=life)
    out = []
    run = created + first_run
    while run <= created + life + 3 * interval:
        alert = new_alert("bot", t, rules, run, interval)
        if alert is not None:
            out.append((alert.reason, run))
        run += interval
    return out


@settings(max_examples=300, deadline=None)
@given(
    created=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)),
    life_seconds=st.integers(min_value=15 * 86400, max_value=120 * 86400),
    first_run=st.floats(min_value=0, max_value=86399.999),
)
def test_a_daily_job_alerts_once_per_threshold_and_at_expiry_whatever_the_time_of_day(
    created: datetime, life_seconds: int, first_run: float
) -> None:
    life = timedelta(seconds=life_seconds)
    alerts = _alerts_over_life(created, life, timedelta(seconds=first_run), DAY, Rules())
    assert [reason for reason, _ in alerts] == ["14d", "7d", "3d", "1d", "expired"]
    expires = created + life
    for reason, run in alerts:  # each alert comes from the run whose window holds the crossing
        crossing = expires - (0 if reason == "expired" else int(reason[:-1])) * DAY
        assert run - DAY < crossing <= run


@settings(max_examples=300, deadline=None)
@given(
    life_seconds=st.integers(min_value=60, max_value=45 * 86400),
    interval_seconds=st.integers(min_value=3600, max_value=3 * 86400),
    first_run=st.floats(min_value=0, max_value=0.999),
    warn_days=st.sampled_from([0, 1, 5, 14, 30]),
)
def test_any_schedule_alerts_the_most_urgent_crossing_of_each_window_and_nothing_else(
    life_seconds: int, interval_seconds: int, first_run: float, warn_days: int
) -> None:
    interval, life, rules = (
        timedelta(seconds=interval_seconds),
        timedelta(seconds=life_seconds),
        Rules(warn_days=warn_days),
    )
    alerts = _alerts_over_life(NOW, life, interval * first_run, interval, rules)
    # oracle: a threshold is crossed when days-left reaches it, or at creation for a token born inside it
    instants = {f"{d}d": (max(NOW + life - d * DAY, NOW), d) for d in thresholds(rules)}
    instants["expired"] = (NOW + life, 0)
    expected = []
    for _, run in _runs(NOW + interval * first_run, NOW + life + 3 * interval, interval):
        inside = [(days, reason) for reason, (at, days) in instants.items() if run - interval < at <= run]
        if inside:
            expected.append((min(inside)[1], run))
    assert alerts == expected
    reasons = [reason for reason, _ in alerts]
    assert len(reasons) == len(set(reasons)) and reasons[-1] == "expired"


def _runs(start: datetime, end: datetime, interval: timedelta) -> list[tuple[int, datetime]]:
    out, run = [], start
    while run <= end:
        out.append((len(out), run))
        run += interval
    return out


# ---- token records Coder sent that cannot be read (issue 16) ---------------------------------------------------


def test_an_unreadable_token_record_is_an_error_naming_it_and_not_an_empty_list() -> None:
    from lib.clients.coder_types import Malformed

    bad = Malformed("Zz00000000", "cicd-template-prod-20260101", "allow_list entry 42 is neither")
    deployer = Account("cicd-template-deployer", True, user("cicd-template-deployer", ("template-admin",)), (), ())
    result = evaluate(Observation("v2", (Account(**{**deployer.__dict__, "malformed": (bad,)}),)), POLICY, NOW, DAY)
    rules = {(f.severity, f.rule, f.subject) for f in result.findings}
    assert ("error", "token-unreadable", "cicd-template-deployer/cicd-template-prod-20260101 (Zz00000000)") in rules
    assert not any(r == "tokens-not-visible" for _, r, _ in rules)  # it holds a token, just not a readable one
    empty = evaluate(Observation("v2", (deployer,)), POLICY, NOW, DAY)
    assert any(f.rule == "tokens-not-visible" for f in empty.findings)
