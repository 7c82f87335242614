"""Secrets of awkward shapes never leave a job in any form (issue 21, point 5).

Redaction matches the values it registered; a path that transforms text before scrubbing it (whitespace
collapsed, cut at 200 characters, JSON- or repr-escaped) would let a secret with quotes, line breaks, non-ASCII
or a truncation boundary through. Each shape below is put where a job reads and registers it (a Key Vault secret
value, fields of the Vault KV entry), then pushed through every transforming path with servers that echo it
back, the way a misbehaving proxy or a verbose error would:

- Key Vault error message, collapsed to one line (lib/clients/keyvault.py): the cluster vault answers the
  write 400 quoting the value, with CR/LF;
- Vault error, collapsed (lib/clients/vault.py): Vault answers the KV write 400 quoting a registered field;
- Coder error body that is not JSON, cut at 200 characters (lib/clients/coder.py): Coder answers the mint 500
  with text whose 200th character falls inside the secret;
- a header value requests refuses and repr-escapes (InvalidHeader): the Vault entry's token is the secret;
- JSON and text reports, JSON and console log lines, pushed metrics, webhook payloads: all of the above.

Every stdout, stderr, pushed metric and webhook body is searched with tests/faults/leak_audit.py `exposures`:
the value, each escaped, encoded or collapsed form, and any 12-character fragment of any of them.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import hvac
import pytest
from azure.keyvault.secrets import SecretClient

from tests.conftest import Control, run_job
from tests.emulators.platform import Platform
from tests.faults.common import BOUNDED
from tests.faults.leak_audit import exposures
from tests.receivers import receiver

pytestmark = pytest.mark.e2e

FRAGMENT = 12
CUT = 200  # lib/clients/coder.py keeps this much of an error body that is not JSON


def _shapes() -> dict[str, str]:
    def tail() -> str:
        return secrets.token_urlsafe(9)

    return {
        "quotes-and-backslashes": f"p4ss\"w0rd's\\back\\\\slash-{tail()}",
        "line-breaks": f"line-one\nline-two\r\nline-three\ttab-{tail()}",
        "non-ascii": f"clé-日本語-🔑-Ωmega\u2028sep-{tail()}",
        "longer-than-the-cut": "long-" + "".join(secrets.token_urlsafe(30) for _ in range(8)),
        "all-at-once": f'{{"k": "v\\"\n}}\r\n\tÜnïcødé-{"z" * 40}-{tail()}',
    }


SHAPES = _shapes()


def leaks(texts: list[str]) -> dict[str, list[str]]:
    """Shape name -> the forms of it found; names only, so a failure never prints a secret."""
    found = {name: exposures(value, "\n".join(texts), FRAGMENT) for name, value in SHAPES.items()}
    return {name: kinds for name, kinds in found.items() if kinds}


def outputs(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr, "a traceback in the job's stderr"
    return [proc.stdout, proc.stderr]


# ---- keyvault-sync: the Key Vault error path ------------------------------------------------------------------


def test_keyvault_sync_never_shows_a_value_the_cluster_vault_echoes(
    control: Control, env: dict[str, str], tmp_path: Path, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, _ = vaults
    names = {name: f"shape-{i}" for i, name in enumerate(SHAPES)}
    for name, value in SHAPES.items():
        source.set_secret(names[name], value)
        message = f"Parameter value\r\n'{value}'\r\nis not allowed for {names[name]}"
        control.fault(
            "keyvault_target",
            "secret.set",
            status=400,
            count=None,
            match=names[name],
            code="BadParameter",
            message=message,
        )
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("".join(f"- {n}\n" for n in names.values()))
    seen: list[str] = []
    with receiver() as gateway:
        for fmt in (["--output", "json", "--log-format", "json"], ["--output", "text", "--log-format", "console"]):
            proc = run_job(
                "keyvault-sync",
                *fmt,
                "--allowlist-file",
                str(allowlist),
                "--pushgateway-url",
                gateway.url,
                "--allow-insecure-http",
                env={**env, **BOUNDED},
            )
            assert proc.returncode == 1 and "BadParameter" in proc.stdout, "every write fails, quoting its value"
            seen += outputs(proc)
        seen += gateway.bodies()
    assert len(gateway.requests) == 2
    assert leaks(seen) == {}


# ---- coder-token-mint: the Coder truncation, the Vault error path and a token that is no header value ----------


def _entry(platform: Platform, token: str, **extra: str) -> None:
    """A Vault entry as an operator might have left it; every secret-looking field is read and registered."""
    client = hvac.Client(url=platform.vault.url, token=platform.vault.root_token, verify=str(platform.ca_path))
    data = {"token": token, "token_id": "x", "token_name": "old", "user": "ci-bot", "coder_url": platform.coder.url}
    client.secrets.kv.v2.create_or_update_secret(
        path="coder-cli-session-token", secret={**data, **extra}, mount_point="secret"
    )


@pytest.fixture
def mint_env(platform: Platform, env: dict[str, str]) -> dict[str, str]:
    import requests

    session = requests.Session()
    session.verify = str(platform.ca_path)
    session.headers["Coder-Session-Token"] = platform.coder.bootstrap_token
    body = {"username": "ci-bot", "email": "ci-bot@example.test", "login_type": "none",
            "organization_ids": ["00000000-0000-0000-0000-000000000000"]}  # fmt: skip
    session.post(f"{platform.coder.url}/api/v2/users", json=body).raise_for_status()
    return {**env, **BOUNDED}


def mint(control: Control, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return run_job("coder-token-mint", "--user", "ci-bot", "--now", control.now(), *args, env=env)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_coder_token_mint_never_shows_a_registered_value_a_server_echoes(
    shape: str, platform: Platform, control: Control, mint_env: dict[str, str]
) -> None:
    value = SHAPES[shape]
    seen: list[str] = []
    unknown_key = "AbCdEfGhIj-" + secrets.token_hex(11)  # Coder-shaped, unknown to Coder: 401, so a renewal
    _entry(platform, unknown_key, previous_token=value)

    # Coder's answer is not JSON, and its 200th character falls inside the secret.
    body = "upstream proxy error: " + "x" * (CUT - 22 - FRAGMENT) + value + " (end)"
    control.fault("coder", "tokens.create", status=500, count=None, body=body)
    for fmt in (["--output", "json", "--log-format", "json"], ["--output", "text", "--log-format", "console"]):
        proc = mint(control, mint_env, *fmt)
        assert proc.returncode == 1 and "500" in proc.stdout, "the mint fails on Coder's 500"
        seen += outputs(proc)
    control.clear_faults()

    # Vault refuses the write, quoting the registered field with its line breaks.
    control.fault("vault", "kv.write", status=400, count=None, message=f"invalid entry:\n  previous_token={value}\n")
    with receiver() as gateway:
        proc = mint(control, mint_env, "--output", "json", "--pushgateway-url", gateway.url, "--allow-insecure-http")
        seen += [*outputs(proc), *gateway.bodies()]
    assert proc.returncode == 1 and "400" in proc.stdout and gateway.requests, "the write fails, metrics pushed"
    control.clear_faults()

    # The secret is the entry's token: checking it sends it as a header (requests repr-escapes a bad one).
    _entry(platform, value)
    seen += outputs(mint(control, mint_env, "--output", "text", "--log-format", "console"))
    assert leaks(seen) == {}


# ---- token-expiry-check: the same entry through --vault-check, the webhook and the Pushgateway -------------------


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_token_expiry_check_never_shows_the_vault_token_in_any_form(
    shape: str, platform: Platform, control: Control, mint_env: dict[str, str]
) -> None:
    _entry(platform, SHAPES[shape])
    owner = {**mint_env, "CWJ_CODER_TOKEN_FILE": mint_env["CWJ_BOOTSTRAP_TOKEN_FILE"]}
    seen: list[str] = []
    with receiver(tls=platform.server_tls()) as hook, receiver() as gateway:
        for fmt in (["--output", "json", "--log-format", "json"], ["--output", "text", "--log-format", "console"]):
            proc = run_job(
                "token-expiry-check",
                "--user",
                "ci-bot",
                "--vault-check",
                "--now",
                control.now(),
                "--webhook-url",
                hook.url + "/hooks/T0/B0/path",
                "--pushgateway-url",
                gateway.url,
                "--allow-insecure-http",
                *fmt,
                env=owner,
            )
            assert proc.returncode == 1 and "vault-token-invalid" in proc.stdout, "the token is reported, not shown"
            seen += outputs(proc)
        seen += hook.bodies() + gateway.bodies()
    assert gateway.requests
    assert leaks(seen) == {}
