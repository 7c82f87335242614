"""Coder /api/v2 (STUB: being written)."""

from __future__ import annotations

from tests.emulators.core import Emulator


class CoderEmulator(Emulator):
    service = "coder"
    bootstrap_token = "AAAAAAAAAA-AAAAAAAAAAAAAAAAAAAAAA"
    auditor_token = "BBBBBBBBBB-BBBBBBBBBBBBBBBBBBBBBB"
