"""The RBAC objects the kube emulator starts with (every reset): the bootstrap ClusterRole system:auth-delegator
bound to OpenBao's token reviewer, and a model of the chart's RBAC for fic-reconcile's ServiceAccount
(`coder-wi-jobs/coder-wi-jobs`), so a test that runs the job with that ServiceAccount's token
(Platform.service_account_kubeconfig) meets the API server's authorization and escalation checks.

Sources: kubernetes/kubernetes plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go (system:auth-delegator:
create tokenreviews and subjectaccessreviews); helm/coder-wi-jobs/templates/fic-reconcile.yaml at the time of writing
(namespaces and serviceaccounts get/list; the probe's serviceaccounts/token create on `workspace`; the relocation
record's Role). The identity-binding rules follow the chart of branch ibjob (issue 20): ClusterRoles and
ClusterRoleBindings get, list, create, update, delete (those of a client id that left the pool), and
`use-managed-identity` on the pool's client ids held, so that writing the roles it hands out is no escalation; no
`escalate` or `bind`. The chart owns the real ones:
a test that wants the chart's exact RBAC deletes these through the admin kubeconfig and loads `helm template`'s
output with KubeEmulator.load_rbac (tests/helm/test_chart_rbac_on_platform.py does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.emulators.platform import Baseline

RBAC = "rbac.authorization.k8s.io"
JOB_ROLE = "coder-wi-jobs-fic-reconcile-coder-wi-jobs"  # the chart's `<release>-fic-reconcile-<namespace>`
STATE_CONFIG_MAP = "coder-wi-jobs-fic-relocations"  # values.yaml ficReconcile.settings.stateConfigMap
BINDINGS_ROLE = "coder-wi-jobs-fic-reconcile-bindings-coder-wi-jobs"  # the chart's identity-binding RBAC (issue 20)


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "ClusterRole", "metadata": {"name": name}, "rules": rules}


def _binding(kind: str, name: str, role_kind: str, role: str, subject: tuple[str, str], ns: str = "") -> dict[str, Any]:
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    subjects = [{"kind": "ServiceAccount", "namespace": subject[0], "name": subject[1]}]
    return {
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": RBAC, "kind": role_kind, "name": role},
        "subjects": subjects,
    }


def baseline_rbac(b: Baseline) -> list[dict[str, Any]]:
    job = (b.jobs_namespace, b.jobs_service_account)
    reviewer = (b.reviewer_namespace, b.reviewer_service_account)
    return [
        _cluster_role(
            "system:auth-delegator",
            [
                {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
                {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]},
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "vault-token-reviewer-auth-delegator",
            "ClusterRole",
            "system:auth-delegator",
            reviewer,
        ),
        _cluster_role(
            JOB_ROLE, [{"apiGroups": [""], "resources": ["namespaces", "serviceaccounts"], "verbs": ["get", "list"]}]
        ),
        _binding("ClusterRoleBinding", JOB_ROLE, "ClusterRole", JOB_ROLE, job),
        _cluster_role(
            "coder-wi-jobs-fic-reconcile-probe-coder-wi-jobs",
            [
                {
                    "apiGroups": [""],
                    "resources": ["serviceaccounts/token"],
                    "resourceNames": ["workspace"],
                    "verbs": ["create"],
                }
            ],
        ),
        _binding(
            "ClusterRoleBinding",
            "coder-wi-jobs-fic-reconcile-probe-coder-wi-jobs",
            "ClusterRole",
            "coder-wi-jobs-fic-reconcile-probe-coder-wi-jobs",
            job,
        ),
        _cluster_role(
            BINDINGS_ROLE,
            [
                {"apiGroups": [RBAC], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["get", "list"]},
                {"apiGroups": [RBAC], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["create"]},
                {"apiGroups": [RBAC], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["update"]},
                {"apiGroups": [RBAC], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["delete"]},
                # the one rule it grants, held so that writing it is no escalation: no `escalate`, no `bind`
                {
                    "apiGroups": ["cid.wi.aks.azure.com"],
                    "resources": b.pool_client_ids,
                    "verbs": ["use-managed-identity"],
                },
            ],
        ),
        _binding("ClusterRoleBinding", BINDINGS_ROLE, "ClusterRole", BINDINGS_ROLE, job),
        {
            "kind": "Role",
            "metadata": {"name": "coder-wi-jobs-fic-reconcile-record", "namespace": b.jobs_namespace},
            "rules": [
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]},
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [STATE_CONFIG_MAP],
                    "verbs": ["get", "update"],
                },
            ],
        },
        _binding(
            "RoleBinding",
            "coder-wi-jobs-fic-reconcile-record",
            "Role",
            "coder-wi-jobs-fic-reconcile-record",
            job,
            b.jobs_namespace,
        ),
    ]
