"""fic-reconcile --mode identity-binding's fault matrix: ARM's identity bindings (list, PUT, the operation poll)
and Kubernetes RBAC (list, create, update), in the style of test_fic_reconcile_faults.py.

The world before each case: seven workspace namespaces already on the binding path (`both` mode ran: bindings,
ClusterRoles, ClusterRoleBindings, a FIC each); then the third identity's binding, ClusterRole and
ClusterRoleBinding were deleted, an eighth workspace appeared (its identity's ClusterRoleBinding needs an update),
and a FIC of ours is left behind by a namespace that is gone. A converged run PUTs one binding (a long-running
operation, polled), creates one ClusterRole and one ClusterRoleBinding, updates another, deletes the stale FIC and
prunes the FICs whose path it observed in place (those not on the third identity). A failed one exits 1 naming
the call; a failed read (the binding list, an RBAC list) withholds every FIC delete.
"""

from __future__ import annotations

import json
import os
import zlib

import pytest
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential
from kubernetes import client as k8s

from lib.clients.azure_auth import azure_credential
from lib.clients.kube import api_client, core_api
from tests.conftest import Control, run_job
from tests.emulators.platform import Platform
from tests.faults.common import (
    DELAY_PAST_TIMEOUT,
    Case,
    Converged,
    Fails,
    case,
    case_env,
    check_outcome,
    fault,
    run_case,
)

pytestmark = pytest.mark.e2e

T = DELAY_PAST_TIMEOUT
LIVE = [f"ameide-ws-{c}" for c in ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")]
GONE = "ameide-ws-gone"
AUDIENCE = "api://AzureADTokenExchange"
LABELS = "app.kubernetes.io/managed-by=fic-reconcile,app.kubernetes.io/part-of=coder-wi-jobs"
RB = "/clusterrolebindings"  # a fault `match`: the ClusterRoleBinding calls only
FAILED_OP = (
    '{"status": "Failed", "error": {"code": "InternalOperationError", "message": "binding could not be set up"}}'
)


def shard(ns: str) -> int:
    return zlib.crc32(ns.encode()) % 3


NEW = next(f"ameide-ws-new-{i}" for i in range(50) if shard(f"ameide-ws-new-{i}") != 2)  # an update, not a create


CASES = [
    # ---- ARM: the binding list (observe) --------------------------------------------------------------------
    case("binding-list-500-once", Converged(("arm", "aks.binding.list")), fault("arm", "aks.binding.list", status=500)),
    case(
        "binding-list-503-always",
        Fails(("identity bindings", "503")),
        fault("arm", "aks.binding.list", status=503, count=None),
    ),
    case(
        "binding-list-429-retry-after",
        Converged(("arm", "aks.binding.list"), waited=1.0),
        fault("arm", "aks.binding.list", status=429, retry_after=1),
    ),
    case("binding-list-timeout", Converged(("arm", "aks.binding.list")), fault("arm", "aks.binding.list", delay=T)),
    # ---- ARM: the binding PUT and its operation (apply) ------------------------------------------------------
    case("binding-put-500-once", Converged(("arm", "aks.binding.put")), fault("arm", "aks.binding.put", status=500)),
    case(
        "binding-put-503-always",
        Fails(("binding-create", "503")),
        fault("arm", "aks.binding.put", status=503, count=None),
        observing=False,
    ),
    case(
        "binding-put-429-retry-after",
        Converged(("arm", "aks.binding.put"), waited=1.0),
        fault("arm", "aks.binding.put", status=429, retry_after=1),
    ),
    case("binding-put-timeout", Converged(("arm", "aks.binding.put")), fault("arm", "aks.binding.put", delay=T)),
    case("operation-500-once", Converged(("arm", "aks.operation.get")), fault("arm", "aks.operation.get", status=500)),
    case(
        "operation-503-always",
        Fails(("binding-create", "503")),
        fault("arm", "aks.operation.get", status=503, count=None),
        observing=False,
    ),
    case(
        "operation-429-retry-after",
        Converged(("arm", "aks.operation.get"), waited=1.0),
        fault("arm", "aks.operation.get", status=429, retry_after=1),
    ),
    case("operation-timeout", Converged(("arm", "aks.operation.get")), fault("arm", "aks.operation.get", delay=T)),
    case(
        "operation-failed",
        Fails(("binding-create", "InternalOperationError")),
        fault("arm", "aks.operation.get", body=FAILED_OP, count=None),
        observing=False,
    ),
    # ---- Kubernetes RBAC: list (observe), create and update (apply) -------------------------------------------
    case("rbac-list-500-once", Converged(("kube", "rbac.list")), fault("kube", "rbac.list", status=500)),
    case(
        "rbac-list-500-always",
        Fails(("Kubernetes RBAC", "500")),
        fault("kube", "rbac.list", status=500, count=None, match=RB),
    ),
    case(
        "rbac-list-403",
        Fails(("Kubernetes RBAC", "403")),
        fault("kube", "rbac.list", status=403, count=None, match=RB),
    ),
    case("rbac-create-500-once", Converged(("kube", "rbac.create")), fault("kube", "rbac.create", status=500)),
    case(
        "rbac-create-403",
        Fails(("rolebinding-create", "403")),
        fault("kube", "rbac.create", status=403, count=None, match=RB),
        observing=False,
    ),
    case(
        "rbac-create-409-already-exists",
        Fails(("rolebinding-create", "409")),
        fault("kube", "rbac.create", status=409, code="AlreadyExists", count=None, match=RB),
        observing=False,
    ),
    case("rbac-update-500-once", Converged(("kube", "rbac.replace")), fault("kube", "rbac.replace", status=500)),
    case(
        "rbac-update-403",
        Fails(("rolebinding-update", "403")),
        fault("kube", "rbac.replace", status=403, count=None),
        observing=False,
    ),
    case(
        "rbac-update-409-conflict",
        Fails(("rolebinding-update", "409")),
        fault("kube", "rbac.replace", status=409, code="Conflict", count=None),
        observing=False,
    ),
]


def _msi(platform: Platform) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=platform.arm.url
    )


