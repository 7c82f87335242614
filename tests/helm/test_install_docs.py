"""README's Install section stays true: its minimal values file renders, lints, validates and scans clean, and
its Vault policies and roles, loaded as written into a real OpenBao server (the platform's), let the jobs do
their work when they log in the way the chart makes them: the chart's ServiceAccount, created in the kube
emulator as `helm install` would, whose projected token (the release namespace, audience vault) OpenBao checks
with the kube emulator's TokenReview."""

from __future__ import annotations

import json
import re
import shlex
import uuid
from pathlib import Path
from typing import Any

import hvac
import kubernetes_validate
import pytest
import requests
import yaml

from tests.conftest import run_job
from tests.emulators.platform import Platform
from tests.helm import service_tags
from tests.helm.chart import CHART, VALUE_KEYS, cronjob, env_of, pod_spec, template
from tests.helm.checkov import scan
from tests.helm.helm_binary import ROOT, run_helm

RELEASE = NAMESPACE = "coder-wi-jobs"  # what the README installs


def install_section() -> str:
    text = (ROOT / "README.md").read_text()
    match = re.search(r"^## Install\n(.*?)^## ", text, re.S | re.M)
    assert match, "README has no Install section"
    return match.group(1)


def fenced(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", install_section(), re.S)


def minimal_values(tmp_path: Path) -> Path:
    (block,) = fenced("yaml")
    path = tmp_path / "my-values.yaml"
    path.write_text(block)
    return path


def install_values(tmp_path: Path) -> list[str]:
    """`-f my-values.yaml -f netpol-values.json`, as the README's helm command installs it (the second file from
    docs/helm.md's service-tag command)."""
    (command,) = [line for line in "".join(fenced("sh")).splitlines() if line.startswith("helm upgrade --install")]
    assert "-f my-values.yaml -f netpol-values.json" in command
    try:
        netpol = service_tags.netpol_values(tmp_path)
    except service_tags.JqMissing as exc:  # never a skip
        pytest.fail(str(exc))
    return ["-f", str(minimal_values(tmp_path)), "-f", str(netpol)]


def test_the_minimal_values_alone_are_refused_naming_the_missing_addresses(home: Path, tmp_path: Path) -> None:
    """NetworkPolicy is on by default: without netpol-values.json the chart names what is missing."""
    error = run_helm("template", RELEASE, str(CHART), "-f", str(minimal_values(tmp_path)), home=home).stderr
    assert "networkPolicy.entraId (fic-reconcile, keyvault-sync)" in error
    assert "networkPolicy.apiServer" not in error  # the minimal file sets it


def test_minimal_values_enable_every_job_and_pass_lint_and_kubernetes_schemas(home: Path, tmp_path: Path) -> None:
    values = install_values(tmp_path)
    done = run_helm("lint", "--strict", str(CHART), *values, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    docs = template(home, *values, release=RELEASE, namespace=NAMESPACE)
    assert sorted(c["metadata"]["name"] for c in docs if c["kind"] == "CronJob") == sorted(
        f"{RELEASE}-{job}" for job in VALUE_KEYS
    )
    for doc in docs:
        for version in ("1.30.0", "1.37.0"):
            kubernetes_validate.validate(doc, version, strict=True)


def test_minimal_values_pass_checkov(home: Path, tmp_path: Path) -> None:
    docs = template(home, *install_values(tmp_path), release=RELEASE, namespace=NAMESPACE)
    assert len([d for d in docs if d["kind"] == "NetworkPolicy"]) == 4
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    report = scan(path, "kubernetes")
    assert report["results"]["failed_checks"] == []
    assert {c["check_id"] for c in report["results"]["skipped_checks"]} == {"CKV_K8S_38", "CKV_K8S_35"}


def test_every_value_the_readme_says_to_set_is_in_the_minimal_file(tmp_path: Path) -> None:
    values = yaml.safe_load(minimal_values(tmp_path).read_text())
    table = install_section().split("**Values you must set**", 1)[1].split("A minimal values file", 1)[0]
    for row in re.findall(r"^\| `([\w-]+)` \| (.*) \|$", table, re.M):
        job, needed = row
        block = values["jobs"][VALUE_KEYS[job]]
        for name in re.findall(r"`([\w.]+)`", needed):
            if name.startswith(("coder.", "vault.")):
                assert values[name.split(".")[0]][name.split(".")[1]], name
            elif name not in ("settings.allUsers", "AZURE_CLIENT_IDS_JSON", "AZURE_TENANT_ID", "token"):
                node: Any = block
                for part in name.split("."):
                    node = node[part]
                assert node, f"{job}: {name}"


# ---- Vault: the README's policies and roles, loaded into OpenBao -------------------------------------------------


def vault_commands() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """`vault policy write NAME - <<'EOF' ... EOF` and `vault write auth/kubernetes/role/NAME k=v ...`."""
    script = "".join(fenced("sh"))
    policies = dict(re.findall(r"vault policy write ([\w-]+) - <<'EOF'\n(.*?)\nEOF", script, re.S))
    roles = {}
    for line in script.splitlines():
        if line.startswith("vault write auth/kubernetes/role/"):
            words = shlex.split(line)
            roles[words[2].rsplit("/", 1)[1]] = dict(w.split("=", 1) for w in words[3:])
    return policies, roles


@pytest.fixture
def readme_vault(platform: Platform) -> dict[str, dict[str, str]]:
    """Replace the baseline policy and role with exactly what the README says (through OpenBao's API)."""
    policies, roles = vault_commands()
    assert set(policies) == {"coder-token-writer", "token-expiry-check"} and set(roles) == set(policies)
    root = hvac.Client(url=platform.vault.url, token=platform.vault.root_token, verify=str(platform.ca_path))
    for name, text in policies.items():
        root.sys.create_or_update_acl_policy(name=name, policy=text)
    for name, fields in roles.items():
        root.write(f"auth/kubernetes/role/{name}", **fields)
    return roles


def install_service_account(platform: Platform, docs: list[dict[str, Any]], job: str) -> None:
    """Create the chart's rendered ServiceAccount for `job` through the Kubernetes API, as `helm install` does:
    TokenReview only vouches for a token whose ServiceAccount exists (with the uid in the token)."""
    (account,) = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == f"{RELEASE}-{job}"]
    r = requests.post(
        f"{platform.kube.url}/api/v1/namespaces/{NAMESPACE}/serviceaccounts",
        json=account,
        headers={"Authorization": f"Bearer {platform.kube.token}"},
        verify=str(platform.ca_path),
        timeout=10,
    )
    assert r.status_code in (201, 409), r.text  # 409: the other job's run already installed it


def pod_jwt(platform: Platform, tmp_path: Path, job: str, audience: str) -> str:
    """The projected token the chart mounts: the chart's ServiceAccount, the release namespace, audience vault."""
    path = tmp_path / f"{job}.jwt"
    path.write_text(platform.service_account_jwt(NAMESPACE, f"{RELEASE}-{job}", audience=audience))
    return str(path)


def chart_vault_env(home: Path, tmp_path: Path, platform: Platform, env: dict[str, str], job: str) -> dict[str, str]:
    vault_check = ["--set", "jobs.tokenExpiryCheck.settings.vaultCheck=true"]
    docs = template(home, *install_values(tmp_path), *vault_check, release=RELEASE, namespace=NAMESPACE)
    install_service_account(platform, docs, job)
    cj = cronjob(docs, job, release=RELEASE)
    rendered = env_of(cj)
    (volume,) = [v for v in pod_spec(cj)["volumes"] if "projected" in v]
    audience = volume["projected"]["sources"][0]["serviceAccountToken"]["audience"]
    job_env = {k: v for k, v in env.items() if k != "VAULT_TOKEN"}  # Kubernetes auth, like the pod
    job_env["HOME"] = str(tmp_path)
    job_env["CWJ_VAULT_ROLE"] = rendered["CWJ_VAULT_ROLE"]["value"]
    job_env["CWJ_VAULT_AUTH_MOUNT"] = rendered["CWJ_VAULT_AUTH_MOUNT"]["value"]
    job_env["CWJ_KV_MOUNT"] = rendered["CWJ_KV_MOUNT"]["value"]
    job_env["CWJ_KV_PATH"] = rendered["CWJ_KV_PATH"]["value"]
    job_env["CWJ_VAULT_JWT_FILE"] = pod_jwt(platform, tmp_path, job, audience)
    return job_env


def test_readme_vault_setup_lets_both_jobs_work_and_nothing_more(
    readme_vault: dict[str, dict[str, str]], platform: Platform, env: dict[str, str], home: Path, tmp_path: Path
) -> None:
    assert readme_vault["coder-token-writer"]["audience"] == "vault"
    user = f"bot-{uuid.uuid4().hex[:8]}"  # a non-owner: Coder caps an owner's tokens at 168h
    bootstrap = Path(env["CWJ_BOOTSTRAP_TOKEN_FILE"]).read_text().strip()
    org = str(uuid.UUID(int=0))
    body = {"username": user, "email": f"{user}@coder.emulator.test", "login_type": "none", "organization_ids": [org]}
    requests.post(
        f"{env['CODER_URL']}/api/v2/users",
        json=body,
        headers={"Coder-Session-Token": bootstrap},
        verify=env["REQUESTS_CA_BUNDLE"],
        timeout=10,
    ).raise_for_status()

    mint_env = chart_vault_env(home, tmp_path, platform, env, "coder-token-mint")
    first = run_job("coder-token-mint", "--user", user, "--output", "json", env=mint_env)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_job("coder-token-mint", "--user", user, "--output", "json", env=mint_env)
    assert second.returncode == 0 and json.loads(second.stdout)["outcomes"] == []

    check_env = chart_vault_env(home, tmp_path, platform, env, "token-expiry-check")
    check = run_job("token-expiry-check", "--user", user, "--vault-check", "--output", "json", env=check_env)
    findings = {f["rule"] for f in json.loads(check.stdout)["findings"]}
    assert "vault-unreadable" not in findings and "vault-token-invalid" not in findings, check.stdout

    # The reader's role cannot write the entry, and a token for another ServiceAccount cannot log in.
    login = hvac.Client(url=platform.vault.url, verify=str(platform.ca_path))
    jwt = Path(check_env["CWJ_VAULT_JWT_FILE"]).read_text()
    login.auth.kubernetes.login(role="token-expiry-check", jwt=jwt)
    with pytest.raises(hvac.exceptions.Forbidden):
        login.secrets.kv.v2.create_or_update_secret(path="coder-cli-session-token", secret={"token": "x"})
    with pytest.raises(hvac.exceptions.Forbidden, match="service account name not authorized"):
        login.auth.kubernetes.login(role="coder-token-writer", jwt=jwt)
