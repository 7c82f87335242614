"""The platform as a process (`python -m tests.emulators up`) and its control API."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.conftest import Control
from tests.emulators.platform import Platform, read_env_file

CONTRACT = {
    "AZURE_AUTHORITY_HOST",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "REQUESTS_CA_BUNDLE",
    "AZURE_SUBSCRIPTION_ID",
    "CWJ_ARM_ENDPOINT",
    "CWJ_ALLOW_CUSTOM_ARM_ENDPOINT",
    "CWJ_ARM_AUDIENCE",
    "CWJ_IDENTITY_RESOURCE_GROUP",
    "CWJ_AKS_CLUSTER_ID",
    "AZURE_CLIENT_IDS_JSON",
    "CWJ_OIDC_ISSUER",
    "CWJ_ISSUER_DISCOVERY_BASE",  # beyond DESIGN.md's table: the issuer's discovery document (issue 22, point 3)
    "CWJ_STATE_NAMESPACE",
    "CWJ_SOURCE_VAULT_URL",
    "CWJ_TARGET_VAULT_URL",
    "CWJ_KEYVAULT_VERIFY_CHALLENGE_RESOURCE",
    "VAULT_ADDR",
    "VAULT_TOKEN",
    "CWJ_VAULT_ROLE",
    "CWJ_VAULT_JWT_FILE",
    "CODER_URL",
    "CWJ_BOOTSTRAP_TOKEN_FILE",
    "CWJ_CODER_TOKEN_FILE",
    "KUBECONFIG",
    "CWJ_EMULATOR_CONTROL_URL",
}  # DESIGN.md's env-file table, plus the two ARM override settings its emulator needs (lib/arm_cloud.py),
# the managed cluster of the identity bindings (issue 20) and the issuer discovery base (issue 22)


def test_up_prints_ready_writes_the_env_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    env_file = tmp_path / "platform.env"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.emulators",
            "up",
            "--env-file",
            str(env_file),
            "--state-dir",
            str(tmp_path / "s"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        env = read_env_file(env_file)
        assert set(env) == CONTRACT
        assert env["CWJ_KEYVAULT_VERIFY_CHALLENGE_RESOURCE"] == "false"
        health = requests.get(
            f"{env['CWJ_EMULATOR_CONTROL_URL']}/_emulator/health", verify=env["REQUESTS_CA_BUNDLE"], timeout=10
        )
        assert set(health.json()["services"]) >= {
            "entra",
            "arm",
            "keyvault_source",
            "keyvault_target",
            "vault",
            "coder",
            "kube",
        }
        for key in ("AZURE_FEDERATED_TOKEN_FILE", "CWJ_VAULT_JWT_FILE", "CWJ_BOOTSTRAP_TOKEN_FILE", "KUBECONFIG"):
            assert Path(env[key]).stat().st_mode & 0o077 == 0, f"{key} must not be readable by others"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped" in out


def test_env_file_is_sourceable_by_sh(tmp_path: Path, platform: Platform) -> None:
    env_file = tmp_path / "e.env"
    platform.write_env_file(env_file)
    shown = subprocess.run(
        ["sh", "-c", f'set -a; . "{env_file}"; printf %s "$AZURE_CLIENT_IDS_JSON"'],
        capture_output=True, text=True, check=True, env={"PATH": "/usr/bin:/bin"},
    ).stdout  # fmt: skip
    assert shown == platform.env()["AZURE_CLIENT_IDS_JSON"] and shown.startswith('["')


def test_control_counts_log_and_clear(platform: Platform, control: Control) -> None:
    kube_headers = {"Authorization": f"Bearer {platform.kube.token}"}
    for _ in range(3):
        requests.get(
            f"{platform.kube.url}/api/v1/namespaces", headers=kube_headers, verify=str(platform.ca_path), timeout=10
        )
    assert control.count("kube", "namespaces.list") == 3
    log = control.requests("kube")["log"]
    assert [e["seq"] for e in log] == sorted(e["seq"] for e in log)
    assert {e["status"] for e in log} == {200}
    control.clear_requests()
    assert control.count("kube") == 0


def test_control_fault_injection_status_count_retry_after_and_match(platform: Platform, control: Control) -> None:
    headers = {"Authorization": f"Bearer {platform.kube.token}"}
    url = f"{platform.kube.url}/api/v1/namespaces"
    control.fault("kube", "namespaces.get", status=503, count=2, retry_after=7, match="default")
    statuses = [
        requests.get(f"{url}/default", headers=headers, verify=str(platform.ca_path), timeout=10) for _ in range(3)
    ]
    assert [r.status_code for r in statuses] == [503, 503, 200]
    assert statuses[0].headers["Retry-After"] == "7" and statuses[0].json()["kind"] == "Status"
    other = requests.get(f"{url}/kube-system", headers=headers, verify=str(platform.ca_path), timeout=10)
    assert other.status_code == 200


def test_control_latency_injection_delays_without_failing(platform: Platform, control: Control) -> None:
    control.fault("kube", "namespaces.list", delay=0.3)
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {platform.kube.token}"}
    r = requests.get(
        f"{platform.kube.url}/api/v1/namespaces", headers=headers, verify=str(platform.ca_path), timeout=10
    )
    assert r.status_code == 200 and time.monotonic() - started >= 0.3


def test_control_clock_only_moves_forward_and_reset_restores(platform: Platform, control: Control) -> None:
    before = control.now()
    after = control.advance(86400)
    assert after > before
    bad = control.session.post(f"{control.url}/clock/advance", json={"seconds": -1})
    assert bad.status_code == 400
    control.session.post(f"{control.url}/reset").raise_for_status()
    assert control.now() < after


def test_reset_keeps_env_file_credentials_valid(platform: Platform) -> None:
    token_before = platform.kube.token
    platform.reset()
    assert platform.kube.token == token_before
