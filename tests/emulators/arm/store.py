"""The ARM emulator's in-memory identity store: user-assigned identities and their FICs, seeding, the contract
entra/emulator.py calls (identity and credentials by client id), and the lookups that answer ARM's 400/404s.

Sources: shared/api-specs/azure/msi/2024-11-30 and NOTES.md §1. Tags: [doc] documented, [field] quoted from
real responses, [unconfirmed] guessed.
"""

from __future__ import annotations

import uuid
from typing import Any

from tests.emulators.arm.resources import IDENTITY_TYPE, fic_json, identity_id, identity_json
from tests.emulators.arm.validation import bad_request, not_found
from tests.emulators.core import Emulator, Request


class IdentityStore(Emulator):
    """State (re-seeded by ArmEmulator.reset): `identities` keyed by lower-cased (resource group, name), each
    holding its FICs under "fics" keyed by lower-cased name; `resource_groups` maps lower-cased to display name."""

    resource_groups: dict[str, str]
    identities: dict[tuple[str, str], dict[str, Any]]

    # ---- seeding and the contract entra/emulator.py calls ------------------------------------------------------

    def seed_identity(
        self,
        rg: str,
        name: str,
        location: str | None = None,
        client_id: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create (or return) an identity directly, with a deterministic client id when one is given."""
        with self.lock:
            self.resource_groups.setdefault(rg.lower(), rg)
            key = (rg.lower(), name.lower())
            if key not in self.identities:
                b = self.platform.baseline
                self.identities[key] = {
                    "name": name,
                    "resource_group": self.resource_groups[rg.lower()],
                    "location": location or b.location,
                    "tags": dict(tags or {}),
                    "tenant_id": b.tenant_id,
                    "principal_id": b.principal_id(name) if client_id else str(uuid.uuid4()),
                    "client_id": client_id or str(uuid.uuid4()),
                    "isolation_scope": "None",
                    "fics": {},
                }
            return self.identities[key]

    def seed_fic(self, rg: str, identity: str, name: str, issuer: str, subject: str, audiences: Any = None) -> None:
        with self.lock:
            ident = self.identities[(rg.lower(), identity.lower())]
            ident["fics"][name.lower()] = {
                "name": name,
                "issuer": issuer,
                "subject": subject,
                "audiences": list(audiences or ["api://AzureADTokenExchange"]),
            }

    def identity_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return {k: v for k, v in ident.items() if k != "fics"}
        return None

    def federated_credentials_of(self, client_id: str) -> list[dict[str, Any]]:
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return [{**f, "audiences": list(f["audiences"])} for f in ident["fics"].values()]
        return []

    # ---- lookups --------------------------------------------------------------------------------------

    def _subscription(self, req: Request) -> None:
        sub = req.params["sub"]
        try:
            uuid.UUID(sub)
        except ValueError:
            raise bad_request(
                f"The provided subscription identifier '{sub}' is malformed or invalid.", "InvalidSubscriptionId"
            ) from None
        if sub.lower() != self.platform.baseline.subscription_id:
            raise not_found(f"The subscription '{sub}' could not be found.", "SubscriptionNotFound")  # [field]

    def _resource_group(self, req: Request) -> str:
        self._subscription(req)
        rg = req.params["rg"]
        with self.lock:
            if rg.lower() not in self.resource_groups:
                raise not_found(f"Resource group '{rg}' could not be found.", "ResourceGroupNotFound")  # [field]
            return self.resource_groups[rg.lower()]

    def _identity(self, req: Request) -> dict[str, Any]:
        rg, name = self._resource_group(req), req.params["name"]
        ident = self.identities.get((rg.lower(), name.lower()))
        if ident is None:
            # [field] ARM's generic text, e.g. az CLI "(ResourceNotFound) The Resource '...' under resource group"
            raise not_found(
                f"The Resource '{IDENTITY_TYPE}/{name}' under resource group '{rg}' was not found. "
                "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
                "ResourceNotFound",
            )
        return ident

    def _parent(self, req: Request) -> dict[str, Any]:
        self._resource_group(req)
        ident = self.identities.get((req.params["rg"].lower(), req.params["name"].lower()))
        if ident is None:
            raise not_found("The parent user-assigned identity doesn't exist.")  # [doc] considerations §Errors
        return ident

    def _key(self, ident: dict[str, Any]) -> tuple[str, str]:
        return (ident["resource_group"].lower(), ident["name"].lower())

    # ---- rendering ------------------------------------------------------------------------------------

    def _identity_id(self, ident: dict[str, Any]) -> str:
        return identity_id(self.platform.baseline.subscription_id, ident)

    def _identity_json(self, ident: dict[str, Any]) -> dict[str, Any]:
        return identity_json(self.platform.baseline.subscription_id, ident)

    def _fic_json(self, ident: dict[str, Any], fic: dict[str, Any]) -> dict[str, Any]:
        return fic_json(self.platform.baseline.subscription_id, ident, fic)
