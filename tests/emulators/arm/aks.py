"""ARM Microsoft.ContainerService, api-version 2026-08-01: one managed cluster (GET) and its identity bindings
(`managedClusters/{cluster}/identityBindings/{name}`: PUT and DELETE as long-running operations, GET, paged LIST),
the way azure-mgmt-containerservice 41.8.0 (`ContainerServiceClient(...).identity_bindings`) sees them.

Sources:
- [spec] azure-mgmt-containerservice 41.8.0 operations/_operations.py (IdentityBindingsOperations, generated from
  Azure/azure-rest-api-specs specification/containerservice/.../aks/stable/2026-08-01): PUT answers 200 or 201,
  the 201 with `Azure-AsyncOperation`, `Location` and `Retry-After`, and the SDK polls (ARMPolling); DELETE answers
  202 (same headers) or 204; GET 200; LIST 200 `{value, nextLink}`. models/_models.py: `properties.managedIdentity.
  resourceId` (read/create only: immutable), read-only `objectId`, `clientId`, `tenantId`, `oidcIssuer.oidcIssuerUrl`,
  `provisioningState` (Succeeded, Failed, Canceled, Creating, Updating, Deleting), `eTag`.
- [spec] examples/IdentityBindings_Delete.json (2026-08-01): 202 with a Location under
  `providers/Microsoft.ContainerService/locations/<loc>/...`, or 204.
- [spec] the binding name: minLength 1, maxLength 63, pattern `^[a-z][a-z0-9]{0,63}$` (Azure/bicep-types-az's
  generated types for managedClusters/identityBindings): no hyphens.
- [doc] MicrosoftDocs azure-aks-docs articles/aks/identity-bindings.md and identity-bindings-concepts.md: creating
  a binding makes (or reuses) one FIC named `aks-identity-binding` on the identity, shared by every binding of that
  identity, issuer `https://ib.oic.prod-aks.azure.com/<MI-tenant-id>/<MI-client-id>` (the binding's
  oidcIssuer.oidcIssuerUrl); "There's no automatic garbage collection of the FIC ... when the last identity binding
  referencing a UAMI is deleted"; not supported on clusters with API server VNet integration.
- [field] AKS's async operation URLs `.../providers/Microsoft.ContainerService/locations/<loc>/operations/<id>` and
  `.../operationresults/<id>`, status bodies `{"name", "status": "InProgress"|"Succeeded"|"Failed", "startTime",
  "endTime", "error"}`; `PropertyChangeNotAllowed` for an immutable property.
[unconfirmed], because no document says: the FIC's subject (here the identity's client id) and audience
(api://AzureADTokenExchange); the error when the identity already holds 20 FICs (here MSI's own over-limit 400,
surfaced through the async operation as AKS surfaces downstream failures: the operation ends Failed and the binding
stays, provisioningState Failed; `binding_fic_limit_phase: "sync"` answers the PUT itself instead); the texts of the
VNet-integration and validation errors. Not modelled: ARM's linked authorization check of the caller's FIC write
permission (the docs say creation fails without it), PATCH, eTags/If-Match, other managedCluster operations.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.emulators.arm.aks_shapes import (
    BINDING_TYPE,
    CLUSTER_TYPE,
    binding_identity_id,
    binding_json,
    binding_name,
    cluster_id,
    cluster_json,
    ib_issuer,
)
from tests.emulators.arm.resources import IDENTITY_TYPE, page
from tests.emulators.arm.validation import bad_request, not_found
from tests.emulators.core import HttpError, Request, Response, route

AKS_API_VERSION = "2026-08-01"
BINDING_FIC = "aks-identity-binding"
_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_CLUSTER = (
    _SUB + r"/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerService/managedClusters/(?P<cluster>[^/]+)"
)
_BINDINGS = _CLUSTER + r"/identityBindings"
_OPS = _SUB + r"/providers/Microsoft\.ContainerService/locations/(?P<loc>[^/]+)"

AKS_DEFAULTS: dict[str, Any] = {
    "binding_lro_seconds": 1.0,  # real seconds an identity binding PUT/DELETE stays InProgress
    "binding_retry_after": 1,  # Retry-After on the 201/202 and on InProgress polls (the SDK waits this long)
    "binding_page_size": 10,
    "binding_fic_limit_phase": "async",  # where a full identity fails the PUT: "async" (the operation) or "sync"
    "api_server_vnet_integration": False,  # the cluster's apiServerAccessProfile.enableVnetIntegration
}


class AksApi:
    """Mixed into ArmEmulator (which supplies lock, platform, settings, identities and the lookups of store.py)."""

    clusters: dict[tuple[str, str], dict[str, Any]]
    operations: dict[str, dict[str, Any]]

    def reset_aks(self) -> None:
        b = self.platform.baseline
        self.clusters, self.operations = {}, {}
        self.seed_cluster(b.cluster_resource_group, b.cluster_name)

    def seed_cluster(self, rg: str, name: str) -> dict[str, Any]:
        with self.lock:
            self.resource_groups.setdefault(rg.lower(), rg)
            cluster = {"name": name, "resource_group": rg, "location": self.platform.baseline.location, "bindings": {}}
            self.clusters[(rg.lower(), name.lower())] = cluster
            return cluster

    # ---- reads ------------------------------------------------------------------------------------------

    @route("GET", _CLUSTER, "aks.cluster.get")
    def get_cluster(self, req: Request) -> Response:
        with self.lock:
            return Response(200, self._cluster_json(self._cluster(req)))

    @route("GET", _BINDINGS, "aks.binding.list")
    def list_bindings(self, req: Request) -> Response:
        with self.lock:
            cluster = self._cluster(req)
            self._settle(cluster)
            items = [self._binding_json(cluster, b) for _, b in sorted(cluster["bindings"].items())]
        return page(req, items, int(self.settings["binding_page_size"]), AKS_API_VERSION)

    @route("GET", _BINDINGS + r"/(?P<binding>[^/]+)", "aks.binding.get")
    def get_binding(self, req: Request) -> Response:
        with self.lock:
            cluster = self._cluster(req)
            self._settle(cluster)
            return Response(200, self._binding_json(cluster, self._binding(cluster, req)))

    # ---- writes -----------------------------------------------------------------------------------------

    @route("PUT", _BINDINGS + r"/(?P<binding>[^/]+)", "aks.binding.put")
    def put_binding(self, req: Request) -> Response:
        name = binding_name(req)
        resource_id = binding_identity_id(req)
        with self.lock:
            cluster = self._cluster(req)
            self._settle(cluster)
            if self.settings["api_server_vnet_integration"]:
                raise bad_request(  # [doc] not supported; the text is [unconfirmed]
                    "Identity bindings are not supported on clusters with API server VNet integration enabled.",
                    "OperationNotAllowed",
                )
            ident = self._identity_by_id(resource_id)
            existing = cluster["bindings"].get(name)
            if existing is not None:
                return self._update(cluster, existing, resource_id)
            if self.settings["binding_fic_limit_phase"] == "sync":
                self._check_fic_room(ident)
            binding = {"name": name, "identity": self._key(ident), "resource_id": resource_id}
            cluster["bindings"][name] = binding
            op = self._start(cluster, binding, "Creating")
            return Response(201, self._binding_json(cluster, binding), self._lro_headers(op))

    def _update(self, cluster: dict[str, Any], binding: dict[str, Any], resource_id: str) -> Response:
        if resource_id.lower() != binding["resource_id"].lower():
            raise bad_request(  # [field] AKS's code for an immutable property; resourceId is read/create only
                "Changing property 'properties.managedIdentity.resourceId' is not allowed.", "PropertyChangeNotAllowed"
            )
        if binding["state"] in ("Creating", "Updating", "Deleting"):
            raise self._busy(binding)
        op = self._start(cluster, binding, "Updating")
        return Response(200, self._binding_json(cluster, binding), self._lro_headers(op))

    @route("DELETE", _BINDINGS + r"/(?P<binding>[^/]+)", "aks.binding.delete")
    def delete_binding(self, req: Request) -> Response:
        with self.lock:
            cluster = self._cluster(req)
            self._settle(cluster)
            binding = cluster["bindings"].get(req.params["binding"].lower())
            if binding is None:
                return Response(204)
            if binding["state"] == "Deleting":  # already going: the same operation again
                return Response(202, None, self._lro_headers(self.operations[binding["op"]]))
            if binding["state"] in ("Creating", "Updating"):
                raise self._busy(binding)
            op = self._start(cluster, binding, "Deleting")
            return Response(202, None, self._lro_headers(op))

    @staticmethod
    def _busy(binding: dict[str, Any]) -> HttpError:
        """[unconfirmed] text: AKS refuses a write while the resource's own operation runs."""
        message = f"Operation is not allowed: another operation ({binding['state']}) is in progress."
        return HttpError(409, {"error": {"code": "OperationNotAllowed", "message": message}})

    # ---- the long-running operations ------------------------------------------------------------------------

    @route("GET", _OPS + r"/operations/(?P<op>[^/]+)", "aks.operation.get")
    def operation_status(self, req: Request) -> Response:
        with self.lock:
            op = self._operation(req)
            body: dict[str, Any] = {"name": op["id"], "status": op["status"], "startTime": op["start"]}
            if op["status"] != "InProgress":
                body["endTime"] = op["end"]
            if op.get("error"):
                body["error"] = dict(op["error"])
            headers = {"Retry-After": str(self.settings["binding_retry_after"])} if op["status"] == "InProgress" else {}
            return Response(200, body, headers)

    @route("GET", _OPS + r"/operationresults/(?P<op>[^/]+)", "aks.operation.result")
    def operation_result(self, req: Request) -> Response:
        with self.lock:
            op = self._operation(req)
            if op["status"] == "InProgress":
                return Response(202, None, self._lro_headers(op))
            if op.get("error"):
                return Response(400, {"error": dict(op["error"])})
            return Response(204)

    def _start(self, cluster: dict[str, Any], binding: dict[str, Any], state: str) -> dict[str, Any]:
        op_id = str(uuid.uuid4())
        op = {
            "id": op_id,
            "cluster": (cluster["resource_group"].lower(), cluster["name"].lower()),
            "binding": binding["name"],
            "kind": state,
            "status": "InProgress",
            "start": self.platform.clock.now().isoformat(),
            "due": time.monotonic() + float(self.settings["binding_lro_seconds"]),
            "location": cluster["location"],
        }
        self.operations[op_id] = op
        binding["state"], binding["op"] = state, op_id
        return op

    def _settle(self, cluster: dict[str, Any]) -> None:
        """Finish every operation of this cluster whose time has come (the RP's worker, run lazily on reads)."""
        for op in self.operations.values():
            ours = op["status"] == "InProgress" and op["cluster"] == self._cluster_key(cluster)
            if ours and time.monotonic() >= op["due"]:
                self._finish(cluster, op)

    def _finish(self, cluster: dict[str, Any], op: dict[str, Any]) -> None:
        op["end"] = self.platform.clock.now().isoformat()
        binding = cluster["bindings"].get(op["binding"])
        if binding is None:
            op["status"] = "Succeeded"
            return
        if op["kind"] == "Deleting":  # [doc] the FIC stays: no garbage collection
            del cluster["bindings"][op["binding"]]
            op["status"] = "Succeeded"
            return
        ident = self.identities.get(binding["identity"])
        try:
            if ident is None:
                raise bad_request(f"The managed identity '{binding['resource_id']}' was not found.", "NotFound")
            self._ensure_fic(ident)
        except HttpError as exc:
            op["status"], op["error"] = "Failed", exc.response.body["error"]
            binding["state"] = "Failed"
            return
        op["status"], binding["state"] = "Succeeded", "Succeeded"

    def _ensure_fic(self, ident: dict[str, Any]) -> None:
        """[doc] AKS creates (or reuses) the one `aks-identity-binding` FIC; it takes one of the 20 slots."""
        if BINDING_FIC in ident["fics"]:
            return
        self._check_fic_room(ident)
        b = self.platform.baseline
        props = {
            "issuer": ib_issuer(b.tenant_id, ident["client_id"]),
            "subject": ident["client_id"],  # [unconfirmed]: not documented
            "audiences": ["api://AzureADTokenExchange"],
        }
        self.write_fic(ident, BINDING_FIC, props)

    def _check_fic_room(self, ident: dict[str, Any]) -> None:
        if BINDING_FIC not in ident["fics"]:  # MSI's own over-limit 400 (validation.check_room)
            self._check_room(ident, None)

    def _lro_headers(self, op: dict[str, Any]) -> dict[str, str]:
        base = (
            f"{self.url}/subscriptions/{self.platform.baseline.subscription_id}"
            f"/providers/Microsoft.ContainerService/locations/{op['location']}"
        )
        return {
            "Azure-AsyncOperation": f"{base}/operations/{op['id']}?api-version={AKS_API_VERSION}",
            "Location": f"{base}/operationresults/{op['id']}?api-version={AKS_API_VERSION}",
            "Retry-After": str(self.settings["binding_retry_after"]),
        }

    # ---- lookups and shapes ---------------------------------------------------------------------------------

    def _cluster(self, req: Request) -> dict[str, Any]:
        rg = self._resource_group(req)
        cluster = self.clusters.get((rg.lower(), req.params["cluster"].lower()))
        if cluster is None:
            raise not_found(  # [field] ARM's generic text
                f"The Resource '{CLUSTER_TYPE}/{req.params['cluster']}' under resource group '{rg}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                "ResourceNotFound",
            )
        return cluster

    def _cluster_key(self, cluster: dict[str, Any]) -> tuple[str, str]:
        return (cluster["resource_group"].lower(), cluster["name"].lower())

    def _binding(self, cluster: dict[str, Any], req: Request) -> dict[str, Any]:
        binding = cluster["bindings"].get(req.params["binding"].lower())
        if binding is None:
            raise not_found(  # [field] ARM's generic text for a missing child resource
                f"The Resource '{BINDING_TYPE}/{cluster['name']}/{req.params['binding']}' under resource group "
                f"'{cluster['resource_group']}' was not found. For more details please go to "
                "https://aka.ms/ARMResourceNotFoundFix",
                "ResourceNotFound",
            )
        return binding

    def _operation(self, req: Request) -> dict[str, Any]:
        self._subscription(req)
        op = self.operations.get(req.params["op"])
        if op is None:
            raise not_found(f"Operation '{req.params['op']}' was not found.", "NotFound")  # [unconfirmed] text
        cluster = self.clusters.get(op["cluster"])
        if cluster is not None:
            self._settle(cluster)
        return op

    def _identity_by_id(self, resource_id: str) -> dict[str, Any]:
        parts = resource_id.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        shape_ok = (
            len(parts) == 8
            and lowered[0] == "subscriptions"
            and lowered[2] == "resourcegroups"
            and lowered[4] == "providers"
            and "/".join(lowered[5:7]) == IDENTITY_TYPE.lower()
        )
        if not shape_ok:
            raise bad_request(  # [unconfirmed] text
                f"The value '{resource_id}' of properties.managedIdentity.resourceId is not a valid user-assigned "
                "managed identity resource id.",
                "InvalidParameter",
            )
        ident = self.identities.get((lowered[3], lowered[7]))
        if lowered[1] != self.platform.baseline.subscription_id or ident is None:
            raise bad_request(
                f"The managed identity '{resource_id}' was not found.", "InvalidParameter"
            )  # [unconfirmed]
        return ident

    def cluster_id(self, cluster: dict[str, Any]) -> str:
        return cluster_id(self.platform.baseline.subscription_id, cluster)

    def _cluster_json(self, cluster: dict[str, Any]) -> dict[str, Any]:
        b = self.platform.baseline
        vnet = bool(self.settings["api_server_vnet_integration"])
        return cluster_json(b.subscription_id, b.oidc_issuer, cluster, vnet)

    def _binding_json(self, cluster: dict[str, Any], binding: dict[str, Any]) -> dict[str, Any]:
        b = self.platform.baseline
        ident = self.identities.get(binding["identity"]) or {}
        return binding_json(b.subscription_id, b.tenant_id, cluster, binding, ident)

    # ---- what the identity binding proxy (tests/emulators/ibproxy) asks ---------------------------------------

    def binding_for_client_id(self, client_id: str) -> dict[str, Any] | None:
        """The platform cluster's Succeeded binding of the identity with `client_id`, or None."""
        b = self.platform.baseline
        with self.lock:
            cluster = self.clusters.get((b.cluster_resource_group.lower(), b.cluster_name.lower()))
            if cluster is None:
                return None
            self._settle(cluster)
            for binding in cluster["bindings"].values():
                ident = self.identities.get(binding["identity"])
                if binding["state"] == "Succeeded" and ident and ident["client_id"].lower() == client_id.lower():
                    return dict(binding)
        return None
