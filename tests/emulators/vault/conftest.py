from __future__ import annotations

import hvac
import pytest

from tests.emulators.platform import Platform
from tests.emulators.vault.helpers import login, new_client


@pytest.fixture
def root(platform: Platform) -> hvac.Client:
    return new_client(platform.vault.root_token)


@pytest.fixture
def writer(platform: Platform) -> hvac.Client:
    return login()
