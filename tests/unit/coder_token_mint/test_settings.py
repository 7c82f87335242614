"""coder-token-mint settings: defaults from the issue, flag/env precedence, parsers and cross-field rules; every
bad value is a ConfigError naming the flag and the env var (the harness turns it into exit 2)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from jobs.coder_token_mint.settings import MintSettings
from lib.cli import build_parser
from lib.settings import ConfigError, resolve


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    token = tmp_path / "bootstrap"
    token.write_text("x")
    return {
        "CODER_URL": "https://coder.example.com",
        "CWJ_BOOTSTRAP_TOKEN_FILE": str(token),
        "VAULT_ADDR": "https://vault.example.com:8200",
    }


def load(env: dict[str, str], *argv: str) -> MintSettings:
    parsed = build_parser("coder-token-mint", "", [MintSettings]).parse_args(list(argv))
    return resolve(MintSettings, parsed, env)


def test_defaults_follow_the_issue(base_env: dict[str, str]) -> None:
    s = load(base_env)
    assert s.token_name_prefix == "coder-cli-session"
    assert s.lifetime == timedelta(days=30)
    assert s.renew_window == timedelta(days=10)  # a third of the lifetime
    assert s.revoke_grace == timedelta(hours=24)
    assert (s.vault_role, s.kv_mount, s.kv_path) == ("coder-token-writer", "secret", "coder-cli-session-token")
    assert s.vault_jwt_file == Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert s.user == "" and s.allow == () and s.force_rotate is False
    # least privilege for the fanned-out token (issue 16): not the server's `all`, and no privileged target
    assert s.scope == ("coder:workspaces.access", "user:read")
    assert {"owner", "user-admin", "template-admin", "organization-admin"} <= set(s.privileged_roles)
    assert s.allow_privileged_user is False


def test_go_and_day_durations_and_flag_over_env(base_env: dict[str, str]) -> None:
    env = {**base_env, "CWJ_LIFETIME": "720h", "CWJ_RENEW_BEFORE": "5d", "CWJ_REVOKE_GRACE": "1h30m"}
    s = load(env, "--lifetime", "60d")
    assert s.lifetime == timedelta(days=60)
    assert s.renew_window == timedelta(days=5)
    assert s.revoke_grace == timedelta(hours=1, minutes=30)
    assert s.policy().renew_before == timedelta(days=5)


def test_repeatable_scopes_and_allow_list(base_env: dict[str, str]) -> None:
    uid = "6F2A1C3E-1B2C-4D5E-8F90-0123456789AB"
    s = load(base_env, "--scope", "coder:workspaces.access", "--scope", "template:*", "--allow", f"workspace:{uid}")
    assert s.scope == ("coder:workspaces.access", "template:*")
    assert s.allow == (f"workspace:{uid.lower()}",)
    legacy = load(base_env, "--scope", "application_connect")  # seed 002 writes the legacy name; Coder accepts it
    assert legacy.scope == ("application_connect",)
    from_env = load({**base_env, "CWJ_SCOPE": "user:read, workspace:ssh", "CWJ_ALLOW": "*:*"})
    assert from_env.scope == ("user:read", "workspace:ssh") and from_env.allow == ("*:*",)


@pytest.mark.parametrize(
    ("argv", "label", "expected"),
    [
        (["--lifetime", "forever"], "--lifetime (CWJ_LIFETIME)", "expected a duration"),
        (["--lifetime", "0s"], "--lifetime (CWJ_LIFETIME)", "above zero"),
        (["--renew-before", "30d"], "--renew-before (CWJ_RENEW_BEFORE)", "less than --lifetime"),
        (["--revoke-grace", "10d"], "--revoke-grace (CWJ_REVOKE_GRACE)", "less than the renew window"),
        (["--scope", "everything"], "--scope (CWJ_SCOPE)", "resource:action"),
        (["--allow", "workspace:not-a-uuid"], "--allow (CWJ_ALLOW)", "type:id"),
        (["--token-name-prefix", "bad prefix"], "--token-name-prefix (CWJ_TOKEN_NAME_PREFIX)", "lowercase letters"),
        (["--token-name-prefix", "Coder_CLI"], "--token-name-prefix (CWJ_TOKEN_NAME_PREFIX)", "<purpose>"),
        (["--env", "production"], "--env (CWJ_ENV)", "dev, staging, prod"),
        (["--kv-path", "/abs/path"], "--kv-path (CWJ_KV_PATH)", "KV path"),
        (["--vault-auth", "ldap"], "--vault-auth (CWJ_VAULT_AUTH)", "expected one of"),
        (["--coder-url", "http://coder.example.com"], "--coder-url (CODER_URL)", "https://"),
    ],
)
def test_bad_values_name_the_setting_and_what_was_expected(
    base_env: dict[str, str], argv: list[str], label: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as err:
        load(base_env, *argv)
    assert err.value.setting == label
    assert expected in err.value.problem


def test_required_settings(base_env: dict[str, str]) -> None:
    for name, label in (
        ("CODER_URL", "--coder-url (CODER_URL)"),
        ("VAULT_ADDR", "--vault-addr (VAULT_ADDR)"),
        ("CWJ_BOOTSTRAP_TOKEN_FILE", "--bootstrap-token-file (CWJ_BOOTSTRAP_TOKEN_FILE)"),
    ):
        env = {k: v for k, v in base_env.items() if k != name}
        with pytest.raises(ConfigError) as err:
            load(env)
        assert err.value.setting == label and "required" in err.value.problem


def test_missing_bootstrap_file(base_env: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load({**base_env, "CWJ_BOOTSTRAP_TOKEN_FILE": str(tmp_path / "nope")})
    assert "does not exist" in err.value.problem
