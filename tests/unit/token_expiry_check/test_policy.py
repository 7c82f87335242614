"""The policy file: defaults, per-user overrides, name patterns, and errors that name the file and line."""

from __future__ import annotations

import textwrap
from datetime import date as date_type
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.token_expiry_check import job as token_expiry_check
from jobs.token_expiry_check.policy import Policy, PolicyError, Rules, compile_pattern, load_policy_file, parse_policy
from lib import harness

EXAMPLE = textwrap.dedent(
    """\
    defaults:
      warn_days: 21
      name_pattern: "<purpose>-<environment>-<yyyymmdd>"
    users:
      cicd-template-deployer:
        allowed_site_roles: [template-admin]
        allow_all_scope: false
        expect_tokens: true
      legacy-bot:
        name_pattern: null
        unused_days: null
    """
)


def test_no_file_means_the_issue_defaults() -> None:
    rules = Policy().for_user("anyone")
    assert (rules.warn_days, rules.max_lifetime_days, rules.allow_all_scope) == (14, 90, True)
    assert rules.allowed_site_roles is None and rules.name_pattern is None and rules.expect_tokens is None


def test_user_overrides_inherit_the_file_defaults() -> None:
    policy = parse_policy(EXAMPLE, "p.yaml")
    cicd = policy.for_user("cicd-template-deployer")
    assert cicd.allowed_site_roles == ("template-admin",)
    assert cicd.allow_all_scope is False and cicd.expect_tokens is True
    assert cicd.warn_days == 21 and cicd.max_lifetime_days == 90  # from defaults / built-in
    assert cicd.name_pattern is not None and cicd.name_pattern.source == "<purpose>-<environment>-<yyyymmdd>"
    legacy = policy.for_user("legacy-bot")
    assert legacy.name_pattern is None and legacy.unused_days is None
    assert policy.for_user("someone-else") == policy.defaults


def test_empty_file_is_the_defaults() -> None:
    assert parse_policy("", "p.yaml").defaults == Rules()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("defaults:\n  warn_days: 14\n  max_lifetime: 90\n", 3, "max_lifetime"),
        ("defaults:\n  warn_days: fourteen\n", 2, "warn_days: expected a whole number >= 0"),
        ("defaults:\n  warn_days: true\n", 2, "warn_days: expected a whole number"),
        ("users:\n  bot:\n    max_lifetime_days: 0\n", 3, "max_lifetime_days: expected a whole number >= 1"),
        ("users:\n  bot:\n    allowed_site_roles: template-admin\n", 3, "expected a list of site role names"),
        ("users:\n  bot:\n    allow_all_scope: maybe\n", 3, "allow_all_scope: expected true or false"),
        ("users:\n  bot:\n    name_pattern: '<a>-<a>'\n", 3, "<a> appears twice"),
        ("users:\n  bot:\n    name_pattern: 'ci-<env:Prod|dev>'\n", 3, "lowercase words"),
        ("users:\n  bot:\n    name_pattern: 'ci-<env'\n", 3, "expected placeholders"),
        ("defaults: [1, 2]\n", 1, "expected a rules block to be a mapping"),
        ("rules:\n  - id: x\n", 1, "expected top-level keys defaults and users"),
        ("users:\n  bot: {}\n  bot: {}\n", 3, "'bot' repeats"),
        ("defaults:\n  warn_days: [1\n", 3, "expected valid YAML"),
    ],
)
def test_errors_name_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "/etc/cwj/policy.yaml")
    assert str(info.value).startswith(f"/etc/cwj/policy.yaml:{line}: ")
    assert words in str(info.value)


def test_missing_file_is_an_expected_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="expected a readable YAML file"):
        load_policy_file(str(tmp_path / "nope.yaml"))


def test_bad_policy_file_exits_2_naming_the_setting_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  warn_days: 14\n  warn_dayz: 3\n")
    token = tmp_path / "token"
    token.write_text("x")
    environ = {"CODER_URL": "https://127.0.0.1:9", "CWJ_CODER_TOKEN_FILE": str(token)}
    code = harness.run(token_expiry_check.SPEC, ["--user", "bot", "--policy-file", str(policy)], environ)
    err = capsys.readouterr().err
    assert code == 2
    assert f"--policy-file (CWJ_POLICY_FILE): {policy}:3: " in err and "warn_dayz" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ([], "expected either one or more --user or --all-users"),
        (["--user", "a", "--all-users"], "expected either one or more --user or --all-users"),
        (["--user", "a", "--fail-on", "error"], "--fail-on (CWJ_FAIL_ON): expected one of warning, critical, never"),
        (["--user", "a", "--schedule-interval", "0s"], "--schedule-interval (CWJ_SCHEDULE_INTERVAL): expected a pos"),
        (["--user", "a", "--webhook-url", "slack"], "--webhook-url (CWJ_WEBHOOK_URL): expected an https:// URL"),
    ],
)
def test_bad_settings_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], words: str) -> None:
    token = tmp_path / "token"
    token.write_text("x")
    environ = {"CODER_URL": "https://127.0.0.1:9", "CWJ_CODER_TOKEN_FILE": str(token)}
    assert harness.run(token_expiry_check.SPEC, args, environ) == 2
    assert words in capsys.readouterr().err


# ---- name patterns -----------------------------------------------------------------------------------------


def test_the_seed_documents_example_name_matches() -> None:
    pattern = compile_pattern("<purpose>-<environment>-<yyyymmdd>")
    assert pattern.matches("cicd-template-prod-20241216")
    assert pattern.series("cicd-template-prod-20241216") == "purpose=cicd-template|environment=prod"
    assert pattern.series("cicd-template-prod-20250316") == pattern.series("cicd-template-prod-20241216")


@pytest.mark.parametrize(
    "name",
    [
        "cicd-template-prod-20241332",  # no 32nd of a 13th month
        "cicd-template-prod-2024121",  # seven digits
        "cicd-template-prod",  # no date
        "CICD-template-prod-20241216",  # upper case
        "cicd--prod-20241216",  # empty word
        "cicd-template-prod-20241216-x",  # trailing text: the whole name must match
    ],
)
def test_off_pattern_names(name: str) -> None:
    assert not compile_pattern("<purpose>-<environment>-<yyyymmdd>").matches(name)


def test_choices_and_literals() -> None:
    pattern = compile_pattern("ci.<env:dev|prod>-<yyyymmdd>")
    assert pattern.matches("ci.prod-20260101")
    assert not pattern.matches("ci.staging-20260101")
    assert not pattern.matches("cixprod-20260101")  # the dot is literal, not a regex wildcard


@given(
    purpose=st.from_regex(r"[a-z0-9]{1,6}(-[a-z0-9]{1,6}){0,2}", fullmatch=True),
    env=st.sampled_from(["dev", "staging", "prod"]),
    date=st.dates(min_value=date_type(1000, 1, 1)),
)
def test_any_well_formed_name_matches_and_keeps_its_series(purpose: str, env: str, date: object) -> None:
    pattern = compile_pattern("<purpose>-<environment:dev|staging|prod>-<yyyymmdd>")
    name = f"{purpose}-{env}-{date:%Y%m%d}"
    assert pattern.matches(name)
    assert pattern.series(name) == f"purpose={purpose}|environment={env}"
