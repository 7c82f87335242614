"""What each job's `--dry-run` really exits with: the README's exit-code table (issue 18 found it claiming 0, 2
or 3 only). A dry run is a preview, so 1 means the preview cannot be trusted (an `error` finding, or a failure
while observing), never that a threshold finding was seen; 3 is fic-reconcile's delete guard alone."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e


def dry(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_job(name, "--dry-run", "--output", "json", *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def error_rules(proc: subprocess.CompletedProcess[str]) -> set[str]:
    return {f["rule"] for f in json.loads(proc.stdout)["findings"] if f["severity"] == "error"}


def test_fic_reconcile_dry_run_exits_0_1_2_or_3(platform: Platform, env: dict[str, str], control: Control) -> None:
    assert dry("fic-reconcile", env).returncode == 0
    unreadable = dry("fic-reconcile", env | {"KUBECONFIG": str(Path(env["HOME"]) / "missing")})
    assert unreadable.returncode == 1 and "observe-failed" in error_rules(unreadable)  # printed, cannot be trusted
    real_clouds_only = {k: v for k, v in env.items() if k not in ("CWJ_ALLOW_CUSTOM_ARM_ENDPOINT", "CWJ_ARM_AUDIENCE")}
    assert dry("fic-reconcile", real_clouds_only, "--arm-endpoint", "https://management.azure.co").returncode == 2
    api = core_api(os.environ)
    for i in range(3):
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=f"ameide-ws-guard-{i}")))
    applied = run_job("fic-reconcile", env=env)
    assert applied.returncode == 0, applied.stderr
    for i in range(3):
        api.delete_namespace(f"ameide-ws-guard-{i}")
    platform.clock.advance(platform.kube.settings["namespace_cleanup_seconds"])
    control.clear_requests()
    guarded = dry("fic-reconcile", env, "--max-deletes", "2")  # 3 FICs of gone namespaces: over the guard
    assert guarded.returncode == 3 and json.loads(guarded.stdout)["refusal"]
    assert control.count("arm", "fic.delete") == 0


def test_keyvault_sync_dry_run_exits_0_1_or_2(env: dict[str, str], tmp_path: Path) -> None:
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- not-in-the-seed-vault\n")
    missing = dry("keyvault-sync", env, "--allowlist-file", str(allowlist))
    assert missing.returncode == 1 and error_rules(missing) == {"source-missing"}
    assert dry("keyvault-sync", env, "--allowlist-file", str(tmp_path / "none.yaml")).returncode == 2


def test_coder_token_mint_dry_run_exits_0_1_2_or_3(env: dict[str, str], tmp_path: Path) -> None:
    guarded = dry("coder-token-mint", env, "--lifetime", "100h")  # no --user: the Owner's own token
    assert guarded.returncode == 3 and "--user (CWJ_USER)" in guarded.stderr  # the privileged-target guard
    admin = dry("coder-token-mint", env, "--lifetime", "100h", "--allow-privileged-user")  # Coder caps it at 168h
    assert admin.returncode == 0, admin.stderr
    refused = tmp_path / "refused-token"
    refused.write_text("AbCdEfGhIj-0123456789abcdefghijkl\n")
    rejected = dry("coder-token-mint", env | {"CWJ_BOOTSTRAP_TOKEN_FILE": str(refused)}, "--lifetime", "100h")
    assert rejected.returncode == 1 and "Coder refused the bootstrap token" in rejected.stderr
    assert dry("coder-token-mint", env, "--lifetime", "nope").returncode == 2


def test_token_expiry_check_dry_run_exits_0_1_or_2(env: dict[str, str]) -> None:
    owner = env | {"CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"]}
    assert dry("token-expiry-check", owner, "--user", "admin").returncode == 0
    denied = dry(
        "token-expiry-check",
        owner | {"VAULT_TOKEN": "hvs.notarealtokenatallxxxxxx"},
        "--user",
        "admin",
        "--vault-check",
    )
    assert denied.returncode == 1 and error_rules(denied) == {"vault-unreadable"}
    assert dry("token-expiry-check", owner, "--user", "admin", "--fail-on", "sometimes").returncode == 2
