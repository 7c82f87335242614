"""ClusterRoles, ClusterRoleBindings, RBAC authorization, escalation prevention and SubjectAccessReview in the kube
emulator, through the real kubernetes client (as the admin kubeconfig and as ServiceAccounts). Sources: rbac.py,
rbac_rules.py and authz.py; each test names the kubernetes/kubernetes behaviour it pins down."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.emulators.kube.bootstrap import JOB_ROLE
from tests.emulators.platform import Platform

CID_GROUP = "cid.wi.aks.azure.com"
CLIENT_ID = "00000000-1111-2222-3333-444444444444"


def rbac_api(platform: Platform, account: tuple[str, str] | None = None) -> Any:
    path = platform.state_dir / "kubeconfig" if account is None else platform.service_account_kubeconfig(*account)
    return k8s.RbacAuthorizationV1Api(k8s_config.new_client_from_config(str(path)))


def core_api(platform: Platform, account: tuple[str, str] | None = None) -> Any:
    path = platform.state_dir / "kubeconfig" if account is None else platform.service_account_kubeconfig(*account)
    return k8s.CoreV1Api(k8s_config.new_client_from_config(str(path)))


def use_mi_role(client_id: str = CLIENT_ID, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The ClusterRole the AKS docs (identity-bindings.md, "Authorize namespaces and service accounts") apply."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"use-mi-{client_id}", "labels": labels or {}},
        "rules": [{"verbs": ["use-managed-identity"], "apiGroups": [CID_GROUP], "resources": [client_id]}],
    }


def use_mi_binding(namespaces: list[str], client_id: str = CLIENT_ID) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"use-mi-{client_id}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": f"use-mi-{client_id}"},
        "subjects": [{"kind": "ServiceAccount", "name": "workspace", "namespace": ns} for ns in namespaces],
    }


def status_of(exc: pytest.ExceptionInfo[k8s.ApiException]) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.value.body)
    return body


def limited_account(platform: Platform, rules: list[dict[str, Any]]) -> tuple[str, str]:
    """A ServiceAccount `rbac-test/limited` holding exactly `rules` through one ClusterRoleBinding."""
    core_api(platform).create_namespace({"metadata": {"name": "rbac-test"}})
    core_api(platform).create_namespaced_service_account("rbac-test", {"metadata": {"name": "limited"}})
    platform.kube.load_rbac(
        [
            {"kind": "ClusterRole", "metadata": {"name": "limited"}, "rules": rules},
            {
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "limited"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "limited"},
                "subjects": [{"kind": "ServiceAccount", "name": "limited", "namespace": "rbac-test"}],
            },
        ]
    )
    return ("rbac-test", "limited")


WRITE_RBAC = {
    "apiGroups": ["rbac.authorization.k8s.io"],
    "resources": ["clusterroles", "clusterrolebindings"],
    "verbs": ["get", "list", "create", "update", "patch"],
}
GROUPS = '["system:serviceaccounts" "system:serviceaccounts:rbac-test" "system:authenticated"]'


# ---- CRUD ---------------------------------------------------------------------------------------------------


def test_cluster_roles_list_by_label_and_page_with_limit_and_continue(platform: Platform) -> None:
    api = rbac_api(platform)
    for i in range(5):
        api.create_cluster_role(
            use_mi_role(f"{i:08d}-0000-0000-0000-000000000000", {"app.kubernetes.io/managed-by": "cwj"})
        )
    first = api.list_cluster_role(label_selector="app.kubernetes.io/managed-by=cwj", limit=2)
    assert len(first.items) == 2 and first.metadata._continue
    rest = api.list_cluster_role(
        label_selector="app.kubernetes.io/managed-by=cwj", limit=10, _continue=first.metadata._continue
    )
    names = [r.metadata.name for r in first.items + rest.items]
    assert names == sorted(names) and len(set(names)) == 5 and rest.metadata._continue is None
    assert "system:auth-delegator" not in names  # the selector filtered the bootstrap roles out


def test_replace_with_a_stale_resource_version_is_409(platform: Platform) -> None:
    """store.go GuaranteedUpdate: a PUT carrying an old metadata.resourceVersion conflicts."""
    api = rbac_api(platform)
    created = api.create_cluster_role(use_mi_role())
    api.patch_cluster_role(created.metadata.name, [{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
    created.rules[0].resource_names = None
    with pytest.raises(k8s.ApiException) as exc:
        api.replace_cluster_role(created.metadata.name, created)
    assert exc.value.status == 409 and status_of(exc)["reason"] == "Conflict"
    assert "the object has been modified" in status_of(exc)["message"]


def test_delete_with_a_stale_resource_version_precondition_is_409_and_a_current_one_deletes(platform: Platform) -> None:
    """apiserver storage Preconditions.Check -> NewInvalidObjError -> registry store NewConflict (409)."""
    api = rbac_api(platform)
    made = api.create_cluster_role(use_mi_role())
    api.patch_cluster_role(made.metadata.name, [{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
    stale = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(resource_version=made.metadata.resource_version))
    with pytest.raises(k8s.ApiException) as exc:
        api.delete_cluster_role(made.metadata.name, body=stale)
    assert exc.value.status == 409 and status_of(exc)["reason"] == "Conflict"
    current = api.read_cluster_role(made.metadata.name).metadata.resource_version
    assert status_of(exc)["message"] == (
        f'Operation cannot be fulfilled on clusterroles.rbac.authorization.k8s.io "{made.metadata.name}": '
        f"Precondition failed: ResourceVersion in precondition: {made.metadata.resource_version}, "
        f"ResourceVersion in object meta: {current}"
    )
    fresh = k8s.V1DeleteOptions(preconditions=k8s.V1Preconditions(resource_version=current))
    api.delete_cluster_role(made.metadata.name, body=fresh)
    assert made.metadata.name not in {r.metadata.name for r in api.list_cluster_role().items}


def test_patch_takes_the_clients_default_content_types(platform: Platform) -> None:
    """The client (kubernetes/client/rest.py) sends a list body as application/json-patch+json and a dict body as
    application/strategic-merge-patch+json; RBAC subjects have no merge key, so a strategic patch replaces them."""
    api = rbac_api(platform)
    api.create_cluster_role(use_mi_role())
    api.create_cluster_role_binding(use_mi_binding(["ns-a", "ns-b"]))
    name = f"use-mi-{CLIENT_ID}"
    patched = api.patch_cluster_role_binding(name, [{"op": "remove", "path": "/subjects/0"}])
    assert [s.namespace for s in patched.subjects] == ["ns-b"]
    merged = api.patch_cluster_role_binding(
        name, {"subjects": [{"kind": "ServiceAccount", "name": "workspace", "namespace": "ns-c"}]}
    )
    assert [s.namespace for s in merged.subjects] == ["ns-c"]  # RBAC subjects have no merge key: they replace
    with pytest.raises(k8s.ApiException) as exc:  # a failed test op: 422
        api.patch_cluster_role_binding(name, [{"op": "test", "path": "/metadata/resourceVersion", "value": "1"}])
    assert exc.value.status == 422
    status = api.delete_cluster_role_binding(name)
    assert (status["status"] if isinstance(status, dict) else status.status) == "Success"  # RBAC answers a Status
    with pytest.raises(k8s.ApiException) as exc:
        api.read_cluster_role_binding(name)
    assert exc.value.status == 404
    assert status_of(exc)["message"] == f'clusterrolebindings.rbac.authorization.k8s.io "{name}" not found'


def test_validation_of_rules_role_refs_and_subjects_is_422(platform: Platform) -> None:
    """pkg/apis/rbac/validation: verbs required; roleRef kind ClusterRole; a ServiceAccount subject's namespace;
    roleRef cannot change."""
    api = rbac_api(platform)
    bad_role = use_mi_role()
    bad_role["rules"][0]["verbs"] = []
    with pytest.raises(k8s.ApiException) as exc:
        api.create_cluster_role(bad_role)
    assert exc.value.status == 422 and "verbs must contain at least one value" in status_of(exc)["message"]
    bad_binding = use_mi_binding(["ns-a"])
    bad_binding["subjects"][0].pop("namespace")
    bad_binding["roleRef"]["kind"] = "Role"
    with pytest.raises(k8s.ApiException) as exc:
        api.create_cluster_role_binding(bad_binding)
    causes = {c["field"] for c in status_of(exc)["details"]["causes"]}
    assert exc.value.status == 422 and causes == {"roleRef.kind", "subjects[0].namespace"}
    api.create_cluster_role(use_mi_role())
    api.create_cluster_role_binding(use_mi_binding(["ns-a"]))
    with pytest.raises(k8s.ApiException) as exc:
        api.patch_cluster_role_binding(
            f"use-mi-{CLIENT_ID}", [{"op": "replace", "path": "/roleRef/name", "value": "x"}]
        )
    assert exc.value.status == 422 and "cannot change roleRef" in status_of(exc)["message"]


# ---- authorization and escalation -----------------------------------------------------------------------------


def test_a_service_account_is_authorized_by_rbac_with_the_api_servers_403(platform: Platform) -> None:
    """responsewriters forbiddenMessage; the job's own account gets what the chart grants (bootstrap.py)."""
    job = (platform.baseline.jobs_namespace, platform.baseline.jobs_service_account)
    assert "kube-system" in [n.metadata.name for n in core_api(platform, job).list_namespace().items]
    with pytest.raises(k8s.ApiException) as exc:
        core_api(platform, job).delete_namespace("kube-public")
    assert exc.value.status == 403 and status_of(exc)["message"] == (
        'namespaces "kube-public" is forbidden: User "system:serviceaccount:coder-wi-jobs:coder-wi-jobs" cannot '
        'delete resource "namespaces" in API group "" in the namespace "kube-public"'
    )


