"""The Helm chart (helm/coder-wi-jobs), rendered by the real helm binary and checked three ways: against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict), against the security and scheduling rules an SRE
relies on, and against the code itself: every env var a CronJob sets must be one its job reads (collected
from the job's settings dataclass), and the rendered env plus mounted files must configure the job without
a configuration error. So the chart cannot drift from the code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from lib.auth_choice import decide_azure_auth
from lib.settings import REQUIRED, ConfigError, RunOptions, resolve, specs
from tests.helm.chart import (
    CHART,
    FULL,
    VALUE_KEYS,
    container,
    cronjob,
    env_of,
    kinds,
    pod_spec,
    template,
    template_error,
)
from tests.helm.helm_binary import ROOT, run_helm

# Read by the SDKs or the libraries rather than by a settings dataclass (DESIGN.md, "Flags and env vars").
ECOSYSTEM_ENV = {
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "VAULT_TOKEN",
    "KUBECONFIG",
    "REQUESTS_CA_BUNDLE",
    "HTTPS_PROXY",
    "HTTP_PROXY",
    "NO_PROXY",
}
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]


def settings_class(job: str) -> type[Any]:
    """command -> console script -> module -> SPEC.settings: the same path the container takes."""
    module_name, _, func = SCRIPTS[job].partition(":")
    module = importlib.import_module(module_name)
    assert func == "main" and module.SPEC.name == job
    settings: type[Any] = module.SPEC.settings
    return settings


# ---- helm itself ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("values", [[], ["-f", str(FULL)]], ids=["defaults", "full-example"])
def test_lint_strict_is_clean(home: Path, values: list[str]) -> None:
    done = run_helm("lint", "--strict", str(CHART), *values, home=home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def test_default_values_enable_nothing(home: Path) -> None:
    """Every job needs site-specific settings, so none is on until its values are given."""
    assert template(home) == []


def test_every_container_runs_the_image_by_digest(full: list[dict[str, Any]]) -> None:
    digest = yaml.safe_load(FULL.read_text())["image"]["digest"]
    images = {c["image"] for cj in kinds(full, "CronJob") for c in pod_spec(cj)["containers"]}
    assert images == {f"myregistry.azurecr.io/coder-wi-jobs@{digest}"}


def test_a_release_without_jobs_needs_no_image(home: Path) -> None:
    """image.digest is required once a job is on (schema), not for a dashboard-only release."""
    docs = template(home, "--set", "dashboard.enabled=true")
    assert [d["kind"] for d in docs] == ["ConfigMap"]


def test_full_example_renders_every_object(full: list[dict[str, Any]]) -> None:
    names = sorted((d["kind"], d["metadata"]["name"]) for d in full)
    expected = [("CronJob", f"rel-{j}") for j in VALUE_KEYS] + [("ServiceAccount", f"rel-{j}") for j in VALUE_KEYS]
    expected += [("ConfigMap", "rel-keyvault-sync"), ("ConfigMap", "rel-token-expiry-check")]
    expected += [("ClusterRole", "rel-fic-reconcile-jobs"), ("ClusterRoleBinding", "rel-fic-reconcile-jobs")]
    expected += [("Role", "rel-fic-reconcile-record"), ("RoleBinding", "rel-fic-reconcile-record")]
    expected += [("NetworkPolicy", f"rel-{j}") for j in VALUE_KEYS] + [("PrometheusRule", "rel-coder-wi-jobs")]
    expected += [("ConfigMap", "rel-coder-wi-jobs-dashboard")]  # the Grafana dashboard (test_dashboard.py)
    assert names == sorted(expected)


POOL = [
    "0b6f1c2a-3d4e-4f5a-8b6c-7d8e9f0a1b2c",
    "1c7a2d3b-4e5f-4a6b-9c7d-8e9f0a1b2c3d",
    "2d8b3e4c-5f6a-4b7c-8d8e-9f0a1b2c3d4e",
]
AKS_CLUSTER_ID = (
    "/subscriptions/3e9c4f5d-6a7b-4c8d-9e9f-0a1b2c3d4e5f/resourcegroups/rg-aks"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-1"
)
VARIANTS = {
    "full": [],
    "pool-in-values-no-netpol-no-alerts": [
        "--set-json",
        f"jobs.ficReconcile.settings.clientIds={json.dumps(POOL)}",
        "--set",
        "networkPolicy.enabled=false,prometheusRule.enabled=false",
    ],
    "all-users-no-vault-check": [
        "--set",
        "jobs.tokenExpiryCheck.settings.allUsers=true,jobs.tokenExpiryCheck.settings.vaultCheck=false",
        "--set-json",
        "jobs.tokenExpiryCheck.settings.users=[]",
    ],
    "no-pushgateway-api-server-by-peer": [
        "--set",
        "pushgatewayUrl=",
        "--set-json",
        'networkPolicy.apiServer={"cidrs": [], "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}',
    ],
    "fic-probe": ["--set", "jobs.ficReconcile.probe.enabled=true"],
    # issue 20: the identity-binding modes, with the pool in values (RBAC narrowed to its names) and from the Secret
    "identity-binding-pool-in-values": [
        "--set-json",
        f"jobs.ficReconcile.settings.clientIds={json.dumps(POOL)}",
        "--set",
        "jobs.ficReconcile.mode=identity-binding,jobs.ficReconcile.aksClusterId=" + AKS_CLUSTER_ID,
    ],
    "both-pool-from-secret": [
        "--set",
        "jobs.ficReconcile.mode=both,jobs.ficReconcile.aksClusterId=" + AKS_CLUSTER_ID,
    ],
}


# Custom resources have no schema in kubernetes-validate; test_prometheus_rule checks that one's shape.
CUSTOM_KINDS = {"PrometheusRule"}


@pytest.mark.parametrize("version", ["1.30.0", "1.37.0"])
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_every_document_is_valid_kubernetes(home: Path, variant: str, version: str) -> None:
    docs = template(home, "-f", str(FULL), *VARIANTS[variant])
    assert len([d for d in docs if d["kind"] not in CUSTOM_KINDS]) >= 12
    for doc in docs:
        if doc["kind"] not in CUSTOM_KINDS:
            kubernetes_validate.validate(doc, version, strict=True)


# ---- values.schema.json --------------------------------------------------------------------------------------

BAD_VALUES = {
    "cron-with-seconds-field": (["--set", "jobs.ficReconcile.schedule=0 7 * * * *"], "/jobs/ficReconcile/schedule"),
    "cron-four-fields": (["--set", "jobs.keyvaultSync.schedule=*/5 * * *"], "/jobs/keyvaultSync/schedule"),
    "coder-url-http": (["--set", "coder.url=http://coder.example.com"], "/coder/url"),
    # Pushgateway and Vault too (issue 21): the chart has no http override; that is for loopback tests only.
    "pushgateway-url-http": (["--set", "pushgatewayUrl=http://pushgateway.monitoring.svc:9091"], "/pushgatewayUrl"),
    "vault-addr-http": (["--set", "vault.addr=http://vault.vault.svc:8200"], "/vault/addr"),
    "known-issuer-http": (
        ["--set-json", 'jobs.ficReconcile.settings.knownIssuers=["http://issuer.example/"]'],
        "/jobs/ficReconcile/settings/knownIssuers/0",
    ),
    "known-issuer-with-comma": (  # the chart joins them with commas into CWJ_KNOWN_ISSUERS
        ["--set-json", 'jobs.ficReconcile.settings.knownIssuers=["https://a.example/x,y/"]'],
        "/jobs/ficReconcile/settings/knownIssuers/0",
    ),
    "vault-url-http": (
        ["--set", "jobs.keyvaultSync.settings.sourceVaultUrl=http://kv.vault.azure.net"],
        "/jobs/keyvaultSync/settings/sourceVaultUrl",
    ),
    "duplicate-pool-ids": (
        ["--set-json", f"jobs.ficReconcile.settings.clientIds={json.dumps([POOL[0], POOL[0]])}"],
        "/jobs/ficReconcile/settings/clientIds",
    ),
    "pool-not-uuid": (
        ["--set-json", 'jobs.ficReconcile.settings.clientIds=["identity-1"]'],
        "/jobs/ficReconcile/settings/clientIds/0",
    ),
    "unknown-fail-on": (
        ["--set", "jobs.tokenExpiryCheck.settings.failOn=sometimes"],
        "/jobs/tokenExpiryCheck/settings/failOn",
    ),
    "unknown-pull-policy": (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
    # by digest only: no tag value, no empty digest once a job is on, nothing but sha256:<64 hex>
    "image-tag-instead-of-digest": (["--set", "image.tag=1.2.3"], "additional properties 'tag' not allowed"),
    "image-without-digest": (["--set", "image.digest="], "/image/digest"),
    "image-digest-not-sha256": (["--set", "image.digest=latest"], "/image/digest"),
    "image-digest-short": (["--set", "image.digest=sha256:0123abcd"], "/image/digest"),
    "token-in-values": (["--set", "jobs.coderTokenMint.bootstrapToken=abc"], "/jobs/coderTokenMint"),
    # issue 16: the default target is the bootstrap token's own Owner account, which the job refuses
    "mint-without-user": (["--set", "jobs.coderTokenMint.settings.user="], "/jobs/coderTokenMint/settings/user"),
    "misspelled-setting": (["--set", "jobs.ficReconcile.settings.maxDelete=5"], "/jobs/ficReconcile/settings"),
    "enabled-without-pool": (
        [
            "--set",
            "jobs.ficReconcile.enabled=true,jobs.ficReconcile.settings.issuer=https://issuer.example/",
            "--set",
            "jobs.ficReconcile.poolSecret.name=",
        ],
        "/jobs/ficReconcile/poolSecret/name",
    ),
    "unknown-top-level-key": (["--set", "replicas=2"], "'replicas' not allowed"),
    # a mistyped host would be handed a token that can write FICs (issue 21); the chart has no custom override
    "arm-endpoint-not-a-cloud": (
        ["--set", "jobs.ficReconcile.settings.armEndpoint=https://management.azure.co"],
        "/jobs/ficReconcile/settings/armEndpoint",
    ),
    "schedule-not-a-string": (["--set-json", "jobs.ficReconcile.schedule=5"], "/jobs/ficReconcile/schedule"),
    "netpol-empty-dns-peers": (["--set-json", "networkPolicy.dns.to=[]"], "/networkPolicy/dns/to"),
    "netpol-azure-anywhere": (
        ["--set-json", 'networkPolicy.entraId.cidrs=["0.0.0.0/0"]'],
        "/networkPolicy/entraId/cidrs/0",
    ),
    "netpol-webhook-anywhere-v6": (
        ["--set-json", 'networkPolicy.webhook.cidrs=["::/0"]'],
        "/networkPolicy/webhook/cidrs/0",
    ),
    "netpol-azure-half-internet": (
        ["--set-json", 'networkPolicy.azureKeyVault.cidrs=["128.0.0.0/1"]'],
        "/networkPolicy/azureKeyVault/cidrs/0",
    ),
    "netpol-not-a-cidr": (
        ["--set-json", 'networkPolicy.apiServer.cidrs=["api.example"]'],
        "/networkPolicy/apiServer/cidrs/0",
    ),
    # Azure and webhook destinations are addresses only: no namespace or pod selector can stand for them
    "netpol-azure-by-peer": (
        ["--set-json", 'networkPolicy.entraId.to=[{"namespaceSelector": {}}]'],
        "additional properties 'to' not allowed",
    ),
    "netpol-old-azure-key": (["--set-json", "networkPolicy.azure.to=[]"], "additional properties 'azure' not allowed"),
    "alert-window-too-short": (
        ["--set", "prometheusRule.jobFailed.windowSeconds=5"],
        "/prometheusRule/jobFailed/windowSeconds",
    ),
    "kv-sync-enabled-without-vaults": (
        ["--set", "jobs.keyvaultSync.enabled=true,jobs.keyvaultSync.workloadIdentity.clientId=x"],
        "/jobs/keyvaultSync/settings",
    ),
    "retries-over-limit": (["--set", "jobDefaults.backoffLimit=10"], "/jobDefaults/backoffLimit"),
    "probe-without-time": (["--set", "jobs.ficReconcile.probe.seconds=0"], "/jobs/ficReconcile/probe/seconds"),
    "probe-sample-of-none": (
        ["--set", "jobs.ficReconcile.probe.maxNamespaces=0"],
        "/jobs/ficReconcile/probe/maxNamespaces",
    ),
    "probe-unknown-key": (["--set", "jobs.ficReconcile.probe.audience=x"], "'audience' not allowed"),
    # shorter than the job-failed alert's 6 h window: the failed Job would vanish before the alert sees it
    "ttl-under-alert-window": (
        ["--set", "jobDefaults.ttlSecondsAfterFinished=60"],
        "/jobDefaults/ttlSecondsAfterFinished",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_schema_rejects_bad_values(home: Path, case: str) -> None:
    args, where = BAD_VALUES[case]
    base = [] if case in ("enabled-without-pool", "kv-sync-enabled-without-vaults") else ["-f", str(FULL)]
    error = template_error(home, *base, *args)
    assert "values don't meet the specifications of the schema" in error
    assert (f"at '{where}'" if where.startswith("/") else where) in error, error


@pytest.mark.parametrize("schedule", ["@daily", "0 7 * * MON-FRI", "*/5 * * * *", "0 0 1,15 * ?"])
def test_schema_accepts_valid_schedules(home: Path, schedule: str) -> None:
    docs = template(home, "-f", str(FULL), "--set-json", f"jobs.keyvaultSync.schedule={json.dumps(schedule)}")
    assert cronjob(docs, "keyvault-sync")["spec"]["schedule"] == schedule


def test_users_and_all_users_are_exclusive(home: Path) -> None:
    error = template_error(home, "-f", str(FULL), "--set", "jobs.tokenExpiryCheck.settings.allUsers=true")
    assert "users (CWJ_USER) or allUsers: true (CWJ_ALL_USERS)" in error


def test_overlong_names_are_refused(home: Path) -> None:
    error = template_error(home, "-f", str(FULL), "--set", "fullnameOverride=" + "a" * 36)
    assert "CronJob names must be at most 52" in error


# ---- what every CronJob must be ------------------------------------------------------------------------------


@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_cronjob_runs_safely(full: list[dict[str, Any]], job: str) -> None:
    cj = cronjob(full, job)
    spec, job_spec, pod = cj["spec"], cj["spec"]["jobTemplate"]["spec"], pod_spec(cj)
    assert spec["concurrencyPolicy"] == "Forbid"
    assert spec["startingDeadlineSeconds"] > 0 and job_spec["activeDeadlineSeconds"] > 0
    assert job_spec["backoffLimit"] == 0
    assert job_spec["ttlSecondsAfterFinished"] >= 6 * 3600  # manual runs are cleaned up too, not only by history
    assert {"action": "FailJob", "onExitCodes": {"containerName": "job", "operator": "In", "values": [2, 3]}} in (
        job_spec["podFailurePolicy"]["rules"]
    )
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "fsGroup": 10001,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 10001
        assert sc["allowPrivilegeEscalation"] is False and sc["privileged"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]
    assert not any(k in pod for k in ("hostNetwork", "hostPID", "hostIPC"))
    assert not any("hostPath" in v for v in pod["volumes"])


@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_command_is_the_jobs_console_script(full: list[dict[str, Any]], job: str) -> None:
    assert container(cronjob(full, job))["command"] == [job]
    assert job in SCRIPTS


def test_kubernetes_api_token_and_rbac_only_for_fic_reconcile(full: list[dict[str, Any]]) -> None:
    automount = {j: pod_spec(cronjob(full, j))["automountServiceAccountToken"] for j in VALUE_KEYS}
    assert automount == {j: j == "fic-reconcile" for j in VALUE_KEYS}
    assert all(sa["automountServiceAccountToken"] is False for sa in kinds(full, "ServiceAccount"))
    (role,) = kinds(full, "ClusterRole")
    read_only = [{"apiGroups": [""], "resources": ["namespaces", "serviceaccounts"], "verbs": ["get", "list"]}]
    assert role["rules"] == read_only  # cluster-wide: reads only
    (binding,) = kinds(full, "ClusterRoleBinding")
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    subjects = [{"kind": "ServiceAccount", "name": "rel-fic-reconcile", "namespace": "jobs"}]
    assert binding["subjects"] == subjects
    (record,) = kinds(full, "Role")  # the one write: the relocation record in the release namespace
    assert record["metadata"]["namespace"] == "jobs"
    assert record["rules"] == [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["coder-wi-jobs-fic-relocations"],
         "verbs": ["get", "update"]},
    ]  # fmt: skip
    (record_binding,) = kinds(full, "RoleBinding")
    assert record_binding["roleRef"]["name"] == record["metadata"]["name"] and record_binding["subjects"] == subjects
    env = {e["name"]: e for e in pod_spec(cronjob(full, "fic-reconcile"))["containers"][0]["env"]}
    assert env["CWJ_STATE_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_workload_identity_only_for_the_azure_jobs(full: list[dict[str, Any]]) -> None:
    values = yaml.safe_load(FULL.read_text())["jobs"]
    for job, key in VALUE_KEYS.items():
        labels = cronjob(full, job)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        (sa,) = [s for s in kinds(full, "ServiceAccount") if s["metadata"]["name"] == f"rel-{job}"]
        client_id = sa["metadata"].get("annotations", {}).get("azure.workload.identity/client-id")
        if job in ("fic-reconcile", "keyvault-sync"):
            assert labels["azure.workload.identity/use"] == "true"
            assert client_id == values[key]["workloadIdentity"]["clientId"]
        else:
            assert "azure.workload.identity/use" not in labels and client_id is None


@pytest.mark.parametrize("job", ["coder-token-mint", "token-expiry-check"])
def test_vault_login_uses_a_projected_token_for_vault(full: list[dict[str, Any]], job: str) -> None:
    cj = cronjob(full, job)
    assert env_of(cj)["CWJ_VAULT_AUTH"]["value"] == "kubernetes"  # never a token file an image might carry
    assert env_of(cj)["CWJ_VAULT_AUTH_MOUNT"]["value"] == "kubernetes"
    jwt_file = Path(env_of(cj)["CWJ_VAULT_JWT_FILE"]["value"])
    (mount,) = [m for m in container(cj)["volumeMounts"] if m["mountPath"] == str(jwt_file.parent)]
    (volume,) = [v for v in pod_spec(cj)["volumes"] if v["name"] == mount["name"]]
    (source,) = volume["projected"]["sources"]
    assert source["serviceAccountToken"]["audience"] == "vault"
    assert source["serviceAccountToken"]["path"] == jwt_file.name
    assert pod_spec(cj)["automountServiceAccountToken"] is False


def test_vault_audience_is_configurable(home: Path) -> None:
    docs = template(home, "-f", str(FULL), "--set", "vault.audience=https://vault.example.com")
    for job in ("coder-token-mint", "token-expiry-check"):
        (volume,) = [v for v in pod_spec(cronjob(docs, job))["volumes"] if "projected" in v]
        assert volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "https://vault.example.com"


def test_bootstrap_token_is_a_read_only_file_from_the_named_secret(full: list[dict[str, Any]]) -> None:
    cj = cronjob(full, "coder-token-mint")
    path = Path(env_of(cj)["CWJ_BOOTSTRAP_TOKEN_FILE"]["value"])
    (mount,) = [m for m in container(cj)["volumeMounts"] if m["mountPath"] == str(path.parent)]
    (volume,) = [v for v in pod_spec(cj)["volumes"] if v["name"] == mount["name"]]
    assert mount["readOnly"] is True
    assert volume["secret"] == {
        "secretName": "coder-bootstrap-token",
        "defaultMode": 0o440,
        "items": [{"key": "token", "path": path.name}],
    }
    # the bootstrap token never travels in an env var; the only secret env is the webhook URL (a credential too)
    secret_env = [n for n, e in env_of(cj).items() if "secretKeyRef" in e.get("valueFrom", {})]
    assert secret_env == ["CWJ_WEBHOOK_URL"]


def test_tmp_is_the_only_writable_path(full: list[dict[str, Any]]) -> None:
    for cj in kinds(full, "CronJob"):
        writable = [m["mountPath"] for m in container(cj)["volumeMounts"] if not m.get("readOnly")]
        assert writable == ["/tmp"]
        (tmp,) = [v for v in pod_spec(cj)["volumes"] if v["name"] == "tmp"]
        assert tmp == {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


def test_pool_comes_from_the_shared_secret_by_default(full: list[dict[str, Any]]) -> None:
    env = env_of(cronjob(full, "fic-reconcile"))
    for name in ("AZURE_CLIENT_IDS_JSON", "AZURE_TENANT_ID"):
        assert env[name]["valueFrom"] == {"secretKeyRef": {"name": "coder-workspaces-azure-wi", "key": name}}


def test_known_issuers_reach_the_job_comma_separated_and_none_by_default(
    home: Path, full: list[dict[str, Any]]
) -> None:
    env = env_of(cronjob(full, "fic-reconcile"))
    assert env["CWJ_KNOWN_ISSUERS"]["value"].startswith("https://westeurope.oic.prod-aks.azure.com/")
    two = ["https://a.example/x/", "https://token.actions.githubusercontent.com"]
    docs = template(home, "-f", str(FULL), "--set-json", f"jobs.ficReconcile.settings.knownIssuers={json.dumps(two)}")
    assert env_of(cronjob(docs, "fic-reconcile"))["CWJ_KNOWN_ISSUERS"]["value"] == ",".join(two)
    docs = template(home, "-f", str(FULL), "--set-json", "jobs.ficReconcile.settings.knownIssuers=[]")
    assert "CWJ_KNOWN_ISSUERS" not in env_of(cronjob(docs, "fic-reconcile"))


def test_no_vault_check_means_no_vault_token(home: Path) -> None:
    docs = template(home, "-f", str(FULL), "--set", "jobs.tokenExpiryCheck.settings.vaultCheck=false")
    cj = cronjob(docs, "token-expiry-check")
    assert not any("projected" in v for v in pod_spec(cj)["volumes"])
    assert not {"VAULT_ADDR", "CWJ_VAULT_JWT_FILE", "CWJ_VAULT_CHECK"} & set(env_of(cj))


def test_secrets_are_referenced_by_name_only(full: list[dict[str, Any]]) -> None:
    assert not kinds(full, "Secret")
    secret_env = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for cj in kinds(full, "CronJob")
        for e in container(cj)["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert secret_env == {"coder-workspaces-azure-wi", "token-alerts-webhook"}
    secret_volumes = {
        v["secret"]["secretName"] for cj in kinds(full, "CronJob") for v in pod_spec(cj)["volumes"] if "secret" in v
    }
    assert secret_volumes == {"coder-bootstrap-token", "coder-expiry-check-token"}
    for job in ("token-expiry-check", "coder-token-mint"):  # the mint posts a --compromised run's outcome
        assert env_of(cronjob(full, job))["CWJ_WEBHOOK_URL"] == {
            "name": "CWJ_WEBHOOK_URL",
            "valueFrom": {"secretKeyRef": {"name": "token-alerts-webhook", "key": "url"}},
        }
    for cj in kinds(full, "CronJob"):
        assert "VAULT_TOKEN" not in env_of(cj)


@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_a_disabled_job_renders_nothing(home: Path, job: str) -> None:
    docs = template(home, "-f", str(FULL), "--set", f"jobs.{VALUE_KEYS[job]}.enabled=false")
    assert [d for d in docs if job in d["metadata"]["name"]] == []
    assert len(kinds(docs, "CronJob")) == 3 and len(kinds(docs, "NetworkPolicy")) == 3
    (rule,) = kinds(docs, "PrometheusRule")
    assert f"rel-{job}" not in json.dumps(rule)


def test_configmap_change_changes_only_its_jobs_checksum(home: Path, full: list[dict[str, Any]]) -> None:
    changed = template(home, "-f", str(FULL), "--set-json", 'jobs.keyvaultSync.settings.allowlist=["other-secret"]')

    def checksum(docs: list[dict[str, Any]], job: str) -> str:
        return str(
            cronjob(docs, job)["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        )

    assert checksum(changed, "keyvault-sync") != checksum(full, "keyvault-sync")
    assert checksum(changed, "token-expiry-check") == checksum(full, "token-expiry-check")


def test_dry_run_default_and_a_jobs_own_false_override(home: Path) -> None:
    docs = template(home, "-f", str(FULL), "--set", "jobDefaults.dryRun=true,jobs.ficReconcile.dryRun=false")
    dry = {j: env_of(cronjob(docs, j))["CWJ_DRY_RUN"]["value"] for j in VALUE_KEYS}
    assert dry == {j: "false" if j == "fic-reconcile" else "true" for j in VALUE_KEYS}


# ---- the chart against the code ------------------------------------------------------------------------------


@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_env_names_are_ones_the_job_reads(full: list[dict[str, Any]], job: str) -> None:
    cls = settings_class(job)
    read = {spec.env for cls_ in (RunOptions, cls) for _, spec in specs(cls_)}
    names = [e["name"] for e in container(cronjob(full, job))["env"]]
    assert len(names) == len(set(names)), f"duplicate env vars in {job}: {names}"
    assert set(names) - read - ECOSYSTEM_ENV == set()
    required = {spec.env for _, spec in specs(cls) if spec.default is REQUIRED}
    assert required - set(names) == set(), f"{job} misses required settings"


# What the existing Secrets the chart references would hold (their content is not the chart's).
SECRET_DATA = {
    "coder-workspaces-azure-wi": {"AZURE_CLIENT_IDS_JSON": json.dumps(POOL), "AZURE_TENANT_ID": POOL[0]},
    "token-alerts-webhook": {"url": "https://hooks.example.invalid/from-a-secret"},
}


def materialize(cj: dict[str, Any], docs: list[dict[str, Any]], root: Path) -> dict[str, str]:
    """The container's environment with every mounted file written under `root`, the way the kubelet would:
    ConfigMap data as rendered, a placeholder for Secret and projected tokens (their content is not the chart's),
    secretKeyRef values from SECRET_DATA."""
    config_maps = {d["metadata"]["name"]: d["data"] for d in kinds(docs, "ConfigMap")}
    volumes = {v["name"]: v for v in pod_spec(cj)["volumes"]}
    moved: dict[str, Path] = {}
    for index, mount in enumerate(container(cj)["volumeMounts"]):
        target = moved[mount["mountPath"]] = root / str(index)
        target.mkdir(parents=True)
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            for key, text in config_maps.get(volume["configMap"]["name"], {}).items():
                (target / key).write_text(text)
        for item in volume.get("secret", {}).get("items", []):
            (target / item["path"]).write_text("placeholder-not-a-token\n")
        for source in volume.get("projected", {}).get("sources", []):
            (target / source["serviceAccountToken"]["path"]).write_text("placeholder.jwt.value\n")
    environ = {}
    for name, entry in env_of(cj).items():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        field = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        if field is not None:  # the downward API: the pod's own metadata
            environ[name] = {"metadata.namespace": cj["metadata"]["namespace"]}[field]
            continue
        value = SECRET_DATA[ref["name"]][ref["key"]] if ref else entry["value"]
        for mount_path, local in moved.items():
            if value.startswith(mount_path + "/"):
                value = str(local / value[len(mount_path) + 1 :])
        environ[name] = value
    return environ


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("job", sorted(VALUE_KEYS))
def test_rendered_env_configures_the_job(home: Path, tmp_path: Path, variant: str, job: str) -> None:
    """The job's own loader accepts what the chart renders: names, value formats, the mounted allowlist and
    policy files, and the cross-field checks (e.g. coder-token-mint's renew window and grace)."""
    docs = template(home, "-f", str(FULL), *VARIANTS[variant])
    environ = materialize(cronjob(docs, job), docs, tmp_path)
    cls = settings_class(job)
    for settings_cls in (RunOptions, cls):
        unset = argparse.Namespace(**{name: None for name, _ in specs(settings_cls)})
        resolve(settings_cls, unset, environ)  # raises ConfigError naming the setting


WEBHOOK_ENV = {  # what the Azure Workload Identity webhook adds to a labelled pod
    "AZURE_CLIENT_ID": "5f3c8a1e-2b4d-4c6e-9f7a-1b2c3d4e5f60",
    "AZURE_TENANT_ID": POOL[0],
    "AZURE_FEDERATED_TOKEN_FILE": "/var/run/secrets/azure/tokens/azure-identity-token",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com/",
}


@pytest.mark.parametrize("job", ["fic-reconcile", "keyvault-sync"])
def test_the_azure_jobs_use_workload_identity_and_nothing_else(
    full: list[dict[str, Any]], tmp_path: Path, job: str
) -> None:
    """The chart forces workload-identity: with the webhook's env the job picks it; in a pod the webhook skipped
    it refuses (exit 2) instead of reaching for the node's managed identity or an `az` in the image."""
    cj = cronjob(full, job)
    assert env_of(cj)["CWJ_AZURE_AUTH"]["value"] == "workload-identity"
    environ = {k: v for k, v in materialize(cj, full, tmp_path).items() if k != "AZURE_TENANT_ID"}
    environ["KUBERNETES_SERVICE_HOST"] = "10.0.0.1"
    settings = resolve(
        settings_class(job), argparse.Namespace(**{n: None for n, _ in specs(settings_class(job))}), environ
    )
    chosen = decide_azure_auth(settings.azure_auth, environ | WEBHOOK_ENV, True, "label")
    assert chosen.method == "workload-identity"
    with pytest.raises(ConfigError, match="workload-identity needs"):
        decide_azure_auth(settings.azure_auth, environ, True, "label")


@pytest.mark.parametrize(
    ("endpoint", "scope"),
    [
        ("https://management.azure.com", "https://management.azure.com/.default"),
        ("https://management.usgovcloudapi.net/", "https://management.core.usgovcloudapi.net/.default"),
        ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
    ],
)
def test_each_clouds_arm_endpoint_reaches_the_job_with_its_audience(
    home: Path, tmp_path: Path, endpoint: str, scope: str
) -> None:
    docs = template(home, "-f", str(FULL), "--set", f"jobs.ficReconcile.settings.armEndpoint={endpoint}")
    environ = materialize(cronjob(docs, "fic-reconcile"), docs, tmp_path)
    cls = settings_class("fic-reconcile")
    settings = resolve(cls, argparse.Namespace(**{n: None for n, _ in specs(cls)}), environ)
    assert settings.arm_target().scope == scope


def test_pool_order_reaches_the_job_unchanged(home: Path) -> None:
    """The order of AZURE_CLIENT_IDS_JSON is the shard contract with the Coder templates."""
    docs = template(home, "-f", str(FULL), *VARIANTS["pool-in-values-no-netpol-no-alerts"])
    env = env_of(cronjob(docs, "fic-reconcile"))
    cls = settings_class("fic-reconcile")
    (spec,) = [s for _, s in specs(cls) if s.env == "AZURE_CLIENT_IDS_JSON"]
    assert spec.parse(env["AZURE_CLIENT_IDS_JSON"]["value"]) == tuple(POOL)
    assert "AZURE_TENANT_ID" not in env  # the Workload Identity webhook sets it


@pytest.mark.parametrize("job", ["fic-reconcile", "keyvault-sync"])
def test_the_run_budget_ends_before_the_jobs_deadline(home: Path, job: str) -> None:
    """JSON schema cannot compare two values, so the template refuses a run budget at or past the deadline."""
    key = VALUE_KEYS[job]
    docs = template(home, "-f", str(FULL))
    env = env_of(cronjob(docs, job))
    deadline = cronjob(docs, job)["spec"]["jobTemplate"]["spec"]["activeDeadlineSeconds"]
    assert int(env["CWJ_MAX_RUN_SECONDS"]["value"]) == deadline - 120
    shorter = template(home, "-f", str(FULL), "--set", f"jobs.{key}.activeDeadlineSeconds=300")
    assert env_of(cronjob(shorter, job))["CWJ_MAX_RUN_SECONDS"]["value"] == "180"  # follows the deadline
    past = template_error(home, "-f", str(FULL), "--set", f"jobs.{key}.settings.maxRunSeconds={deadline}")
    assert f"must be below jobs.{key}.activeDeadlineSeconds" in past
    assert "leaves no run budget" in template_error(
        home, "-f", str(FULL), "--set", f"jobs.{key}.activeDeadlineSeconds=100"
    )
    for bad in ("0", "-5"):  # the schema: at least 1
        assert "maxRunSeconds" in template_error(
            home, "-f", str(FULL), "--set", f"jobs.{key}.settings.maxRunSeconds={bad}"
        )


@pytest.mark.parametrize(
    ("setting", "bad"),
    [("writeConcurrency", "11"), ("writeConcurrency", "0"), ("createsPerSecond", "31"), ("createsPerSecond", "0"),
     ("concurrency", "0")],
)  # fmt: skip
def test_keyvault_sync_pace_and_concurrency_are_bounded_by_the_schema(home: Path, setting: str, bad: str) -> None:
    """More than 10 writers would overflow the SDK's 10 connections per vault; more than 30 new versions a second
    is past Key Vault's refill (300 per 10 s per vault): either is refused at install, not found in a 429 storm."""
    assert setting in template_error(home, "-f", str(FULL), "--set", f"jobs.keyvaultSync.settings.{setting}={bad}")


def test_an_empty_namespace_prefix_needs_a_selector(home: Path) -> None:
    """Without either, every namespace (kube-system, default, the release's own) would get a FIC."""
    empty = (
        "--set",
        "jobs.ficReconcile.settings.namespacePrefix=",
        "--set",
        "jobs.ficReconcile.settings.namespaceSelector=",
    )
    assert "namespaceSelector" in template_error(home, "-f", str(FULL), *empty)
    selected = ("--set", "jobs.ficReconcile.settings.namespacePrefix=",
                "--set", "jobs.ficReconcile.settings.namespaceSelector=coder.com/workspace=true")  # fmt: skip
    env = env_of(cronjob(template(home, "-f", str(FULL), *selected), "fic-reconcile"))
    assert (
        env["CWJ_NAMESPACE_PREFIX"]["value"] == ""
        and env["CWJ_NAMESPACE_SELECTOR"]["value"] == "coder.com/workspace=true"
    )


def test_the_probe_is_off_by_default_and_on_adds_only_token_create_for_the_workspace_account(home: Path) -> None:
    """Its RBAC lets the job mint workspace tokens (tier 0): nothing of it unless asked, and then one verb on one
    subresource of one ServiceAccount name, bound to the job's own ServiceAccount."""
    off = template(home, "-f", str(FULL))
    assert not any(e.startswith("CWJ_PROBE") for e in env_of(cronjob(off, "fic-reconcile")))
    assert "serviceaccounts/token" not in json.dumps(off)
    on = template(home, "-f", str(FULL), *VARIANTS["fic-probe"],
                  "--set", "jobs.ficReconcile.settings.workspaceServiceAccount=coder-ws")  # fmt: skip
    env = env_of(cronjob(on, "fic-reconcile"))
    values = {n: env[n]["value"] for n in ("CWJ_PROBE", "CWJ_PROBE_SECONDS", "CWJ_PROBE_MAX_NAMESPACES")}
    assert values == {"CWJ_PROBE": "true", "CWJ_PROBE_SECONDS": "120", "CWJ_PROBE_MAX_NAMESPACES": "10"}
    added = [
        d for d in on if d not in off and d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
    ]
    (role,) = [d for d in added if d["kind"] == "ClusterRole"]
    assert role["metadata"]["name"] == "rel-fic-reconcile-probe-jobs"
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": ["coder-ws"], "verbs": ["create"]}
    ]
    (binding,) = [d for d in added if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-fic-reconcile", "namespace": "jobs"}]
    assert len(added) == 2  # the read-only ClusterRole and the record's Role are unchanged


def test_the_probe_bound_must_stay_inside_the_run_budget(home: Path) -> None:
    """The job refuses it too (exit 2); the chart says so at install time, naming both values."""
    on = [*VARIANTS["fic-probe"], "--set", "jobs.ficReconcile.settings.maxRunSeconds=300"]
    env = env_of(cronjob(template(home, "-f", str(FULL), *on, "--set", "jobs.ficReconcile.probe.seconds=299"),
                         "fic-reconcile"))  # fmt: skip
    assert (env["CWJ_PROBE_SECONDS"]["value"], env["CWJ_MAX_RUN_SECONDS"]["value"]) == ("299", "300")
    error = template_error(home, "-f", str(FULL), *on, "--set", "jobs.ficReconcile.probe.seconds=300")
    assert "jobs.ficReconcile.probe.seconds (300) must be below the run budget (300 s" in error
    off = template(home, "-f", str(FULL), "--set", "jobs.ficReconcile.probe.seconds=5000")
    assert "CWJ_PROBE_SECONDS" not in env_of(cronjob(off, "fic-reconcile"))  # unused, unchecked while off


# ---- the token policy by default (seed 001/002, issue 16) ----------------------------------------------------------


def rendered_policy(docs: list[dict[str, Any]]) -> Any:
    from jobs.token_expiry_check.policy import parse_policy

    (cm,) = [d for d in kinds(docs, "ConfigMap") if d["metadata"]["name"] == "rel-token-expiry-check"]
    return parse_policy(cm["data"]["policy.yaml"], "policy.yaml")  # the job's own parser: it must load


def test_the_default_policy_is_the_seed_policy_and_cicd_accounts_get_template_admin_only(home: Path) -> None:
    docs = template(
        home,
        "-f",
        str(FULL),
        "--set-json",
        'jobs.tokenExpiryCheck.settings.cicdAccounts=["ci-deployer","cicd-template-deployer"]',
        "--set-json",
        'jobs.tokenExpiryCheck.settings.policy.users.ci-deployer={"expect_tokens": false}',
    )
    policy = rendered_policy(docs)
    defaults = policy.for_user("anyone")
    assert (defaults.warn_days, defaults.max_lifetime_days) == (14, 90)
    assert defaults.name_pattern is not None and defaults.name_pattern.matches("coder-cli-session-prod-20261202")
    ci = policy.for_user("ci-deployer")
    assert ci.allowed_site_roles == ("template-admin",) and ci.allow_all_scope is False
    assert ci.expect_tokens is False  # the explicit policy.users entry wins key by key
    assert policy.for_user("cicd-template-deployer").expect_tokens is True


def test_the_mint_names_its_env_and_the_check_follows_its_renew_window(full: list[dict[str, Any]]) -> None:
    assert env_of(cronjob(full, "coder-token-mint"))["CWJ_ENV"]["value"] == "prod"
    check = env_of(cronjob(full, "token-expiry-check"))
    assert check["CWJ_RENEW_BEFORE"]["value"] == "10d"  # the mint's renewBefore in full-values
