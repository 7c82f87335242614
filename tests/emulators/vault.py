"""HashiCorp Vault (STUB: being written)."""

from __future__ import annotations

from tests.emulators.core import Emulator


class VaultEmulator(Emulator):
    service = "vault"
    root_token = "hvs.root-token-stub-0000000000"
