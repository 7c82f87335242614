"""Fixtures of the chart tests: an isolated helm home (helm fetched first, never skipped) and the full render."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helm.chart import FULL, template
from tests.helm.helm_binary import HelmUnavailable, helm_path, kubectl_path


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        helm_path()
    except HelmUnavailable as exc:  # never a skip: a chart nobody rendered is a chart nobody tested
        pytest.fail(f"helm is needed for the chart tests and could not be obtained: {exc}")
    return tmp_path_factory.mktemp("helm-home")


@pytest.fixture(scope="session")
def full(home: Path) -> list[dict[str, Any]]:
    return template(home, "-f", str(FULL))


@pytest.fixture(scope="session")
def kubectl() -> Path:
    """Real kubectl 1.37.1 (never a skip: what the README tells an SRE to run is rehearsed with it)."""
    try:
        return kubectl_path()
    except HelmUnavailable as exc:
        pytest.fail(f"kubectl is needed and could not be obtained: {exc}")
