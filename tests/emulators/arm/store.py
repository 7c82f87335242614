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
        """A FIC that exists since long before the test: already propagated to Entra (written_at 0)."""
        with self.lock:
            ident = self.identities[(rg.lower(), identity.lower())]
            ident["fics"][name.lower()] = {
                "name": name,
                "issuer": issuer,
                "subject": subject,
                "audiences": list(audiences or ["api://AzureADTokenExchange"]),
                "written_at": 0.0,
                "previous": None,
            }

    def write_fic(self, ident: dict[str, Any], name: str, props: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A FIC PUT through ARM: (the stored FIC, whether it existed). A create or a change of issuer, subject or
        audiences stamps `written_at` on the emulated clock and keeps what Entra still has cached (`previous`,
        None for a new FIC) until entra/emulator.py's fic_propagation_seconds have passed; a PUT that changes
        nothing keeps both. Neither key reaches ARM's wire (resources.fic_json: real FIC bodies have no
        systemData)."""
        existing = ident["fics"].get(name.lower())
        same = existing is not None and all(existing[k] == props[k] for k in ("issuer", "subject", "audiences"))
        if same:
            written_at, previous = existing["written_at"], existing["previous"]
        else:
            written_at = self.platform.clock.timestamp()
            previous = None if existing is None else self._cached(existing, written_at)
        fic = {"name": existing["name"] if existing else name, **props, "written_at": written_at, "previous": previous}
        ident["fics"][name.lower()] = fic
        return fic, existing is not None

    def _cached(self, fic: dict[str, Any], now: float) -> dict[str, Any] | None:
        """What Entra's cache holds for `fic` at `now`: the current properties once propagated, else what
        it held before (None: nothing yet)."""
        seconds = float(self.platform.entra.settings["fic_propagation_seconds"])
        if now - float(fic["written_at"]) >= seconds:
            return {k: fic[k] for k in ("issuer", "subject", "audiences")}
        previous: dict[str, Any] | None = fic["previous"]
        return previous

    def identity_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return {k: v for k, v in ident.items() if k != "fics"}
        return None

    def federated_credentials_of(self, client_id: str) -> list[dict[str, Any]]:
        """The identity's FICs as ARM stores them now (issuer, subject, audiences; written_at, previous)."""
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    return [{**f, "audiences": list(f["audiences"])} for f in ident["fics"].values()]
        return []

    def propagated_credentials_of(self, client_id: str) -> list[dict[str, Any]]:
        """What Entra's token service sees of the identity's FICs now: each FIC as it was
        fic_propagation_seconds ago (a newer create is not there yet, a newer update still shows the old one)."""
        now = self.platform.clock.timestamp()
        with self.lock:
            for ident in self.identities.values():
                if ident["client_id"].lower() == client_id.lower():
                    seen = [self._cached(f, now) for f in ident["fics"].values()]
                    return [{**c, "audiences": list(c["audiences"])} for c in seen if c is not None]
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
