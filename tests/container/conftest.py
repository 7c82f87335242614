"""The image, built once per session the way CI builds it (tests/container/build.py), in a throw-away
containers-storage directory under .ctr/ that is deleted at the end of the session."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest

from tests.container import build


@dataclass(frozen=True)
class Image:
    store: build.Store
    tag: str
    base_digest: str  # the digest the Dockerfile's FROM pinned (the imported base's manifest digest)

    def run(
        self, *argv: str, env: dict[str, str] | None = None, flags: Sequence[str] = (), network: str = "none"
    ) -> subprocess.CompletedProcess[str]:
        return self.store.run(self.tag, *argv, env=env, flags=flags, network=network)

    def size(self) -> int:
        return self.store.image_size(self.tag)


def report_line(config: pytest.Config, line: str) -> None:
    """A measured number on the terminal even under -q and output capture (make test-image shows it)."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    if capture is None:
        print(line, file=sys.stderr)
        return
    with capture.global_and_fixture_disabled():
        print(line, file=sys.stderr)


@pytest.fixture(scope="session")
def image(pytestconfig: pytest.Config) -> Iterator[Image]:
    try:
        build.require_tools()
    except build.ToolMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    timings = build.Timings()
    with build.scratch_store() as store:
        digest = build.build_all(store, timings)
        report_line(pytestconfig, f"\ncontainer build: {timings.line()}")
        yield Image(store, build.IMAGE_TAG, digest)