def test_creating_a_role_that_grants_what_the_caller_lacks_is_forbidden_without_escalate(platform: Platform) -> None:
    """clusterrole/policybased/storage.go + validation/rule.go ConfirmNoEscalation, the exact message."""
    account = limited_account(platform, [WRITE_RBAC])
    with pytest.raises(k8s.ApiException) as exc:
        rbac_api(platform, account).create_cluster_role(use_mi_role())
    assert exc.value.status == 403 and status_of(exc)["message"] == (
        f'clusterroles.rbac.authorization.k8s.io "use-mi-{CLIENT_ID}" is forbidden: user '
        f'"system:serviceaccount:rbac-test:limited" (groups={GROUPS}) is attempting to grant RBAC permissions not '
        f'currently held:\n{{APIGroups:["{CID_GROUP}"], Resources:["{CLIENT_ID}"], Verbs:["use-managed-identity"]}}'
    )


def test_escalate_or_holding_the_permission_lets_the_role_be_written(platform: Platform) -> None:
    holds = {"apiGroups": [CID_GROUP], "resources": [CLIENT_ID], "verbs": ["use-managed-identity"]}
    account = limited_account(platform, [WRITE_RBAC, holds])
    rbac_api(platform, account).create_cluster_role(use_mi_role())  # it holds what it grants
    other = use_mi_role("99999999-0000-0000-0000-000000000000")
    with pytest.raises(k8s.ApiException):
        rbac_api(platform, account).create_cluster_role(other)
    escalate = {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "verbs": ["escalate"]}
    platform.kube.rbac["clusterroles"]["limited"]["rules"].append(escalate)
    assert rbac_api(platform, account).create_cluster_role(other).metadata.name == other["metadata"]["name"]