def _aks(platform: Platform) -> ContainerServiceClient:
    return ContainerServiceClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=platform.arm.url
    )


def _our_fics(platform: Platform) -> set[str]:
    client, group = _msi(platform), platform.baseline.pool_resource_group
    return {
        f.name
        for i in range(3)
        for f in client.federated_identity_credentials.list(group, f"id-coder-ws-pool-{i}")
        if f.name.startswith("coder-ws-")
    }


def _workspace(name: str) -> None:
    api = core_api(os.environ)
    api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    api.create_namespaced_service_account(name, k8s.V1ServiceAccount(metadata=k8s.V1ObjectMeta(name="workspace")))


def _seed(platform: Platform, control: Control, env: dict[str, str]) -> None:
    b = platform.baseline
    for ns in LIVE:
        _workspace(ns)
    control.configure("arm", binding_lro_seconds=0)
    seeded = run_job("fic-reconcile", "--mode", "both", env=env)
    assert seeded.returncode == 0, seeded.stderr[-2000:]
    spec = FederatedIdentityCredential(
        issuer=b.oidc_issuer, subject=f"system:serviceaccount:{GONE}:workspace", audiences=[AUDIENCE]
    )
    _msi(platform).federated_identity_credentials.create_or_update(
        b.pool_resource_group, f"id-coder-ws-pool-{shard(GONE)}", f"coder-ws-{GONE}", spec
    )
    third = b.client_id(b.pool_identity_name(2))
    _aks(platform).identity_bindings.begin_delete(
        b.cluster_resource_group, b.cluster_name, "coderws" + third.replace("-", "")
    ).result()
    rbac = k8s.RbacAuthorizationV1Api(api_client(os.environ))
    rbac.delete_cluster_role_binding(f"coder-ws-use-mi-{third}")
    rbac.delete_cluster_role(f"coder-ws-use-mi-{third}")
    _workspace(NEW)
    control.configure("arm", binding_lro_seconds=1.0)  # the PUT below is polled
    control.clear_requests()


def _converged(platform: Platform) -> None:
    b = platform.baseline
    rbac = k8s.RbacAuthorizationV1Api(api_client(os.environ))
    bound = {r.metadata.name: r for r in rbac.list_cluster_role_binding(label_selector=LABELS).items}
    clients = [b.client_id(b.pool_identity_name(i)) for i in range(3)]
    for i, client in enumerate(clients):
        subjects = {s.namespace for s in bound[f"coder-ws-use-mi-{client}"].subjects or []}
        assert subjects == {ns for ns in [*LIVE, NEW] if shard(ns) == i}
    held = {x.name: x for x in _aks(platform).identity_bindings.list_by_managed_cluster(b.cluster_resource_group,
                                                                                          b.cluster_name)}  # fmt: skip
    assert all(held["coderws" + c.replace("-", "")].properties.provisioning_state == "Succeeded" for c in clients)
    # the stale FIC went, and every FIC whose path was observed in place; the third identity's wait a run
    assert _our_fics(platform) == {f"coder-ws-{ns}" for ns in LIVE if shard(ns) == 2}


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_identity_binding_mode_under_fault(c: Case, platform: Platform, control: Control, env: dict[str, str]) -> None:
    _seed(platform, control, env)
    before = _our_fics(platform)
    assert f"coder-ws-{GONE}" in before and len(before) == len(LIVE) + 1
    proc = run_case("fic-reconcile", c, control, case_env(c, env), "--mode", "identity-binding", "--output", "json")
    check_outcome(c, proc, control)
    control.clear_faults()
    if isinstance(c.expect, Converged):
        _converged(platform)
        return
    report = json.loads(proc.stdout)
    if c.observing:
        assert control.count("arm", "fic.delete") == 0, "deleted on the strength of an incomplete observation"
        assert _our_fics(platform) == before
        assert "deletes-suppressed" in {f["rule"] for f in report["findings"]}
    # the next run, without the fault, converges: nothing was lost
    again = run_case(
        "fic-reconcile", case("again", Converged()), control, case_env(c, env), "--mode", "identity-binding"
    )
    assert again.returncode == 0, again.stderr[-3000:]
