"""Hypothesis fuzzing of every settings and file parser: whatever text an SRE (or a broken ConfigMap) hands a job,
the parser returns a value or raises ValueError (ConfigError once the loader names the setting) with a one-line
message; never another exception, which would reach the operator as a traceback instead of exit 2.

Function level for speed (every parser, every setting of every job through the real loader, the cross-field
checks), then a few whole processes showing exit 2 with a single line on stderr.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jobs.coder_token_mint.settings import parse_allow, parse_positive_duration, parse_prefix, parse_scope
from jobs.keyvault_sync.allowlist import AllowlistError, parse_allowlist
from jobs.token_expiry_check.policy import PolicyError, compile_pattern, parse_policy
from lib import settings as S
from lib.settings import ConfigError, RunOptions, resolve, specs
from tests.conftest import run_job
from tests.docgen import JOBS

DEEP = "[" * 50_000  # deeper than any recursive-descent parser's stack
# Text shaped like what the parsers expect, so the fuzzing reaches past the first check, plus any text at all.
DURATIONS = st.from_regex(r"\A(\d{1,25}(\.\d{0,5})?(ns|us|µs|ms|s|m|h|d|w|y)){1,3}\Z")
TIMESTAMPS = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()) | st.from_regex(
    r"\A\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)?\Z"
)
URLS = st.from_regex(r"\A(https?|ftp)?:?/{0,3}[\[\]\w.:@%-]{0,30}(/[\w%.-]{0,10}){0,3}\Z")
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=12,
)
ANY_TEXT = st.text(max_size=200) | DURATIONS | TIMESTAMPS | URLS
YAML_DOCS = JSONISH.map(lambda v: yaml.safe_dump(v, allow_unicode=True)) | st.text(max_size=300)

PARSERS: dict[str, Callable[[str], Any]] = {
    "parse_bool": S.parse_bool,
    "parse_https_url": S.parse_https_url,
    "parse_service_url": S.parse_service_url,
    "int_at_least": S.int_at_least(1),
    "one_of": S.one_of("text", "json"),
    "parse_uuid": S.parse_uuid,
    "parse_json_string_list": S.parse_json_string_list,
    "parse_duration": S.parse_duration,
    "parse_seconds": S.parse_seconds,
    "parse_timestamp": S.parse_timestamp,
    "parse_kv_path": S.parse_kv_path,
    "parse_positive_duration": parse_positive_duration,
    "parse_prefix": parse_prefix,
    "parse_scope": parse_scope,
    "parse_allow": parse_allow,
    "compile_pattern": compile_pattern,
}


def one_line(exc: Exception) -> None:
    text = str(exc)
    assert text.strip(), f"{type(exc).__name__} with an empty message"
    assert "\n" not in text and "\r" not in text, f"multi-line message: {text!r}"


def settings_classes() -> dict[str, type[Any]]:
    classes = {name: importlib.import_module(module).SPEC.settings for name, module in JOBS.items()}
    return {"common": RunOptions, **classes}


# ---- every parser, alone ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PARSERS))
@given(raw=ANY_TEXT)
@example(raw=DEEP)
@example(raw="99999999999999999999d")
@example(raw="0001-01-01T00:00:00+01:00")
@example(raw="9999-12-31T23:59:59-01:00")
@example(raw="https://[::1")
@example(raw="http://host:99999999")
@example(raw='["a", "A"]')
@example(raw="<a:x|>-<a>")
@settings(max_examples=150)
def test_a_parser_returns_or_raises_a_one_line_value_error(name: str, raw: str) -> None:
    try:
        PARSERS[name](raw)
    except ValueError as exc:
        one_line(exc)


@given(text=YAML_DOCS)
@example(text=DEEP)
@example(text="\x00")
@example(text="- a\n- &x b\n- *x\n")
@example(text="- {source: a, target: [b]}\n- {source: c, source: d}\n")
@example(text="- " + "\n- ".join(f"bad name {i}" for i in range(9)))
@settings(max_examples=200)
def test_the_allowlist_parser_never_raises_anything_else(text: str) -> None:
    try:
        allowlist = parse_allowlist(text, "allowlist.yaml")
    except AllowlistError as exc:
        one_line(exc)
        assert str(exc).startswith("allowlist.yaml"), str(exc)  # names the file (and the line)
        return
    assert allowlist.entries and len(allowlist.targets) == len(allowlist.entries)


POLICY_KEYS = ["warn_days", "max_lifetime_days", "allowed_site_roles", "name_pattern", "allow_all_scope"]
POLICY_KEYS += ["expect_tokens", "unused_days", "defaults", "users"]
POLICIES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12) | st.sampled_from(["<a>-<yyyymmdd>", "<e:x|y>"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(POLICY_KEYS) | st.text(max_size=4), inner)
    ),
    max_leaves=10,
).map(lambda v: yaml.safe_dump(v, allow_unicode=True))


@given(text=POLICIES | YAML_DOCS)
@example(text=DEEP)
@example(text="\x00")
@example(text="defaults: {warn_days: 99999999999999999999}")
@example(text="users:\n  bot: {name_pattern: '<a>-<a>'}\n")
@settings(max_examples=200)
def test_the_policy_parser_never_raises_anything_else(text: str) -> None:
    try:
        parse_policy(text, "policy.yaml")
    except PolicyError as exc:
        one_line(exc)
        assert str(exc).startswith("policy.yaml:"), str(exc)


# ---- every setting of every job, through the real loader -----------------------------------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("fuzz")
    (root / "allowlist.yaml").write_text("- one\n")
    (root / "token").write_text("not-a-real-token\n")
    return {"allowlist": str(root / "allowlist.yaml"), "token": str(root / "token")}


def good_env(files: dict[str, str]) -> dict[str, str]:
    """Enough for every job's required settings; each test overrides some with fuzz."""
    uuid = "6f1c2b9e-8a4d-4c1e-9f0a-1b2c3d4e5f60"
    return {
        "CWJ_OIDC_ISSUER": "https://oidc.example.test/issuer/",
        "AZURE_CLIENT_IDS_JSON": f'["{uuid}"]',
        "AZURE_SUBSCRIPTION_ID": uuid,
        "CWJ_IDENTITY_RESOURCE_GROUP": "rg-pool",
        "CWJ_SOURCE_VAULT_URL": "https://seed.vault.example.test",
        "CWJ_TARGET_VAULT_URL": "https://cluster.vault.example.test",
        "CWJ_ALLOWLIST_FILE": files["allowlist"],
        "CODER_URL": "https://coder.example.test",
        "CWJ_BOOTSTRAP_TOKEN_FILE": files["token"],
        "CWJ_CODER_TOKEN_FILE": files["token"],
        "VAULT_ADDR": "https://vault.example.test",
        "CWJ_USER": "ci-bot",
    }


