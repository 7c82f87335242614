"""The chart's Kubernetes RBAC for fic-reconcile, as `helm template` renders it, loaded into the kube emulator
(KubeEmulator.load_rbac) and enforced there (kube/authz.py): fic-reconcile run with its ServiceAccount's token
(Platform.service_account_kubeconfig) instead of the admin kubeconfig converges, so the chart grants what the job
uses; and the emulator's own model of that RBAC (kube/bootstrap.py, what every other test's job account holds)
matches the chart outside the rules issue 20 adds (RBAC objects, use-managed-identity)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.conftest import run_job
from tests.e2e.test_fic_reconcile import create_namespaces, namespaces
from tests.e2e.test_fic_reconcile_probe import workspace_account
from tests.emulators.kube.bootstrap import baseline_rbac
from tests.emulators.platform import Baseline, Platform
from tests.helm.chart import FULL, template

RBAC_KINDS = ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
RELEASE, NAMESPACE = "cwj", "coder-wi-jobs"
RBAC_GROUP = "rbac.authorization.k8s.io"


def fic_reconcile_rbac(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in RBAC_KINDS and "fic-reconcile" in d["metadata"]["name"]]


def rules_of(objects: list[dict[str, Any]]) -> set[str]:
    """Every rule of the roles, one canonical JSON line each, without issue 20's (on RBAC objects and on
    cid.wi.aks.azure.com), which the chart renders only in the identity-binding modes."""
    out = set()
    for obj in objects:
        for rule in obj.get("rules") or []:
            if not {RBAC_GROUP, "cid.wi.aks.azure.com"} & set(rule.get("apiGroups") or []):
                out.add(json.dumps({k: sorted(v) for k, v in rule.items()}, sort_keys=True))
    return out


def test_fic_reconcile_converges_as_its_own_service_account_under_the_charts_rbac(
    home: Path, platform: Platform, env: dict[str, str]
) -> None:
    docs = template(home, "-f", str(FULL), release=RELEASE, namespace=NAMESPACE)
    rbac = fic_reconcile_rbac(docs)
    (account,) = [
        d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == f"{RELEASE}-fic-reconcile"
    ]
    platform.kube.create_object("serviceaccounts", NAMESPACE, {"metadata": {"name": account["metadata"]["name"]}})
    platform.kube.load_rbac(rbac)
    names = namespaces(4, start=700)
    create_namespaces(names)
    for ns in names:
        workspace_account(ns)
    kubeconfig = platform.service_account_kubeconfig(NAMESPACE, account["metadata"]["name"])
    job_env = {**env, "KUBECONFIG": str(kubeconfig)}
    first = run_job("fic-reconcile", "--output", "json", env=job_env)
    assert first.returncode == 0, first.stderr[-2000:]
    assert len([o for o in json.loads(first.stdout)["outcomes"] if o["result"] == "ok"]) >= len(names)
    bare = platform.service_account_kubeconfig(NAMESPACE, "default")  # the namespace's default SA: no RBAC at all
    refused = run_job("fic-reconcile", "--output", "json", env={**env, "KUBECONFIG": str(bare)})
    assert refused.returncode != 0 and "403" in refused.stdout + refused.stderr


def test_the_emulators_model_of_the_job_rbac_matches_the_chart(home: Path) -> None:
    """The model holds the readiness probe's role too (the chart renders it with probe.enabled)."""
    probe = ("--set", "jobs.ficReconcile.probe.enabled=true")
    docs = template(home, "-f", str(FULL), *probe, release=RELEASE, namespace=NAMESPACE)
    chart = [d for d in fic_reconcile_rbac(docs) if d["kind"] in ("ClusterRole", "Role")]
    model = [
        d
        for d in baseline_rbac(Baseline())
        if d["kind"] in ("ClusterRole", "Role") and "fic-reconcile" in d["metadata"]["name"]
    ]
    assert rules_of(model) == rules_of(chart)
