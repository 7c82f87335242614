"""README, "Coder token for token-expiry-check": an Owner's token minted with only the scopes the README
gives covers every call the job makes (option 1); one account checked with its own token needs no Owner (3).
The Coder emulator stores scopes but does not enforce them (its module docstring), so this test does what
Coder's authorizer would: it maps each call the job made, taken from the emulator's request log, to the
permission Coder checks for it, and requires those to be exactly the README's scopes. Coder's checks, read in
coderd/database/dbauthz/dbauthz.go (GetUserByID, GetUsers: user read; GetAPIKeysByUserID, GetAPIKeyByID:
api_key read, post-filtered per key) and coderd/rbac/scopes.go (a low-level `resource:action` scope is a site
permission on that pair, ANDed with the account's roles)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Control, run_job
from tests.e2e.test_token_expiry_check import Coder
from tests.emulators.coder.tokens import EXTERNAL_SCOPES
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
# emulator operation (the Coder route it serves) -> the scope Coder's authorizer needs for it; None: no token
SCOPE_OF_OPERATION = {
    "users.get": "user:read",  # GET /users/{user}, /users/me
    "users.list": "user:read",  # GET /users
    "tokens.list": "api_key:read",  # GET /users/{user}/keys/tokens
    "tokens.get_by_name": "api_key:read",  # GET /users/{user}/keys/tokens/{name}
    "keys.get": "api_key:read",  # GET /users/{user}/keys/{id}
    "buildinfo": None,
}


def readme_scopes() -> list[str]:
    section = README.read_text().split("**Coder token for token-expiry-check.**", 1)[1].split("\n**", 1)[0]
    (body,) = re.findall(r"-d '(\{.*?\})'", section)
    scopes: list[str] = json.loads(body)["scopes"]
    return scopes


def test_the_readme_scopes_are_real_coder_scopes() -> None:
    assert readme_scopes() == ["api_key:read", "user:read"]
    assert set(readme_scopes()) <= EXTERNAL_SCOPES  # Coder's catalogue (scopes_catalog.go), as the emulator has it


@pytest.mark.parametrize("who", ["named-users", "all-users"])
def test_every_call_the_check_makes_is_covered_by_the_readme_scopes(
    platform: Platform, control: Control, env: dict[str, str], tmp_path: Path, who: str
) -> None:
    coder = Coder(platform)
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 60 * 24)
    scoped = coder.token("admin", "token-expiry-check", 168, scopes=tuple(readme_scopes()))  # the Owner's, narrowed
    token_file = tmp_path / "token"
    token_file.write_text(scoped + "\n")
    control.clear_requests()
    args = ["--user", "ci-bot", "--user", "admin"] if who == "named-users" else ["--all-users"]
    proc = run_job(
        "token-expiry-check", *args, "--output", "json", "--now", control.now(),
        env={**env, "CWJ_CODER_TOKEN_FILE": str(token_file)},
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert ("ci-bot", "ci-web-prod-20260101") in {(r["user"], r["token_name"]) for r in report["tokens"]}
    assert not {f["rule"] for f in report["findings"]} & {"tokens-not-visible", "tokens-unverifiable"}
    operations = set(control.requests("coder")["counts"].get("coder", {}))
    assert operations, "the request log saw no call"
    assert operations <= set(SCOPE_OF_OPERATION), f"calls with no scope mapping: {operations - set(SCOPE_OF_OPERATION)}"
    assert {SCOPE_OF_OPERATION[op] for op in operations} - {None} == set(readme_scopes())


def test_one_account_checked_with_its_own_scoped_token_needs_no_owner(
    platform: Platform, control: Control, env: dict[str, str], tmp_path: Path
) -> None:
    """README option 3: a non-owner reads its own keys (Coder's member role, user-level api_key read), so the
    list is complete (it holds the reading token itself) and no visibility finding is raised."""
    coder = Coder(platform)
    coder.user("workspace-bot")
    coder.token("workspace-bot", "ci-web-prod-20260101", 60 * 24)
    own = coder.token("workspace-bot", "token-expiry-check", 168, scopes=tuple(readme_scopes()))
    token_file = tmp_path / "token"
    token_file.write_text(own + "\n")
    proc = run_job(
        "token-expiry-check", "--user", "workspace-bot", "--output", "json", "--now", control.now(),
        env={**env, "CWJ_CODER_TOKEN_FILE": str(token_file)},
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert {r["token_name"] for r in report["tokens"]} == {"ci-web-prod-20260101", "token-expiry-check"}
    assert not {f["rule"] for f in report["findings"]} & {"tokens-not-visible", "tokens-unverifiable"}
    assert proc.returncode == 0, proc.stderr
