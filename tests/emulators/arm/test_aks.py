"""AKS identity bindings in the ARM emulator through the real azure-mgmt-containerservice 41.8.0 (api-version
2026-08-01) and azure-mgmt-msi; raw requests where the SDK hides the wire. Sources are in arm/aks.py; each test
names the behaviour it pins down and where it comes from."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.msi import ManagedServiceIdentityClient

from lib.clients.azure_auth import azure_credential
from tests.emulators.arm.aks import BINDING_FIC, ib_issuer
from tests.emulators.platform import Platform


def aks_client() -> ContainerServiceClient:
    return ContainerServiceClient(
        azure_credential(os.environ),
        os.environ["AZURE_SUBSCRIPTION_ID"],
        base_url=os.environ["CWJ_ARM_ENDPOINT"],
        polling_interval=0.2,
    )


def msi_client() -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(
        azure_credential(os.environ), os.environ["AZURE_SUBSCRIPTION_ID"], base_url=os.environ["CWJ_ARM_ENDPOINT"]
    )


def cluster(platform: Platform) -> tuple[str, str]:
    return platform.baseline.cluster_resource_group, platform.baseline.cluster_name


def identity_id(platform: Platform, index: int) -> str:
    b = platform.baseline
    return (
        f"/subscriptions/{b.subscription_id}/resourceGroups/{b.pool_resource_group}/providers/"
        f"Microsoft.ManagedIdentity/userAssignedIdentities/{b.pool_identity_name(index)}"
    )


def body(resource_id: str) -> dict[str, Any]:
    return {"properties": {"managedIdentity": {"resourceId": resource_id}}}


def fic_names(platform: Platform, index: int) -> list[str]:
    rg = platform.baseline.pool_resource_group
    return [
        f.name
        for f in msi_client().federated_identity_credentials.list(rg, platform.baseline.pool_identity_name(index))
    ]


def fill_fics(platform: Platform, index: int, count: int) -> None:
    """Seed `count` FICs on a pool identity through ARM, as a person would (azure-mgmt-msi)."""
    b, msi = platform.baseline, msi_client()
    for i in range(count):
        fic = {
            "properties": {
                "issuer": b.oidc_issuer,
                "subject": f"system:serviceaccount:fill-{i}:workspace",
                "audiences": ["api://AzureADTokenExchange"],
            }
        }
        msi.federated_identity_credentials.create_or_update(
            b.pool_resource_group, b.pool_identity_name(index), f"coder-ws-fill-{i}", fic
        )


def test_the_cluster_env_var_names_a_managed_cluster_the_sdk_reads(platform: Platform) -> None:
    cid = os.environ["CWJ_AKS_CLUSTER_ID"]
    assert cid == platform.baseline.cluster_id
    mc = aks_client().managed_clusters.get(*cluster(platform))
    assert (
        mc.id.lower() == cid.lower() and mc.properties.oidc_issuer_profile.issuer_url == platform.baseline.oidc_issuer
    )


def test_create_is_a_long_running_operation_then_the_binding_succeeds_with_the_ib_issuer(platform: Platform) -> None:
    """[spec] 201 + Azure-AsyncOperation/Location/Retry-After, provisioningState Creating, then Succeeded."""
    poller = aks_client().identity_bindings.begin_create_or_update(
        *cluster(platform), "pool0", body(identity_id(platform, 0))
    )
    first = aks_client().identity_bindings.get(*cluster(platform), "pool0")
    assert first.properties.provisioning_state == "Creating"
    assert BINDING_FIC not in fic_names(platform, 0)  # the FIC comes with the operation's end, not the 201
    done = poller.result(timeout=30)
    client_id = platform.baseline.client_id(platform.baseline.pool_identity_name(0))
    assert done.properties.provisioning_state == "Succeeded"
    assert done.properties.managed_identity.client_id == client_id
    assert (
        done.properties.oidc_issuer.oidc_issuer_url
        == f"https://ib.oic.prod-aks.azure.com/{platform.baseline.tenant_id}/{client_id}"
    )
    fics = {
        f.name: f
        for f in msi_client().federated_identity_credentials.list(
            platform.baseline.pool_resource_group, platform.baseline.pool_identity_name(0)
        )
    }
    assert fics[BINDING_FIC].issuer == ib_issuer(platform.baseline.tenant_id, client_id)  # [doc] aks-identity-binding


def test_raw_put_answers_201_with_the_lro_headers_and_polls_to_succeeded(platform: Platform) -> None:
    b = platform.baseline
    url = f"{os.environ['CWJ_ARM_ENDPOINT']}{b.cluster_id}/identityBindings/pool1?api-version=2026-08-01"
    token = azure_credential(os.environ).get_token("https://management.azure.com/.default").token
    headers = {"Authorization": f"Bearer {token}"}
    resp = requests.put(url, json=body(identity_id(platform, 1)), headers=headers, timeout=10)
    assert resp.status_code == 201 and resp.json()["properties"]["provisioningState"] == "Creating"
    status_url = resp.headers["Azure-AsyncOperation"]
    assert "/providers/Microsoft.ContainerService/locations/" in status_url and resp.headers["Retry-After"] == "1"
    assert requests.get(status_url, headers=headers, timeout=10).json()["status"] == "InProgress"
    assert requests.get(resp.headers["Location"], headers=headers, timeout=10).status_code == 202
    time.sleep(1.1)
    assert requests.get(status_url, headers=headers, timeout=10).json()["status"] == "Succeeded"
    assert requests.get(resp.headers["Location"], headers=headers, timeout=10).status_code == 204
    again = requests.put(url, json=body(identity_id(platform, 1)), headers=headers, timeout=10)
    assert again.status_code == 200 and again.json()["properties"]["provisioningState"] == "Updating"


def test_the_binding_fic_is_shared_and_never_garbage_collected(platform: Platform) -> None:
    """[doc] one FIC per identity for all its bindings; deleting the last binding leaves it."""
    ib = aks_client().identity_bindings
    ib.begin_create_or_update(*cluster(platform), "a", body(identity_id(platform, 2))).result(timeout=30)
    ib.begin_create_or_update(*cluster(platform), "b", body(identity_id(platform, 2))).result(timeout=30)
    assert fic_names(platform, 2).count(BINDING_FIC) == 1
    ib.begin_delete(*cluster(platform), "a").result(timeout=30)
    ib.begin_delete(*cluster(platform), "b").result(timeout=30)
    with pytest.raises(ResourceNotFoundError):
        ib.get(*cluster(platform), "a")
    assert [x.name for x in ib.list_by_managed_cluster(*cluster(platform))] == []
    assert BINDING_FIC in fic_names(platform, 2)


def test_list_pages_with_next_link(platform: Platform, control: Any) -> None:
    control.configure("arm", binding_page_size=2, binding_lro_seconds=0)
    ib = aks_client().identity_bindings
    for i, name in enumerate(["x", "y", "z"]):
        ib.begin_create_or_update(*cluster(platform), name, body(identity_id(platform, i))).result(timeout=30)
    control.clear_requests()
    assert [x.name for x in ib.list_by_managed_cluster(*cluster(platform))] == ["x", "y", "z"]
    assert control.count("arm", "aks.binding.list") == 2


@pytest.mark.parametrize("phase", ["async", "sync"])
def test_an_identity_at_20_fics_refuses_the_binding_with_msis_limit_error(
    platform: Platform, control: Any, phase: str
) -> None:
    """[doc] the binding's FIC takes one of the 20 slots; the RP's error is [unconfirmed]: MSI's 400 surfaces either
    through the failed operation (default) or on the PUT (binding_fic_limit_phase sync)."""
    control.configure("arm", binding_fic_limit_phase=phase, binding_lro_seconds=0.2)
    fill_fics(platform, 0, 20)
    ib = aks_client().identity_bindings
    with pytest.raises(HttpResponseError, match="Too many Federated Identity Credentials") as exc:
        ib.begin_create_or_update(*cluster(platform), "full", body(identity_id(platform, 0))).result(timeout=30)
    assert exc.value.error is not None and exc.value.error.code == "BadRequest"
    assert BINDING_FIC not in fic_names(platform, 0)
    listed = {x.name: x.properties.provisioning_state for x in ib.list_by_managed_cluster(*cluster(platform))}
    assert listed == ({"full": "Failed"} if phase == "async" else {})  # a failed create leaves a Failed binding


def test_a_binding_fic_already_there_needs_no_free_slot(platform: Platform) -> None:
    ib = aks_client().identity_bindings
    ib.begin_create_or_update(*cluster(platform), "first", body(identity_id(platform, 0))).result(timeout=30)
    fill_fics(platform, 0, 19)
    done = ib.begin_create_or_update(*cluster(platform), "second", body(identity_id(platform, 0))).result(timeout=30)
    assert done.properties.provisioning_state == "Succeeded" and len(fic_names(platform, 0)) == 20


def test_api_server_vnet_integration_refuses_bindings(platform: Platform, control: Any) -> None:
    """[doc] identity-bindings-concepts.md: not supported with API server VNet integration."""
    control.configure("arm", api_server_vnet_integration=True)
    with pytest.raises(HttpResponseError, match="VNet integration") as exc:
        aks_client().identity_bindings.begin_create_or_update(*cluster(platform), "v", body(identity_id(platform, 0)))
    assert exc.value.status_code == 400


def test_bad_bodies_names_and_an_identity_change_are_refused(platform: Platform) -> None:
    ib = aks_client().identity_bindings
    with pytest.raises(HttpResponseError) as exc:  # [spec] pattern ^[a-z][a-z0-9]{0,63}$: no hyphens
        ib.begin_create_or_update(*cluster(platform), "pool-0", body(identity_id(platform, 0)))
    assert exc.value.status_code == 400 and exc.value.error.code == "InvalidParameter"
    with pytest.raises(HttpResponseError) as exc:  # [spec] properties.managedIdentity.resourceId is required
        ib.begin_create_or_update(*cluster(platform), "p", {"properties": {}})
    assert exc.value.error.code == "InvalidParameter"
    with pytest.raises(HttpResponseError, match="not found"):
        ib.begin_create_or_update(*cluster(platform), "p", body(identity_id(platform, 0) + "x"))
    ib.begin_create_or_update(*cluster(platform), "p", body(identity_id(platform, 0))).result(timeout=30)
    with pytest.raises(HttpResponseError) as exc:  # [spec] resourceId is read/create only
        ib.begin_create_or_update(*cluster(platform), "p", body(identity_id(platform, 1)))
    assert exc.value.error.code == "PropertyChangeNotAllowed"


def test_wrong_api_version_and_unknown_cluster(platform: Platform) -> None:
    with pytest.raises(HttpResponseError, match="InvalidApiVersionParameter"):
        ContainerServiceClient(
            azure_credential(os.environ),
            os.environ["AZURE_SUBSCRIPTION_ID"],
            base_url=os.environ["CWJ_ARM_ENDPOINT"],
            api_version="2026-07-01",
        ).identity_bindings.get(*cluster(platform), "p")
    with pytest.raises(ResourceNotFoundError):
        aks_client().identity_bindings.get(platform.baseline.cluster_resource_group, "nope", "p")


def test_identity_binding_writes_spend_arm_write_tokens(platform: Platform, control: Any) -> None:
    """ARM throttles every provider the same way (arm/throttle.py): a drained write bucket refuses a binding PUT."""
    control.configure("arm", write_bucket=1, write_refill_per_s=0.01)
    ib = aks_client().identity_bindings
    ib.begin_create_or_update(*cluster(platform), "t", body(identity_id(platform, 0)), polling=False)
    with pytest.raises(HttpResponseError) as exc:
        ContainerServiceClient(
            azure_credential(os.environ),
            os.environ["AZURE_SUBSCRIPTION_ID"],
            base_url=os.environ["CWJ_ARM_ENDPOINT"],
            retry_total=0,
        ).identity_bindings.begin_create_or_update(*cluster(platform), "u", body(identity_id(platform, 1)))
    assert exc.value.status_code == 429


def test_a_failed_binding_succeeds_when_put_again_after_a_slot_is_freed(platform: Platform, control: Any) -> None:
    """What a job retrying a full identity meets: the Failed binding stays listed; a PUT after one FIC is deleted
    runs an Updating operation that creates the binding's FIC."""
    control.configure("arm", binding_lro_seconds=0)
    fill_fics(platform, 0, 20)
    ib = aks_client().identity_bindings
    with pytest.raises(HttpResponseError):
        ib.begin_create_or_update(*cluster(platform), "retry", body(identity_id(platform, 0))).result(timeout=30)
    b = platform.baseline
    msi_client().federated_identity_credentials.delete(
        b.pool_resource_group, b.pool_identity_name(0), "coder-ws-fill-0"
    )
    done = ib.begin_create_or_update(*cluster(platform), "retry", body(identity_id(platform, 0))).result(timeout=30)
    assert done.properties.provisioning_state == "Succeeded" and BINDING_FIC in fic_names(platform, 0)


def test_writes_while_an_operation_runs_are_409(platform: Platform, control: Any) -> None:
    control.configure("arm", binding_lro_seconds=30)
    ib = aks_client().identity_bindings
    ib.begin_create_or_update(*cluster(platform), "busy", body(identity_id(platform, 1)), polling=False)
    with pytest.raises(HttpResponseError) as exc:
        ib.begin_delete(*cluster(platform), "busy", polling=False)
    assert exc.value.status_code == 409 and exc.value.error.code == "OperationNotAllowed"
    with pytest.raises(HttpResponseError) as exc:
        ib.begin_create_or_update(*cluster(platform), "busy", body(identity_id(platform, 1)), polling=False)
    assert exc.value.status_code == 409
