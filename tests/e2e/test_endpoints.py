"""Wrong or unreachable endpoints fail fast with a hint (issue 22, point 4), each console script against the
emulated platform: a refused port or a name that does not resolve ends the run within seconds, not minutes; the
error names the setting and the URL; an address that answers but is another service (Vault where Coder should
be, Coder where Vault or Key Vault should be) is called what it is; a refused VAULT_TOKEN is named; every retry
is logged in one shape."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_job

pytestmark = pytest.mark.e2e

FAST = 20.0  # seconds a run may take to give up on an endpoint that is not there (was 93-113 s)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"https://127.0.0.1:{sock.getsockname()[1]}"


def timed(job: str, *args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    proc = run_job(job, "--log-format", "json", *args, env=env)
    return proc, time.monotonic() - started


def failure(proc: subprocess.CompletedProcess[str]) -> str:
    """The one-line error of a run that failed, as run.summary carries it."""
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["event"] == "run.summary" and summary["exit_code"] == 1, proc.stderr[-2000:]
    return str(summary["error"])


def retries(proc: subprocess.CompletedProcess[str]) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    assert not any("Retrying (Retry(" in str(line.get("event")) for line in lines)  # urllib3's own shape, silenced
    return [line for line in lines if line.get("event") == "retry"]


@pytest.fixture
def mint_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "CWJ_USER": "admin"}


def test_a_refused_vault_port_fails_fast_naming_the_setting(mint_env: dict[str, str]) -> None:
    url = closed_port_url()
    proc, took = timed("coder-token-mint", "--dry-run", env={**mint_env, "VAULT_ADDR": url})
    error = failure(proc)
    assert took < FAST, took
    assert "connection refused" in error and "gave up after" in error
    assert f"[check --vault-addr (VAULT_ADDR) = {url}]" in error
    seen = retries(proc)
    assert seen and {r["client"] for r in seen} == {"vault"}
    assert all(set(r) >= {"call", "attempt", "wait_s", "status", "reason"} for r in seen)


def test_a_refused_coder_port_fails_fast_naming_the_setting(env: dict[str, str]) -> None:
    url = closed_port_url()
    owner = {**env, "CODER_URL": url, "CWJ_ALL_USERS": "true"}
    proc, took = timed("token-expiry-check", "--dry-run", env=owner)
    error = failure(proc)
    assert took < FAST, took
    assert "connection refused" in error and f"[check --coder-url (CODER_URL) = {url}]" in error
    assert {r["client"] for r in retries(proc)} == {"coder"}  # urllib3's retries, in the shared shape


def test_a_key_vault_name_that_does_not_resolve_fails_fast(env: dict[str, str], tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- alpha\n")
    url = "https://kv-cwj-missing.vault.invalid"  # RFC 6761: .invalid never resolves
    proc, took = timed(
        "keyvault-sync", "--dry-run", "--allowlist-file", str(allowlist), env={**env, "CWJ_SOURCE_VAULT_URL": url}
    )
    error = failure(proc)
    assert took < FAST, took
    assert "name does not resolve (kv-cwj-missing.vault.invalid" in error
    assert f"[check --source-vault-url (CWJ_SOURCE_VAULT_URL) = {url}]" in error


def test_coder_url_pointing_at_vault_says_it_is_not_coder(env: dict[str, str]) -> None:
    proc, _ = timed("token-expiry-check", "--dry-run", env={**env, "CODER_URL": env["VAULT_ADDR"], "CWJ_USER": "x"})
    error = failure(proc)
    assert "does not look like a Coder deployment" in error and "--coder-url (CODER_URL)" in error


def test_vault_addr_pointing_at_coder_says_it_is_not_vault_and_writes_nothing(mint_env: dict[str, str]) -> None:
    """Coder's 404 must not read as Vault's "no such entry" (which would lead to a mint and a write)."""
    proc, _ = timed("coder-token-mint", env={**mint_env, "VAULT_ADDR": mint_env["CODER_URL"]})
    error = failure(proc)
    assert "is not Vault's" in error and "--vault-addr (VAULT_ADDR)" in error
    assert "mint" not in json.loads(proc.stderr.strip().splitlines()[-1]).get("results", {})


def test_a_key_vault_url_pointing_at_coder_says_it_is_not_a_key_vault(env: dict[str, str], tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- alpha\n")
    wrong = {**env, "CWJ_TARGET_VAULT_URL": env["CODER_URL"]}
    proc, _ = timed("keyvault-sync", "--dry-run", "--allowlist-file", str(allowlist), env=wrong)
    error = failure(proc)
    assert "does not look like a Key Vault" in error and "--target-vault-url (CWJ_TARGET_VAULT_URL)" in error


def test_a_refused_vault_token_names_vault_token(mint_env: dict[str, str]) -> None:
    proc, _ = timed(
        "coder-token-mint", "--dry-run", env={**mint_env, "VAULT_TOKEN": "hvs.CAESIthisTokenWasNeverIssued"}
    )
    error = failure(proc)
    assert "(403)" in error and "(the Vault token from VAULT_TOKEN)" in error