def test_binding_a_role_needs_bind_or_its_permissions(platform: Platform) -> None:
    """clusterrolebinding/policybased/storage.go: BindingAuthorized (bind on clusterroles/<roleRef.name>), else the
    role's rules must be held; a missing role is a 403 naming it."""
    rbac_api(platform).create_cluster_role(use_mi_role())
    account = limited_account(platform, [WRITE_RBAC])
    with pytest.raises(k8s.ApiException) as exc:
        rbac_api(platform, account).create_cluster_role_binding(use_mi_binding(["ns-a"]))
    assert (
        exc.value.status == 403
        and "is attempting to grant RBAC permissions not currently held" in status_of(exc)["message"]
    )
    missing = use_mi_binding(["ns-a"], "77777777-0000-0000-0000-000000000000")
    with pytest.raises(k8s.ApiException) as exc:
        rbac_api(platform, account).create_cluster_role_binding(missing)
    assert status_of(exc)["message"].endswith(
        'is forbidden: clusterrole.rbac.authorization.k8s.io "use-mi-77777777-0000-0000-0000-000000000000" not found'
    )
    bind = {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["clusterroles"],
        "verbs": ["bind"],
        "resourceNames": [f"use-mi-{CLIENT_ID}"],
    }
    platform.kube.rbac["clusterroles"]["limited"]["rules"].append(bind)
    created = rbac_api(platform, account).create_cluster_role_binding(use_mi_binding(["ns-a"]))
    updated = rbac_api(platform, account).patch_cluster_role_binding(
        created.metadata.name,
        [
            {
                "op": "add",
                "path": "/subjects/-",
                "value": {"kind": "ServiceAccount", "name": "workspace", "namespace": "ns-b"},
            }
        ],
    )
    assert [s.namespace for s in updated.subjects] == ["ns-a", "ns-b"]


