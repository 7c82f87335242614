"""The fault proxy in front of OpenBao: operation names, the control API's faults in Vault's error envelope,
malformed bodies, latency and dropped connections, and everything else passed through untouched."""

from __future__ import annotations

import hvac
import hvac.exceptions as hx
import pytest
import requests

from tests.conftest import Control
from tests.emulators.platform import Platform
from tests.emulators.vault.helpers import PATH, raw
from tests.emulators.vault.proxy import operation


@pytest.mark.parametrize(
    ("method", "path", "op"),
    [
        ("POST", "/v1/auth/kubernetes/login", "k8s.login"),
        ("GET", "/v1/secret/data/coder-cli-session-token", "kv.read"),
        ("PUT", "/v1/secret/data/a/b", "kv.write"),
        ("LIST", "/v1/secret/metadata/", "kv.metadata.list"),
        ("GET", "/v1/secret/metadata/a", "kv.metadata.read"),
        ("POST", "/v1/secret/destroy/a", "kv.versions"),
        ("GET", "/v1/secret/a", "kv.invalid-path"),
        ("POST", "/v1/auth/token/revoke-self", "token.revoke-self"),
        ("LIST", "/v1/sys/policies/acl", "policy.list"),
        ("PUT", "/v1/sys/policies/acl/x", "policy.write"),
        ("DELETE", "/v1/auth/token/lookup-self", "unsupported"),
        ("GET", "/v1/sys/health", "sys"),
        ("GET", "/v1/kv/data/x", "other"),
    ],
)
def test_operation_names(method: str, path: str, op: str) -> None:
    assert operation(method, path) == op


def test_an_injected_503_uses_vaults_envelope_then_passes_through(writer: hvac.Client, control: Control) -> None:
    control.fault("vault", "kv.write", status=503, message="Vault is sealed")
    with pytest.raises(hx.VaultDown) as info:
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)
    assert info.value.errors == ["Vault is sealed"]
    assert writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)["data"]["version"] == 1
    assert control.count("vault", "kv.write") == 2


def test_a_malformed_body_and_retry_after(platform: Platform, control: Control) -> None:
    control.fault("vault", "sys", status=429, retry_after=3, body="{not json")
    resp = raw("GET", "/v1/sys/health")
    assert (resp.status_code, resp.text, resp.headers["Retry-After"]) == (429, "{not json", "3")
    assert raw("GET", "/v1/sys/health").json()["initialized"] is True  # OpenBao's own answer again


def test_a_connection_dropped_before_openbao_sees_the_write(writer: hvac.Client, control: Control) -> None:
    control.fault("vault", "kv.write", drop="request")
    with pytest.raises(requests.ConnectionError):
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)
    assert writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)["data"]["version"] == 1


def test_a_connection_dropped_after_the_write_leaves_it_written(writer: hvac.Client, control: Control) -> None:
    """The ambiguous case: the client never hears back, but OpenBao stored version 1, so a blind retry with the
    same check-and-set loses (the job then re-reads, tests/faults/test_coder_token_mint_faults.py)."""
    control.fault("vault", "kv.write", drop="response")
    with pytest.raises(requests.ConnectionError):
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)
    with pytest.raises(hx.InvalidRequest, match="check-and-set"):
        writer.secrets.kv.v2.create_or_update_secret(PATH, {"token": "t"}, cas=0)
    read = writer.secrets.kv.v2.read_secret_version(PATH, raise_on_deleted_version=True)["data"]
    assert read["metadata"]["version"] == 1
    assert [e["status"] for e in control.requests("vault", "kv.write")["log"]] == [0, 400]


def test_latency_then_the_real_answer(writer: hvac.Client, control: Control) -> None:
    control.fault("vault", "token.lookup-self", delay=0.3)
    assert writer.auth.token.lookup_self()["data"]["policies"] == ["coder-token-writer", "default"]


def test_a_bad_drop_value_is_refused_by_the_control_api(control: Control) -> None:
    with pytest.raises(requests.HTTPError):
        control.fault("vault", "kv.write", drop="sometimes")


def test_openbao_dies_with_the_platform(tmp_path: object) -> None:
    from pathlib import Path

    platform = Platform(Path(str(tmp_path))).start()
    process = platform.vault.bao.process if platform.vault.bao else None
    assert process is not None and process.poll() is None
    platform.stop()
    assert process.poll() is not None


def test_every_token_openbao_issues_is_known_to_the_leak_audit(platform: Platform, writer: hvac.Client) -> None:
    assert writer.token in platform.secrets and platform.leaked_secrets(f"log line {writer.token}") == 1
