"""ARM Microsoft.ManagedIdentity (STUB: being written)."""

from __future__ import annotations

from typing import Any

from tests.emulators.core import Emulator


class ArmEmulator(Emulator):
    service = "arm"
    case_insensitive_paths = True

    def identity_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        return None

    def federated_credentials_of(self, client_id: str) -> list[dict[str, Any]]:
        return []
