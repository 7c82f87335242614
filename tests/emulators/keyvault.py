"""Key Vault secrets data plane (STUB: being written)."""

from __future__ import annotations

from tests.emulators.core import Emulator


class KeyVaultEmulator(Emulator):
    service = "keyvault"
