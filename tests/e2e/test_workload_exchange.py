"""The shared workspace exchange (tests/e2e/workload_exchange.py) on both paths, against the emulated platform: a
binding alone or RBAC alone grants nothing; both (and the binding's FIC propagated in Entra) grant; the FIC path is
independent of either. Sources: ibproxy/emulator.py (the AKS proxy), arm/aks.py (the binding and its FIC),
kube/authz.py (RBAC), entra/emulator.py (AADSTS codes, propagation)."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.e2e.workload_exchange import ExchangeResult, exchange
from tests.emulators.arm.aks import BINDING_FIC
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

CID_GROUP = "cid.wi.aks.azure.com"


def admin(platform: Platform) -> Any:
    return k8s_config.new_client_from_config(str(platform.state_dir / "kubeconfig"))


def workspace(platform: Platform, ns: str) -> None:
    core = k8s.CoreV1Api(admin(platform))
    core.create_namespace({"metadata": {"name": ns}})
    core.create_namespaced_service_account(ns, {"metadata": {"name": "workspace"}})


def grant(platform: Platform, client_id: str, namespaces: list[str]) -> None:
    """The docs' ClusterRole and binding (identity-bindings.md, "Authorize namespaces and service accounts")."""
    rbac = k8s.RbacAuthorizationV1Api(admin(platform))
    name = f"use-mi-{client_id}"
    rule = {"verbs": ["use-managed-identity"], "apiGroups": [CID_GROUP], "resources": [client_id]}
    rbac.create_cluster_role({"metadata": {"name": name}, "rules": [rule]})
    subjects = [{"kind": "ServiceAccount", "name": "workspace", "namespace": ns} for ns in namespaces]
    ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name}
    rbac.create_cluster_role_binding({"metadata": {"name": name}, "roleRef": ref, "subjects": subjects})


def bind(platform: Platform, index: int, control: Any) -> None:
    """An identity binding for pool identity `index` through the real SDK (the operation takes no time here)."""
    from tests.emulators.arm.test_aks import aks_client, body, cluster, identity_id

    control.configure("arm", binding_lro_seconds=0)
    aks_client().identity_bindings.begin_create_or_update(
        *cluster(platform), f"pool{index}", body(identity_id(platform, index))
    ).result(timeout=30)


def test_binding_path_needs_rbac_the_binding_and_its_propagated_fic(platform: Platform, control: Any) -> None:
    b = platform.baseline
    cid0, cid1 = b.pool_client_ids[0], b.pool_client_ids[1]
    workspace(platform, "ns-a")
    workspace(platform, "ns-b")
    grant(platform, cid0, ["ns-a"])
    assert exchange(platform, "ns-a", cid0, via="identity-binding").code == "unauthorized_client"  # no binding yet
    bind(platform, 0, control)
    assert exchange(platform, "ns-a", cid0, via="identity-binding").code == "AADSTS70021"  # FIC not propagated
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    assert exchange(platform, "ns-a", cid0, via="identity-binding") == ExchangeResult(True, "", "")
    refused = exchange(platform, "ns-b", cid0, via="identity-binding")  # not a subject of the binding
    assert refused.code == "access_denied" and "system:serviceaccount:ns-b:workspace" in refused.message
    assert exchange(platform, "ns-a", cid1, via="identity-binding").code == "access_denied"  # RBAC for cid0 only
    assert exchange(platform, "ns-a", cid0, via="fic").code == "AADSTS700211"  # only the IB issuer's FIC: Entra refuses


def test_deleting_the_binding_ends_the_binding_path_but_its_fic_stays(platform: Platform, control: Any) -> None:
    from tests.emulators.arm.test_aks import aks_client, cluster, fic_names

    cid0 = platform.baseline.pool_client_ids[0]
    workspace(platform, "ns-a")
    grant(platform, cid0, ["ns-a"])
    bind(platform, 0, control)
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    assert exchange(platform, "ns-a", cid0, via="identity-binding").granted
    aks_client().identity_bindings.begin_delete(*cluster(platform), "pool0").result(timeout=30)
    assert exchange(platform, "ns-a", cid0, via="identity-binding").code == "unauthorized_client"
    assert BINDING_FIC in fic_names(platform, 0)


def test_removing_the_subject_ends_the_grant_at_once(platform: Platform, control: Any) -> None:
    cid0 = platform.baseline.pool_client_ids[0]
    for ns in ("ns-a", "ns-b"):
        workspace(platform, ns)
    grant(platform, cid0, ["ns-a", "ns-b"])
    bind(platform, 0, control)
    platform.clock.advance(platform.entra.settings["fic_propagation_seconds"])
    assert exchange(platform, "ns-b", cid0, via="identity-binding").granted
    rbac = k8s.RbacAuthorizationV1Api(admin(platform))
    rbac.patch_cluster_role_binding(f"use-mi-{cid0}", [{"op": "remove", "path": "/subjects/1"}])
    assert exchange(platform, "ns-b", cid0, via="identity-binding").code == "access_denied"
    assert exchange(platform, "ns-a", cid0, via="identity-binding").granted


def test_fic_path_and_a_missing_service_account(platform: Platform) -> None:
    b = platform.baseline
    workspace(platform, "ns-c")
    platform.arm.seed_fic(
        b.pool_resource_group,
        b.pool_identity_name(2),
        "coder-ws-ns-c",
        b.oidc_issuer,
        "system:serviceaccount:ns-c:workspace",
    )
    assert exchange(platform, "ns-c", b.pool_client_ids[2], via="fic").granted
    assert exchange(platform, "ns-c", b.pool_client_ids[1], via="fic").code == "AADSTS700211"  # no FIC of that issuer
    assert exchange(platform, "ns-c", b.pool_client_ids[2], via="identity-binding").code == "access_denied"
    assert exchange(platform, "ns-none", b.pool_client_ids[2], via="fic") == ExchangeResult(
        False, "k8s:404", "TokenRequest refused: Not Found"
    )
    with pytest.raises(ValueError, match="via"):
        exchange(platform, "ns-c", b.pool_client_ids[2], via="both")  # type: ignore[arg-type]