def test_the_jobs_own_account_writes_the_roles_it_holds_and_nothing_more(platform: Platform) -> None:
    """bootstrap.py's model of the chart: it holds use-managed-identity on the pool's client ids, so roles and
    bindings for those are no escalation; one for another client id is; it may delete (a departed client id's
    objects, whose names the chart cannot know) but not patch."""
    job = (platform.baseline.jobs_namespace, platform.baseline.jobs_service_account)
    api, pool0 = rbac_api(platform, job), platform.baseline.pool_client_ids[0]
    api.create_cluster_role(use_mi_role(pool0))
    api.create_cluster_role_binding(use_mi_binding(["ns-a"], pool0))
    assert JOB_ROLE in [r.metadata.name for r in api.list_cluster_role().items]
    with pytest.raises(k8s.ApiException) as exc:
        api.create_cluster_role(use_mi_role())
    assert (
        exc.value.status == 403
        and "attempting to grant RBAC permissions not currently held" in status_of(exc)["message"]
    )
    with pytest.raises(k8s.ApiException) as exc:
        api.patch_cluster_role(f"use-mi-{pool0}", [{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
    assert exc.value.status == 403
    api.delete_cluster_role_binding(f"use-mi-{pool0}")
    api.delete_cluster_role(f"use-mi-{pool0}")


# ---- SubjectAccessReview ----------------------------------------------------------------------------------------


def sar(platform: Platform, namespace: str, client_id: str = CLIENT_ID, account: tuple[str, str] | None = None) -> Any:
    path = platform.state_dir / "kubeconfig" if account is None else platform.service_account_kubeconfig(*account)
    api = k8s.AuthorizationV1Api(k8s_config.new_client_from_config(str(path)))
    body = {
        "spec": {
            "user": f"system:serviceaccount:{namespace}:workspace",
            "groups": ["system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"],
            "resourceAttributes": {"verb": "use-managed-identity", "group": CID_GROUP, "resource": client_id},
        }
    }
    return api.create_subject_access_review(body)


def test_subject_access_review_answers_use_managed_identity_from_the_bindings(platform: Platform) -> None:
    """rbac.go: allowed with RBAC's reason for a bound workspace SA; no opinion (not allowed) for others."""
    rbac_api(platform).create_cluster_role(use_mi_role())
    rbac_api(platform).create_cluster_role_binding(use_mi_binding(["ns-a"]))
    allowed = sar(platform, "ns-a").status
    assert allowed.allowed is True and allowed.reason == (
        f'RBAC: allowed by ClusterRoleBinding "use-mi-{CLIENT_ID}" of ClusterRole "use-mi-{CLIENT_ID}" to '
        'ServiceAccount "workspace/ns-a"'
    )
    assert sar(platform, "ns-b").status.allowed is False
    assert sar(platform, "ns-a", "55555555-0000-0000-0000-000000000000").status.allowed is False


def test_subject_access_review_validation_and_who_may_ask(platform: Platform) -> None:
    api = k8s.AuthorizationV1Api(k8s_config.new_client_from_config(str(platform.state_dir / "kubeconfig")))
    with pytest.raises(k8s.ApiException) as exc:
        api.create_subject_access_review({"spec": {"resourceAttributes": {"verb": "get"}}})
    assert exc.value.status == 422 and "at least one of user or group must be specified" in status_of(exc)["message"]
    job = (platform.baseline.jobs_namespace, platform.baseline.jobs_service_account)
    with pytest.raises(k8s.ApiException) as exc:  # the chart's job role has no create on subjectaccessreviews
        sar(platform, "ns-a", account=job)
    assert exc.value.status == 403
    reviewer = (platform.baseline.reviewer_namespace, platform.baseline.reviewer_service_account)
    assert sar(platform, "ns-a", account=reviewer).status.allowed is False  # system:auth-delegator may ask


def test_discovery_names_the_rbac_and_authorization_groups_with_the_verbs_served(platform: Platform) -> None:
    api = k8s.ApisApi(k8s_config.new_client_from_config(str(platform.state_dir / "kubeconfig")))
    groups = {g.name for g in api.get_api_versions().groups}
    assert {"batch", "rbac.authorization.k8s.io", "authorization.k8s.io"} <= groups
    rbac = k8s.RbacAuthorizationV1Api(k8s_config.new_client_from_config(str(platform.state_dir / "kubeconfig")))
    served = {r.name: sorted(r.verbs) for r in rbac.get_api_resources().resources}
    assert served == {
        "clusterroles": ["create", "delete", "get", "list", "patch", "update"],
        "clusterrolebindings": ["create", "delete", "get", "list", "patch", "update"],
    }


def test_a_binding_over_etcds_request_limit_is_a_bare_500(platform: Platform) -> None:
    """etcd's 1.5 MiB --max-request-bytes: the API server answers `etcdserver: request is too large` as a 500 Status
    without a reason (kubernetes/kubernetes#74600, #112152). Somewhat over 21,000 workspace subjects on one identity."""
    api = rbac_api(platform)
    api.create_cluster_role(use_mi_role())
    many = use_mi_binding([f"coder-ws-{i:06d}" for i in range(25000)])
    with pytest.raises(k8s.ApiException) as exc:
        api.create_cluster_role_binding(many)
    assert exc.value.status == 500 and status_of(exc)["message"] == "etcdserver: request is too large"
    assert "reason" not in status_of(exc)
    assert api.create_cluster_role_binding(use_mi_binding([f"coder-ws-{i:06d}" for i in range(5000)])).subjects
