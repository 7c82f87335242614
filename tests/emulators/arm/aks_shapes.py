"""Shapes and request checks for arm/aks.py (sources there): the binding name pattern, the PUT body, the managed
cluster and identity binding JSON bodies."""

from __future__ import annotations

from typing import Any

from tests.emulators.arm.validation import bad_request, json_object
from tests.emulators.core import Request

CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
BINDING_TYPE = CLUSTER_TYPE + "/identityBindings"
IB_ISSUER = "https://ib.oic.prod-aks.azure.com/{tenant}/{client_id}"
BINDING_NAME_MAX = 63


def ib_issuer(tenant_id: str, client_id: str) -> str:
    return IB_ISSUER.format(tenant=tenant_id, client_id=client_id)


def cluster_id(sub: str, cluster: dict[str, Any]) -> str:
    rg, name = cluster["resource_group"], cluster["name"]
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{CLUSTER_TYPE}/{name}"


def cluster_json(sub: str, oidc_issuer: str, cluster: dict[str, Any], vnet_integration: bool) -> dict[str, Any]:
    return {
        "id": cluster_id(sub, cluster),
        "name": cluster["name"],
        "type": CLUSTER_TYPE,
        "location": cluster["location"],
        "properties": {
            "provisioningState": "Succeeded",
            "oidcIssuerProfile": {"enabled": True, "issuerURL": oidc_issuer},
            "securityProfile": {"workloadIdentity": {"enabled": True}},
            "apiServerAccessProfile": {"enableVnetIntegration": vnet_integration},
        },
    }


def binding_json(
    sub: str, tenant_id: str, cluster: dict[str, Any], binding: dict[str, Any], ident: dict[str, Any]
) -> dict[str, Any]:
    client_id = ident.get("client_id", "")
    return {
        "id": f"{cluster_id(sub, cluster)}/identityBindings/{binding['name']}",
        "name": binding["name"],
        "type": BINDING_TYPE,
        "properties": {
            "managedIdentity": {
                "resourceId": binding["resource_id"],
                "objectId": ident.get("principal_id", ""),
                "clientId": client_id,
                "tenantId": tenant_id,
            },
            "oidcIssuer": {"oidcIssuerUrl": ib_issuer(tenant_id, client_id)},
            "provisioningState": binding["state"],
        },
    }


def binding_name(req: Request) -> str:
    name = req.params["binding"]
    if not (1 <= len(name) <= BINDING_NAME_MAX) or not name_ok(name):
        raise bad_request(  # [spec] the pattern; the text is [unconfirmed]
            f"The identity binding name '{name}' is invalid. It must match '^[a-z][a-z0-9]{{0,63}}$' and be at most "
            f"{BINDING_NAME_MAX} characters.",
            "InvalidParameter",
        )
    return name


def name_ok(name: str) -> bool:
    return name[0].isascii() and name[0].islower() and all(c.isascii() and (c.islower() or c.isdigit()) for c in name)


def binding_identity_id(req: Request) -> str:
    body = json_object(req)
    props = body.get("properties")
    identity = props.get("managedIdentity") if isinstance(props, dict) else None
    resource_id = identity.get("resourceId") if isinstance(identity, dict) else None
    if not isinstance(resource_id, str) or not resource_id:
        raise bad_request(  # [unconfirmed] text; the spec marks properties.managedIdentity.resourceId required
            "Required parameter properties.managedIdentity.resourceId is missing (null).", "InvalidParameter"
        )
    return resource_id
