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
