"""The names the docs tell an SRE to type match what the chart renders and what the code uses: Vault roles and the
ServiceAccounts they bind, Workload Identity subjects, the Azure roles per identity, the Kubernetes RBAC, and the
tier-0 list. Rendered as README's Install renders it (release and namespace coder-wi-jobs). A doc that binds a
role to another ServiceAccount name than the chart creates fails here, not at the first login."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from jobs.keyvault_sync.roles import SEED_SECRET_ROLE, SEED_VAULT_ROLE, TARGET_VAULT_ROLE
from tests.helm.chart import CHART, VALUE_KEYS, kinds, pod_spec, template
from tests.helm.helm_binary import ROOT
from tests.helm.test_install_docs import NAMESPACE, RELEASE, install_values

README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
VALUES_FILE = CHART / "values.yaml"
DEFAULTS = yaml.safe_load(VALUES_FILE.read_text())
AZURE_JOBS = ("fic-reconcile", "keyvault-sync")


@pytest.fixture(scope="module")
def rendered(home: Path, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    vault_check = ["--set", "jobs.tokenExpiryCheck.settings.vaultCheck=true"]
    values = install_values(tmp_path_factory.mktemp("install"))
    return template(home, *values, *vault_check, release=RELEASE, namespace=NAMESPACE)


def service_accounts(docs: list[dict[str, Any]]) -> dict[str, str]:
    """job -> the ServiceAccount its pods run as."""
    return {
        cj["metadata"]["labels"]["app.kubernetes.io/component"]: pod_spec(cj)["serviceAccountName"]
        for cj in kinds(docs, "CronJob")
    }


def shell_commands(text: str) -> list[str]:
    """Every line of every ```sh block, with backslash continuations joined."""
    joined = "".join(re.findall(r"```sh\n(.*?)```", text, re.S)).replace("\\\n", " ")
    return [" ".join(line.split()) for line in joined.splitlines() if line.strip()]


# ---- Vault: role names and the ServiceAccounts they bind ---------------------------------------------------------


def vault_bindings() -> list[tuple[str, str, dict[str, str]]]:
    found = []
    for doc in DOCS:
        for line in shell_commands(doc.read_text()):
            if line.startswith("vault write auth/kubernetes/role/"):
                words = shlex.split(line)
                fields = dict(w.split("=", 1) for w in words[3:] if "=" in w)
                found.append((doc.name, words[2].rsplit("/", 1)[1], fields))
    return found


def test_every_vault_role_in_the_docs_binds_the_charts_service_account(rendered: list[dict[str, Any]]) -> None:
    roles = {DEFAULTS["jobs"][VALUE_KEYS[job]]["settings"]["vaultRole"]: job for job in VALUE_KEYS
             if "vaultRole" in DEFAULTS["jobs"][VALUE_KEYS[job]]["settings"]}  # fmt: skip
    assert roles == {"coder-token-writer": "coder-token-mint", "token-expiry-check": "token-expiry-check"}
    accounts = service_accounts(rendered)
    bindings = vault_bindings()
    assert {(doc, role) for doc, role, _ in bindings} >= {
        ("README.md", "coder-token-writer"),
        ("README.md", "token-expiry-check"),
        ("coder-token-mint.md", "coder-token-writer"),
    }
    for doc, role, fields in bindings:
        assert role in roles, f"{doc}: Vault role {role!r} is no job's vaultRole default"
        job = roles[role]
        assert fields["bound_service_account_names"] == accounts[job], f"{doc}: {role}"
        assert fields["bound_service_account_namespaces"] == NAMESPACE, f"{doc}: {role}"
        assert fields["audience"] == DEFAULTS["vault"]["audience"], f"{doc}: {role}"
    for job in ("coder-token-mint", "token-expiry-check"):  # and the pods really log in with that role
        (cj,) = [c for c in kinds(rendered, "CronJob") if c["metadata"]["labels"]["app.kubernetes.io/component"] == job]
        env = {e["name"]: e.get("value") for e in pod_spec(cj)["containers"][0]["env"]}
        assert roles[env["CWJ_VAULT_ROLE"]] == job


# ---- Workload Identity subjects and the tier-0 list ----------------------------------------------------------


def test_federated_credential_subjects_in_the_docs_are_the_charts(rendered: list[dict[str, Any]]) -> None:
    accounts = service_accounts(rendered)
    subjects = {f"system:serviceaccount:{NAMESPACE}:{accounts[job]}" for job in AZURE_JOBS}
    seen = set()
    for doc in DOCS:
        for subject in re.findall(r"system:serviceaccount:[\w<>.-]+:[\w<>.-]+", doc.read_text()):
            ns, name = subject.split(":")[2:]
            if name in ("<service-account>", "workspace"):
                continue  # a workspace's own ServiceAccount (docs/fic-reconcile.md), not the chart's
            expanded = {name.replace("<job>", job).replace("<release>", RELEASE) for job in AZURE_JOBS}
            candidates = {f"system:serviceaccount:{ns}:{n}" for n in expanded}
            assert candidates & subjects, f"{doc.name}: {subject} is not a subject of the chart's Azure jobs"
            seen |= candidates & subjects
    assert seen == subjects  # both identities' subjects are documented


def tier0_section() -> str:
    text = README.read_text()
    return text.split("## Tier 0", 1)[1].split("\n## ", 1)[0]


def test_the_tier_0_list_names_the_charts_service_accounts_and_secrets(rendered: list[dict[str, Any]]) -> None:
    section = tier0_section()
    table = set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))
    assert table == set(service_accounts(rendered).values())
    assert table == {sa["metadata"]["name"] for sa in kinds(rendered, "ServiceAccount")}
    secrets = {
        v["secret"]["secretName"] for cj in kinds(rendered, "CronJob") for v in pod_spec(cj)["volumes"] if "secret" in v
    } | {
        e["valueFrom"]["secretKeyRef"]["name"]
        for cj in kinds(rendered, "CronJob")
        for e in pod_spec(cj)["containers"][0]["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secrets and all(f"`{name}`" in section for name in secrets), secrets
    for needle in ("`pods`", "`jobs`", "`cronjobs`", "--subresource=token", "`serviceaccounts/token`", "`secrets`"):
        assert needle in section


# ---- Azure roles: one name per grant, the same in README, docs, values.yaml and the code -------------------------


def custom_fic_role() -> str:
    (block,) = [b for b in re.findall(r"```json\n(.*?)```", README.read_text(), re.S) if "federatedIdentity" in b]
    name: str = json.loads(block)["Name"]
    return name


def azure_role_mentions(text: str) -> set[str]:
    text = " ".join(text.split())  # a role name broken across lines is still that role
    return set(re.findall(r"Key Vault (?:[A-Z][a-z]+ ?){1,3}(?<! )|Managed Identity [A-Z][a-z]+", text)) | (
        {custom_fic_role()} if custom_fic_role() in text else set()
    )


def test_the_readme_roles_table_is_what_the_code_and_the_role_command_use() -> None:
    pattern = r"^\| (fic-reconcile|keyvault-sync) \| \*\*([^*]+)\*\*[^|]* \| ([^|]+?) \|"
    rows = re.findall(pattern, README.read_text(), re.M)
    assert rows == [
        ("fic-reconcile", custom_fic_role(), "the resource group that holds only the pool identities"),
        ("keyvault-sync", SEED_VAULT_ROLE, "the seed vault"),
        ("keyvault-sync", SEED_SECRET_ROLE, "each allowlisted seed secret: `<seed vault id>/secrets/<name>`"),
        ("keyvault-sync", TARGET_VAULT_ROLE, "the cluster vault only"),
    ]
    az = [shlex.split(c) for c in shell_commands(README.read_text()) if c.startswith("az role assignment create")]
    assert {dict(zip(w[4::2], w[5::2], strict=False))["--role"] for w in az} == {custom_fic_role(), TARGET_VAULT_ROLE}


def test_the_readme_role_command_runs_and_prints_the_seed_rows(tmp_path: Path) -> None:
    (command,) = [c for c in shell_commands(README.read_text()) if "jobs.keyvault_sync.role_assignments" in c]
    words = shlex.split(
        command.split("#")[0].replace("<seed vault id>", "SEED").replace("<keyvault-sync principal id>", "PRINCIPAL")
    )
    assert words[:3] == ["python", "-m", "jobs.keyvault_sync.role_assignments"]
    vault = "/subscriptions/3e9c4f5d-6a7b-4c8d-9e9f-0a1b2c3d4e5f/resourceGroups/rg"
    vault += "/providers/Microsoft.KeyVault/vaults/kv-seed"
    values = install_values(tmp_path)[1]  # README's my-values.yaml
    args = [
        {"my-values.yaml": values, "SEED": vault, "PRINCIPAL": "0f1e2d3c-4b5a-4968-8776-655443322110"}.get(w, w)
        for w in words[3:]
    ]
    done = subprocess.run(
        [sys.executable, "-m", words[2], *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    printed = [shlex.split(line) for line in done.stdout.splitlines()]
    allowlist = yaml.safe_load(Path(values).read_text())["jobs"]["keyvaultSync"]["settings"]["allowlist"]
    assert [(w[w.index("--role") + 1], w[w.index("--scope") + 1]) for w in printed] == [
        (SEED_VAULT_ROLE, vault),
        *[(SEED_SECRET_ROLE, f"{vault}/secrets/{name}") for name in allowlist],
    ]


def test_no_doc_names_an_azure_role_the_code_and_readme_do_not_grant() -> None:
    granted = {custom_fic_role(), SEED_VAULT_ROLE, SEED_SECRET_ROLE, TARGET_VAULT_ROLE}
    for path in [*DOCS, VALUES_FILE]:
        text = path.read_text()
        extra = azure_role_mentions(text) - granted
        # the one role named only to say why it is not used: "not (the built-in) Managed Identity Contributor"
        flat = " ".join(text.split())
        for found in re.finditer("Managed Identity Contributor", flat):
            before = flat[max(0, found.start() - 40) : found.start()]
            assert re.search(r"\b(Not|not)\b", before), f"{path.name}: ...{before}{found[0]}"
        assert extra <= {"Managed Identity Contributor"}, f"{path.name} names {extra}"
    values_comments = VALUES_FILE.read_text()
    assert custom_fic_role() in values_comments and f"{SEED_SECRET_ROLE} on each allowlisted" in values_comments


# ---- Kubernetes RBAC as docs/helm.md and docs/fic-reconcile.md describe it ---------------------------------------


def test_the_rbac_the_docs_describe_is_the_rbac_the_chart_renders(rendered: list[dict[str, Any]]) -> None:
    (cluster_role,) = kinds(rendered, "ClusterRole")
    (role,) = kinds(rendered, "Role")
    helm_row = next(
        line for line in (ROOT / "docs" / "helm.md").read_text().splitlines() if line.startswith("| `fic-reconcile` |")
    )
    fic_doc = (ROOT / "docs" / "fic-reconcile.md").read_text().split("**Kubernetes RBAC**", 1)[1].split("\n\n", 1)[0]
    for text in (helm_row, fic_doc):
        named = set(re.findall(r"`([\w.-]+)`", text))
        for rule in cluster_role["rules"] + role["rules"]:
            assert set(rule["resources"]) <= named and set(rule["verbs"]) <= named, (text, rule)
        resources = {"namespaces", "serviceaccounts", "configmaps", "secrets", "pods", "jobs", "cronjobs"}
        assert named & resources == {r for rule in cluster_role["rules"] + role["rules"] for r in rule["resources"]}
