"""The chart's identity-binding modes (issue 20): `jobs.ficReconcile.mode` and `aksClusterId` reach the job, the
schema refuses a bad mode and a missing or malformed cluster id, and the RBAC to manage the job's ClusterRoles
and ClusterRoleBindings renders only when the mode needs it, least privilege: no `escalate`, no `bind`,
update narrowed to the job's names when the chart knows the pool, delete (unnamed: it removes the objects of client
ids that left the pool), and the one rule it hands out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import FULL, cronjob, env_of, kinds, template, template_error
from tests.helm.test_chart import AKS_CLUSTER_ID, POOL, VARIANTS


def added_rbac(home: Path, variant: str) -> list[dict[str, Any]]:
    off = template(home, "-f", str(FULL))
    on = template(home, "-f", str(FULL), *VARIANTS[variant])
    return [d for d in on if d not in off and d["kind"] in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")]


def test_fic_mode_is_the_default_and_renders_no_rbac_write(home: Path) -> None:
    docs = template(home, "-f", str(FULL))
    env = env_of(cronjob(docs, "fic-reconcile"))
    assert env["CWJ_FIC_MODE"]["value"] == "fic" and "CWJ_AKS_CLUSTER_ID" not in env
    assert "clusterroles" not in json.dumps(kinds(docs, "ClusterRole"))


def test_identity_binding_mode_with_the_pool_in_values_narrows_update_and_the_held_rule_to_the_pool(
    home: Path,
) -> None:
    docs = template(home, "-f", str(FULL), *VARIANTS["identity-binding-pool-in-values"])
    env = env_of(cronjob(docs, "fic-reconcile"))
    assert env["CWJ_FIC_MODE"]["value"] == "identity-binding"
    assert env["CWJ_AKS_CLUSTER_ID"]["value"] == AKS_CLUSTER_ID
    added = added_rbac(home, "identity-binding-pool-in-values")
    (role,) = [d for d in added if d["kind"] == "ClusterRole"]
    assert role["metadata"]["name"] == "rel-fic-reconcile-bindings-jobs"
    names = [f"coder-ws-use-mi-{c}" for c in POOL]
    assert role["rules"] == [
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"],
         "verbs": ["get", "list"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"],
         "verbs": ["create"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"],
         "resourceNames": names, "verbs": ["update"]},
        {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"],
         "verbs": ["delete"]},
        {"apiGroups": ["cid.wi.aks.azure.com"], "resources": POOL, "verbs": ["use-managed-identity"]},
    ]  # fmt: skip
    verbs = {v for rule in role["rules"] for v in rule["verbs"]}
    # delete stays unnamed: the objects it removes are of client ids that left settings.clientIds
    assert not verbs & {"escalate", "bind", "deletecollection", "patch", "*"}
    (binding,) = [d for d in added if d["kind"] == "ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-fic-reconcile", "namespace": "jobs"}]
    assert len(added) == 2


def test_both_mode_with_the_pool_from_the_secret_cannot_name_the_objects(home: Path) -> None:
    added = added_rbac(home, "both-pool-from-secret")
    (role,) = [d for d in added if d["kind"] == "ClusterRole"]
    update = [r for r in role["rules"] if r["verbs"] == ["update"]]
    assert update == [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles", "clusterrolebindings"],
                       "verbs": ["update"]}]  # fmt: skip
    held = [r for r in role["rules"] if r["apiGroups"] == ["cid.wi.aks.azure.com"]]
    assert held == [{"apiGroups": ["cid.wi.aks.azure.com"], "resources": ["*"], "verbs": ["use-managed-identity"]}]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--set", "jobs.ficReconcile.mode=bindings"], "mode"),
        (["--set", "jobs.ficReconcile.mode=identity-binding"], "aksClusterId"),
        (["--set", "jobs.ficReconcile.mode=both,jobs.ficReconcile.aksClusterId=aks-prod-1"], "aksClusterId"),
        (["--set", "jobs.ficReconcile.aksClusterId=/subscriptions/x/resourceGroups/rg"], "aksClusterId"),
    ],
    ids=["unknown-mode", "missing-cluster-id", "cluster-name-not-id", "malformed-id"],
)
def test_the_schema_refuses_a_bad_mode_or_cluster_id(home: Path, args: list[str], expected: str) -> None:
    assert expected in template_error(home, "-f", str(FULL), *args)