def env_names(cls: type[Any]) -> list[str]:
    return sorted(spec.env for _, spec in specs(cls))


@pytest.mark.parametrize("job", sorted(settings_classes()))
@given(data=st.data())
@settings(max_examples=120, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_env_value_loads_or_is_one_line_per_bad_setting_naming_it(
    job: str, data: st.DataObject, files: dict[str, str]
) -> None:
    cls = settings_classes()[job]
    overrides = data.draw(st.dictionaries(st.sampled_from(env_names(cls)), ANY_TEXT, min_size=1, max_size=3))
    environ = {**good_env(files), **overrides}
    unset = argparse.Namespace(**{name: None for name, _ in specs(cls)})
    try:
        resolve(cls, unset, environ)
    except ConfigError as exc:
        flags = {spec.flag for _, spec in specs(cls)} | {"VAULT_TOKEN"}
        assert 1 <= len(exc.errors) <= len(overrides)  # each bad value named once, or one cross-field rule
        for error in exc.errors:  # every bad setting of the run, each one line naming it
            one_line(error)
            assert any(flag in error.setting for flag in flags), str(error)


# ---- whole processes: exit 2, one line on stderr, nothing else --------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    root = tmp_path_factory.mktemp("bad")
    (root / "nested.yaml").write_text(DEEP)
    (root / "nul.yaml").write_text("- a\x00\n")
    yield {"nested": str(root / "nested.yaml"), "nul": str(root / "nul.yaml")}


PROCESS_CASES = [
    ("fic-reconcile", "AZURE_CLIENT_IDS_JSON", DEEP[:5000], "--client-ids-json (AZURE_CLIENT_IDS_JSON)"),
    ("fic-reconcile", "CWJ_ARM_ENDPOINT", "https://[::1", "--arm-endpoint (CWJ_ARM_ENDPOINT)"),
    ("keyvault-sync", "CWJ_ALLOWLIST_FILE", "nested", "--allowlist-file (CWJ_ALLOWLIST_FILE)"),
    ("keyvault-sync", "CWJ_ALLOWLIST_FILE", "nul", "--allowlist-file (CWJ_ALLOWLIST_FILE)"),
    ("coder-token-mint", "CWJ_LIFETIME", "99999999999999999999d", "--lifetime (CWJ_LIFETIME)"),
    ("token-expiry-check", "CWJ_POLICY_FILE", "nested", "--policy-file (CWJ_POLICY_FILE)"),
    ("token-expiry-check", "CWJ_NOW", "0001-01-01T00:00:00+01:00", "--now (CWJ_NOW)"),
    ("token-expiry-check", "CWJ_REQUEST_TIMEOUT", "0s", "--request-timeout (CWJ_REQUEST_TIMEOUT)"),
]


def run_with(job: str, files: dict[str, str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path(files["token"]).parent), **good_env(files)}
    return run_job(job, env={**base, **env}, timeout=60)


@pytest.mark.parametrize(
    ("job", "name", "value", "label"), PROCESS_CASES, ids=[f"{c[0]}-{c[1]}" for c in PROCESS_CASES]
)
def test_a_bad_value_exits_2_with_one_line_naming_the_setting_then_run_summary(
    job: str, name: str, value: str, label: str, files: dict[str, str], bad_files: dict[str, str]
) -> None:
    proc = run_with(job, files, **{name: bad_files.get(value, value)})
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    line, summary = proc.stderr.splitlines()  # the setting named, then run.summary like every run
    assert line.startswith(f"{job}: configuration error: {label}: ") and "expected" in line, line
    assert json.loads(summary)["event"] == "run.summary" and json.loads(summary)["exit_code"] == 2


@given(job=st.sampled_from(sorted(JOBS)), raw=ANY_TEXT.filter(lambda s: "\x00" not in s), data=st.data())
@settings(max_examples=6, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_settings_in_a_real_process_never_end_in_a_traceback(
    job: str, raw: str, data: st.DataObject, files: dict[str, str], env: dict[str, str]
) -> None:
    """Against the emulated platform, dry-run: a value that loads runs (exit 0, or 1 when it points somewhere
    unreachable); one that does not exits 2 with one line (and run.summary). coder-token-mint mints for the
    platform's Owner (`admin`) only with --allow-privileged-user; a fuzzed value that turns that off meets its
    guard (exit 3)."""
    name = data.draw(st.sampled_from(env_names(settings_classes()[job])))
    bounded = {"CWJ_DRY_RUN": "true", "CWJ_REQUEST_TIMEOUT": "1s", "CWJ_RETRY_DEADLINE": "1s"}
    owner = {"CWJ_USER": "admin", "CWJ_ALLOW_PRIVILEGED_USER": "true"}
    proc = run_job(job, env={**good_env(files), **env, **owner, **bounded, name: raw}, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in ((0, 1, 2, 3) if job == "coder-token-mint" else (0, 1, 2)), proc.stderr
    if proc.returncode == 2:  # one line naming the setting; every other line is a JSON log record
        plain = [line for line in proc.stderr.splitlines() if not line.startswith("{")]
        assert len(plain) == 1 and ": configuration error: " in plain[0], proc.stderr
        assert json.loads(proc.stderr.splitlines()[-1])["event"] == "run.summary", proc.stderr
