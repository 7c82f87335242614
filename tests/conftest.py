"""Shared fixtures: one emulated platform per test session, reset to its baseline before each test that
asks for it, and a runner for the console scripts (the way a CronJob or an SRE runs them)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import structlog
from azure.keyvault.secrets import SecretClient
from hypothesis import settings

import tests.machine_env  # noqa: F401  (first: it copies the environment before any fixture changes it)
from lib import limits, runinfo
from lib.clients.azure_auth import azure_credential
from tests.emulators.platform import Platform
from tests.faults.leak_audit import LeakAudit
from tests.pushgateway import Pushgateway, PushgatewayUnavailable

BIN = Path(sys.executable).parent
LEAKS = LeakAudit()  # every secret any platform of this run issued: looked for in every test's capture and job run

settings.register_profile("default", deadline=None, print_blob=True)  # 2-core CI: timing is not the property
settings.load_profile("default")


@pytest.fixture(autouse=True)
def _logging_of_this_test_only() -> Iterator[None]:
    """A test that runs the harness in-process configures structlog onto its captured stderr, which pytest closes
    afterwards; a later test whose client logs a retry must not write there. It also sets the run in progress
    (lib/runinfo.py: a dry-run pushes no success group) and the request limits (lib/limits.py): a later test in
    the same worker must see the defaults, whichever file pytest-xdist ran before it."""
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers.clear()
    runinfo.set_current(runinfo.RunInfo())
    limits.set_limits(limits.Limits())


@pytest.fixture(scope="session")
def platform_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    platform = Platform(tmp_path_factory.mktemp("platform")).start()
    saved = {k: os.environ.get(k) for k in platform.env()}
    os.environ.update(platform.env())  # in-process SDK clients find the CA bundle and endpoints like a job would
    LEAKS.watch(lambda: platform.secrets)  # kept after the session ends: the last teardown is audited too
    yield platform
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    platform.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """The secret-leak audit (tests/faults/leak_audit.py): a phase whose captured stdout, stderr, log or
    failure text holds a secret value the emulators issued fails, and that text is withheld."""
    outcome = yield
    LEAKS.check(outcome.get_result())  # type: ignore[attr-defined]


@pytest.fixture
def platform(platform_session: Platform) -> Platform:
    platform_session.reset()
    return platform_session


@pytest.fixture
def env(platform: Platform, tmp_path: Path) -> dict[str, str]:
    """The environment a job process gets: the machine's PATH, the platform's env file, and an empty home of its
    own (the jobs read ~/.vault-token, as the vault CLI does: the machine's must never count)."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(home), **platform.env()}


class Control:
    """The control API, over HTTPS like any other client."""

    def __init__(self, platform: Platform) -> None:
        self.url = platform.control.url + "/_emulator"
        self.session = requests.Session()
        self.session.verify = str(platform.ca_path)

    def fault(self, service: str, operation: str = "*", **kwargs: Any) -> None:
        r = self.session.post(f"{self.url}/faults", json={"service": service, "operation": operation, **kwargs})
        r.raise_for_status()

    def clear_faults(self) -> None:
        self.session.delete(f"{self.url}/faults").raise_for_status()

    def configure(self, service: str, **settings: Any) -> dict[str, Any]:
        r = self.session.post(f"{self.url}/config", json={"service": service, "settings": settings})
        r.raise_for_status()
        result: dict[str, Any] = r.json()["settings"]
        return result

    def advance(self, seconds: float) -> str:
        r = self.session.post(f"{self.url}/clock/advance", json={"seconds": seconds})
        r.raise_for_status()
        return str(r.json()["now"])

    def now(self) -> str:
        return str(self.session.get(f"{self.url}/clock").json()["now"])

    def requests(self, service: str | None = None, op: str | None = None) -> dict[str, Any]:
        params = {k: v for k, v in {"service": service, "op": op}.items() if v}
        r = self.session.get(f"{self.url}/requests", params=params)
        r.raise_for_status()
        result: dict[str, Any] = r.json()
        return result

    def count(self, service: str, op: str | None = None) -> int:
        per = self.requests()["counts"].get(service, {})
        return per.get(op, 0) if op else sum(per.values())

    def clear_requests(self) -> None:
        self.session.delete(f"{self.url}/requests").raise_for_status()


@pytest.fixture
def control(platform: Platform) -> Control:
    return Control(platform)


@pytest.fixture(scope="session")
def pushgateway_session(platform_session: Platform) -> Iterator[Pushgateway]:
    """A real Pushgateway (tests/pushgateway.py), HTTPS with a certificate from the platform's CA; started by
    the first test that asks for it. Never a skip: metrics nobody read back are metrics nobody tested."""
    try:
        gateway = Pushgateway.for_platform(platform_session).start()
    except PushgatewayUnavailable as exc:
        pytest.fail(f"the Pushgateway is needed for the metrics tests and could not be started: {exc}")
    yield gateway
    gateway.stop()


@pytest.fixture
def pushgateway(pushgateway_session: Pushgateway) -> Pushgateway:
    pushgateway_session.wipe()
    return pushgateway_session


def config_error_lines(stderr: str) -> list[str]:
    """A configuration error's stderr: the plain lines (one per bad setting), after checking that it ends with
    the run.summary record (exit code 2) as every run does (issue 22 point 5)."""
    lines = stderr.splitlines()
    summary = json.loads(lines[-1])
    assert summary["event"] == "run.summary" and summary["exit_code"] == 2, lines[-1]
    return [line for line in lines if not line.startswith("{")]


def run_job(name: str, *args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run a console script as a separate process, exactly as installed.

    Every run in the suite is checked here for leaks: no credential or secret value any emulator issued
    or stored (tokens, keys, JWTs, secret values) may appear in the job's stdout or stderr."""
    exe = shutil.which(name, path=str(BIN))
    assert exe, f"console script {name} is not installed in {BIN}"
    proc = subprocess.run([exe, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    leaked = LEAKS.count(proc.stdout + proc.stderr)
    assert leaked == 0, f"{name} printed {leaked} secret value(s) the emulators issued (not shown here)"
    return proc


@pytest.fixture
def vaults(platform: Platform) -> Iterator[tuple[SecretClient, SecretClient]]:
    """SDK clients of the seed (source) and cluster (target) Key Vault emulators, as the workload identity."""
    credential = azure_credential(os.environ)
    source = SecretClient(platform.kv_source.url, credential, verify_challenge_resource=False)
    target = SecretClient(platform.kv_target.url, credential, verify_challenge_resource=False)
    yield source, target
    source.close()
    target.close()
