"""Where the official API descriptions the emulator tests replay live: vendored in `tests/api_specs/`, each
file's source and licence in its README. Nothing outside the repository is read."""

from __future__ import annotations

from pathlib import Path

API_SPECS = Path(__file__).resolve().parent / "api_specs"
