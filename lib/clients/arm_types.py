"""The data the ARM client takes and returns for federated identity credentials, without the SDK: the
fic-reconcile plan works on these, and importing them costs no azure-core or azure-mgmt-msi import."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class FicSpec:
    issuer: str
    subject: str
    audiences: tuple[str, ...]


@dataclass(frozen=True, order=True)
class ObservedFic:
    name: str
    spec: FicSpec


@dataclass(frozen=True, order=True)
class ObservedBinding:
    """An AKS identity binding (Microsoft.ContainerService/managedClusters/identityBindings) as ARM lists it.
    ARM gives it no tags: its name is the only ownership mark."""

    name: str
    identity_id: str  # properties.managedIdentity.resourceId
    client_id: str  # properties.managedIdentity.clientId (read-only, "" when ARM leaves it out)
    state: str  # properties.provisioningState
    issuer: str = ""  # properties.oidcIssuer.oidcIssuerUrl: the issuer of the identity's `aks-identity-binding` FIC
