"""The SRE laptop path (issue 18) and the in-pod refusal (issue 21, point 3), end to end.

A "laptop" is the platform's env file without the Workload Identity variables and without VAULT_TOKEN, a home
directory of its own, and an `az` stand-in first on PATH (tests/e2e/az_cli.py: the Azure CLI's exact output,
tokens from the platform's Entra emulator, every call logged). A "workspace" is a pod (KUBERNETES_SERVICE_HOST
set) carrying the workspace's own Workload Identity env, as a Coder workspace on AKS does.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests
from azure.keyvault.secrets import SecretClient
from kubernetes import client as k8s

from lib.auth_choice import WORKLOAD_IDENTITY_ENV
from lib.clients.kube import core_api
from tests.conftest import Control, config_error_lines, run_job
from tests.e2e.az_cli import AzCli, install
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

ARM_RESOURCE = "https://management.azure.com"  # the platform's CWJ_ARM_AUDIENCE, as AzureCliCredential passes it
VAULT_RESOURCE = "https://vault.azure.net"  # from the Key Vault emulator's challenge
KV_PATH = "coder-cli-session-token"


@pytest.fixture
def az(tmp_path: Path, platform: Platform) -> AzCli:
    return install(tmp_path / "bin", platform)


@pytest.fixture
def laptop(env: dict[str, str], az: AzCli) -> dict[str, str]:
    dropped = {*WORKLOAD_IDENTITY_ENV, "VAULT_TOKEN"}
    return {k: v for k, v in env.items() if k not in dropped} | {"PATH": f"{az.directory}{os.pathsep}{env['PATH']}"}


def job(name: str, env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    proc = run_job(name, "--log-format", "json", *args, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    events = [json.loads(line) for line in proc.stderr.splitlines() if line.startswith("{")]
    return proc, events


def credential_of(events: list[dict[str, Any]], kind: str = "azure") -> dict[str, Any]:
    (event,) = [e for e in events if e.get("event") == f"{kind}.credential"]
    return event


def arm_writes(control: Control) -> int:
    return sum(control.count("arm", op) for op in ("fic.put", "fic.delete", "identity.put", "identity.delete"))


def create_namespace(name: str) -> None:
    core_api(os.environ).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))


# ---- point 4: the Azure jobs' dry-run from a laptop, through the Azure CLI -------------------------------------


def test_fic_reconcile_dry_run_on_a_laptop_uses_the_cli_for_the_arm_audience(
    laptop: dict[str, str], az: AzCli, control: Control
) -> None:
    create_namespace("ameide-ws-laptop")
    control.clear_requests()
    proc, events = job("fic-reconcile", laptop, "--dry-run", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert [(a["kind"], a["fic"]) for a in plan["actions"]] == [("create", "coder-ws-ameide-ws-laptop")]
    assert credential_of(events)["method"] == "azure-cli"
    calls = az.calls()
    assert calls and all(argv[:4] == ["account", "get-access-token", "--output", "json"] for argv in calls)
    assert set(az.resources()) == {ARM_RESOURCE}  # the configured endpoint's audience, nothing else
    assert control.count("entra", "token") == len(calls)  # every Entra token of the run came through `az`
    assert arm_writes(control) == 0


def test_keyvault_sync_dry_run_on_a_laptop_uses_the_cli_with_the_challenges_tenant(
    laptop: dict[str, str],
    az: AzCli,
    platform: Platform,
    control: Control,
    tmp_path: Path,
    vaults: tuple[SecretClient, SecretClient],
) -> None:
    seed, _ = vaults
    seed.set_secret("github-app-private-key", f"pem-{uuid.uuid4().hex}")
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- github-app-private-key\n")
    control.clear_requests()
    proc, events = job("keyvault-sync", laptop, "--dry-run", "--output", "json", "--allowlist-file", str(allowlist))
    assert proc.returncode == 0, proc.stderr
    assert [a["kind"] for a in json.loads(proc.stdout)["actions"]] == ["copy"]
    assert credential_of(events)["method"] == "azure-cli"
    assert set(az.resources()) == {VAULT_RESOURCE}
    assert all(["--tenant", platform.baseline.tenant_id] == argv[6:8] for argv in az.calls())
    assert control.count("keyvault_target", "secret.set") == 0


def test_a_laptop_without_az_login_says_so(platform: Platform, laptop: dict[str, str], tmp_path: Path) -> None:
    logged_out = install(tmp_path / "logged-out", platform, logged_in=False)
    env = laptop | {"PATH": f"{logged_out.directory}{os.pathsep}{os.environ.get('PATH', '')}"}
    proc, _ = job("fic-reconcile", env, "--dry-run")
    assert proc.returncode == 1 and len(logged_out.calls()) == 1
    assert "Azure CLI token request" in proc.stderr and "az login" in proc.stderr


def test_a_laptop_without_any_azure_credential_exits_2_in_one_line(
    laptop: dict[str, str], control: Control, tmp_path: Path
) -> None:
    no_az = laptop | {"PATH": "/usr/bin:/bin"}
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- x\n")
    control.clear_requests()
    proc = run_job("keyvault-sync", "--dry-run", "--allowlist-file", str(allowlist), env=no_az)
    assert proc.returncode == 2
    (line,) = config_error_lines(proc.stderr)
    assert line.startswith("keyvault-sync: configuration error: --azure-auth (CWJ_AZURE_AUTH): auto found no")
    assert "az" in line and "AZURE_FEDERATED_TOKEN_FILE" in line
    assert control.count("entra") == 0


# ---- a workspace: a pod that carries someone else's Workload Identity ----------------------------------------------


@pytest.fixture
def workspace(env: dict[str, str], az: AzCli, platform: Platform, tmp_path: Path) -> dict[str, str]:
    """The workspace's own identity: a projected token for its `workspace` ServiceAccount, which no FIC on the
    jobs' identity trusts, so Entra refuses it (AADSTS700213) if a job ever uses it."""
    token = tmp_path / "workspace-azure-token"
    token.write_text(platform.service_account_jwt("ameide-ws-sre", "workspace"))
    return env | {
        "KUBERNETES_SERVICE_HOST": "10.0.0.1",
        "AZURE_FEDERATED_TOKEN_FILE": str(token),
        "PATH": f"{az.directory}{os.pathsep}{env['PATH']}",
    }


def test_in_a_workspace_azure_cli_is_honoured_over_the_workspaces_identity(
    workspace: dict[str, str], az: AzCli, control: Control
) -> None:
    proc, events = job("fic-reconcile", workspace, "--dry-run", "--azure-auth", "azure-cli")
    assert proc.returncode == 0, proc.stderr
    chosen = credential_of(events)
    assert chosen["method"] == "azure-cli" and "not used" in chosen["reason"]
    assert set(az.resources()) == {ARM_RESOURCE}
    assert control.count("entra", "token") == len(az.calls())


def test_in_a_workspace_auto_means_the_workspaces_identity(workspace: dict[str, str], az: AzCli) -> None:
    """Why the flag exists: `auto` in a pod with a complete Workload Identity env is that identity (here refused
    by Entra, naming it), never the CLI; the log line says which credential was used."""
    proc, events = job("fic-reconcile", workspace, "--dry-run")
    assert proc.returncode == 1 and az.calls() == []
    assert credential_of(events)["method"] == "workload-identity"
    assert "Entra ID token request" in proc.stderr and "AADSTS700213" in proc.stderr


# ---- issue 21 point 3: a pod without the webhook's env never falls back ------------------------------------------


@pytest.mark.parametrize("name", ["fic-reconcile", "keyvault-sync"])
def test_in_a_pod_without_workload_identity_env_the_azure_jobs_exit_2_naming_it(
    name: str, laptop: dict[str, str], az: AzCli, control: Control, tmp_path: Path
) -> None:
    pod = laptop | {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- x\n")
    control.clear_requests()
    proc = (
        run_job(name, "--dry-run", "--allowlist-file", str(allowlist), env=pod)
        if name == "keyvault-sync"
        else (run_job(name, "--dry-run", env=pod))
    )
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = config_error_lines(proc.stderr)
    assert line.startswith(f"{name}: configuration error: --azure-auth (CWJ_AZURE_AUTH): auto in a pod")
    assert all(variable in line for variable in WORKLOAD_IDENTITY_ENV)
    assert az.calls() == [] and control.count("entra") == 0 and control.count("arm") == 0  # no CLI, no IMDS


# ---- point 3: --kube-context --------------------------------------------------------------------------------------


def test_kube_context_selects_the_cluster(laptop: dict[str, str], tmp_path: Path) -> None:
    config = json.loads(Path(laptop["KUBECONFIG"]).read_text())
    cluster = config["clusters"][0]
    config["clusters"].append({"name": "elsewhere", "cluster": {**cluster["cluster"], "server": "https://127.0.0.1:9"}})
    config["contexts"] = [
        {"name": "aks-prod", "context": {"cluster": cluster["name"], "user": config["users"][0]["name"]}},
        {"name": "dev", "context": {"cluster": "elsewhere", "user": config["users"][0]["name"]}},
    ]
    config["current-context"] = "dev"
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    env = laptop | {"KUBECONFIG": str(path)}
    chosen, _ = job("fic-reconcile", env, "--dry-run", "--output", "json", "--kube-context", "aks-prod")
    assert chosen.returncode == 0, chosen.stderr
    from_env, _ = job("fic-reconcile", env | {"CWJ_KUBE_CONTEXT": "aks-prod"}, "--dry-run")
    assert from_env.returncode == 0, from_env.stderr
    current, _ = job("fic-reconcile", env, "--dry-run", "--output", "json")
    assert current.returncode == 1  # the current context's cluster is unreachable: an error finding, no deletes
    unread = [
        f
        for f in json.loads(current.stdout)["findings"]
        if (f["rule"], f["subject"]) == ("observe-failed", "namespaces")
    ]
    assert unread, current.stdout
    unknown = run_job("fic-reconcile", "--dry-run", "--kube-context", "aks-prd", env=env)
    assert unknown.returncode == 2
    (line,) = config_error_lines(unknown.stderr)
    assert "--kube-context (CWJ_KUBE_CONTEXT): expected one of the kubeconfig's contexts (aks-prod, dev)" in line


# ---- point 4: the Vault jobs with nothing but ~/.vault-token ---------------------------------------------------------


def vault_login(laptop: dict[str, str], token: str) -> None:
    """What `vault login` leaves behind: the token, no newline, mode 0600 (command/token/helper_internal.go)."""
    path = Path(laptop["HOME"]) / ".vault-token"
    path.write_text(token)
    path.chmod(0o600)


def test_the_vault_jobs_work_with_only_the_vault_cli_token(
    laptop: dict[str, str], platform: Platform, control: Control
) -> None:
    vault_login(laptop, platform.vault.root_token)
    env = laptop | {"CWJ_VAULT_JWT_FILE": str(Path(laptop["HOME"]) / "no-service-account-token")}
    coder = requests.Session()
    coder.verify = env["REQUESTS_CA_BUNDLE"]
    coder.headers["Coder-Session-Token"] = platform.coder.bootstrap_token
    user = {"username": "ci-bot", "email": "ci-bot@coder.emulator.test", "login_type": "none"}
    coder.post(f"{env['CODER_URL']}/api/v2/users", json={**user, "organization_ids": [str(uuid.UUID(int=0))]})
    control.clear_requests()

    dry, dry_events = job("coder-token-mint", env, "--user", "ci-bot", "--dry-run", "--output", "json")
    assert dry.returncode == 0, dry.stderr
    assert credential_of(dry_events, "vault") == {**credential_of(dry_events, "vault"), "method": "token"}
    assert credential_of(dry_events, "vault")["source"] == str(Path(laptop["HOME"]) / ".vault-token")
    minted, _ = job("coder-token-mint", env, "--user", "ci-bot", "--output", "json")
    assert minted.returncode == 0, minted.stderr
    owner_env = env | {"CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"]}
    checked, _ = job("token-expiry-check", owner_env, "--user", "ci-bot", "--vault-check", "--output", "json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert not [f for f in json.loads(checked.stdout)["findings"] if f["subject"].startswith("vault:")]

    assert control.count("vault", "k8s.login") == 0  # no Kubernetes auth was tried
    assert control.count("vault", "token.revoke-self") == 0  # the SRE's own token is theirs, not the run's
    operator = hvac.Client(url=env["VAULT_ADDR"], token=platform.vault.root_token, verify=env["REQUESTS_CA_BUNDLE"])
    assert operator.auth.token.lookup_self()["data"]["id"]  # still valid
    entry = operator.secrets.kv.v2.read_secret_version(
        path=KV_PATH, mount_point="secret", raise_on_deleted_version=True
    )
    assert entry["data"]["data"]["user"] == "ci-bot"


@pytest.mark.parametrize("name", ["coder-token-mint", "token-expiry-check"])
def test_with_no_vault_credential_at_all_the_error_names_all_three(
    name: str, laptop: dict[str, str], control: Control
) -> None:
    jwt = str(Path(laptop["HOME"]) / "no-service-account-token")
    args = ["--user", "ci-bot"] + (["--vault-check"] if name == "token-expiry-check" else [])
    control.clear_requests()
    proc = run_job(name, *args, "--dry-run", "--vault-jwt-file", jwt, env=laptop)
    assert proc.returncode == 2 and proc.stdout == ""
    (line,) = config_error_lines(proc.stderr)
    assert line.startswith(f"{name}: configuration error: --vault-auth (CWJ_VAULT_AUTH): auto found no Vault")
    assert "VAULT_TOKEN" in line and str(Path(laptop["HOME"]) / ".vault-token") in line and jwt in line
    assert control.count("vault") == 0 and control.count("coder") == 0
