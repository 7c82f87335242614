"""The secret-leak audit catches what it must: a secret in captured stdout, a log record or a failure text
fails the phase and is withheld from the run's output; clean output passes untouched; and the audit the
suite runs under (tests/conftest.py) knows every kind of secret the emulators hand out."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from azure.keyvault.secrets import SecretClient

from lib.clients.azure_auth import azure_credential
from tests.conftest import LEAKS
from tests.emulators.platform import Platform
from tests.faults.leak_audit import WITHHELD, LeakAudit, exposures

ROOT = Path(__file__).resolve().parents[2]
SECRET = "s3cret-" + "Q" * 16


def report(sections: list[tuple[str, str]], longrepr: str | None = None) -> pytest.TestReport:
    outcome = "failed" if longrepr else "passed"
    return pytest.TestReport("t.py::test_x", ("t.py", 1, "test_x"), {}, outcome, longrepr, "call", sections)


def test_a_secret_in_captured_output_fails_the_phase_and_is_withheld() -> None:
    audit = LeakAudit()
    audit.watch(lambda: {SECRET})
    rep = report([("Captured stdout call", f"token={SECRET}\n"), ("Captured log call", "WARNING nothing here")])
    assert audit.check(rep) == 1
    assert rep.outcome == "failed"
    assert rep.sections == [("Captured stdout call", WITHHELD), ("Captured log call", "WARNING nothing here")]
    assert "'Captured stdout call' (1)" in str(rep.longrepr) and SECRET not in str(rep.longrepr)


def test_a_secret_in_a_failure_text_is_replaced() -> None:
    audit = LeakAudit()
    audit.watch(lambda: {SECRET})
    rep = report([], longrepr=f"AssertionError: assert '{SECRET}' == 'x'")
    assert audit.check(rep) == 1 and SECRET not in str(rep.longrepr)


def test_clean_output_and_a_coder_keys_secret_half() -> None:
    audit = LeakAudit()
    key = "AbCdEfGhIj-" + "k" * 22
    audit.watch(lambda: {key})
    clean = report([("Captured stdout call", "AbCdEfGhIj is the key id, which is public")])
    assert audit.check(clean) == 0 and clean.outcome == "passed"
    assert audit.check(report([("Captured stderr call", "secret part " + "k" * 22)])) == 1


def test_the_suites_audit_knows_every_kind_of_secret_the_platform_issues(
    platform: Platform, vaults: tuple[SecretClient, SecretClient]
) -> None:
    value = f"kv-{secrets.token_urlsafe(16)}"
    vaults[0].set_secret("audited", value)
    issued = {
        "Key Vault secret value": value,
        "Entra access token": azure_credential(os.environ).get_token("https://vault.azure.net/.default").token,
        "service-account JWT": platform.service_account_jwt("team-a", "workspace"),
        "Vault root token": platform.vault.root_token,
        "Coder bootstrap key": platform.coder.bootstrap_token,
        "Kubernetes bearer token": platform.kube.token,
    }
    missed = [kind for kind, secret in issued.items() if LEAKS.count(f"log line: {secret}") < 1]
    assert not missed


def test_a_secret_in_another_form_is_still_found_and_named_by_form() -> None:
    secret = 'p4ss"w0rd\nclé-' + "L" * 40
    audit = LeakAudit()
    audit.watch(lambda: {secret})
    for text in (json.dumps(secret), repr(secret), ascii(secret), " ".join(secret.split()), quote(secret)):
        assert audit.count(f"error: {text}") == 1
    assert exposures(secret, "cut: " + secret[:20]) == []  # a head is not the secret...
    assert exposures(secret, "cut: " + secret[:20], fragment=12) == ["a 12-character fragment"]  # ...but a piece
    assert exposures(secret, json.dumps({"v": secret})) == ["JSON-escaped"]
    assert exposures(secret, "nothing of it here", fragment=12) == []


LEAKING = sorted(["test_prints", "test_writes_stderr", "test_logs", "test_fails_showing_it"])


def test_a_whole_pytest_run_fails_the_tests_that_print_or_log_a_secret_and_never_shows_it(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text(
        "import pytest\n"
        "from tests.faults.leak_audit import LeakAudit\n"
        "AUDIT = LeakAudit()\n"
        f"AUDIT.watch(lambda: {{{SECRET!r}}})\n"
        "@pytest.hookimpl(hookwrapper=True)\n"
        "def pytest_runtest_makereport(item, call):\n"
        "    outcome = yield\n"
        "    AUDIT.check(outcome.get_result())\n"
    )
    (tmp_path / "test_inner.py").write_text(
        "import logging, sys\n"
        f"S = {SECRET!r}\n"
        "def test_prints(): print('token', S)\n"
        "def test_writes_stderr(): sys.stderr.write(S)\n"
        "def test_logs(): logging.getLogger('job').warning('got %s', S)\n"
        "def test_fails_showing_it(): assert S == 'x'\n"
        "def test_clean(): print('nothing to see')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    assert "4 failed, 1 passed" in output, output
    # Count in the failure reports only: the short summary repeats the message untruncated when CI is set
    # (pytest does not shorten summary lines under CI), so its count depends on the environment.
    reports, _, summary = output.partition("short test summary info")
    assert reports.count("secret-leak audit: secret values issued by the emulators appeared") == 4, output
    failed = sorted(line.split()[1] for line in summary.splitlines() if line.startswith("FAILED"))
    assert failed == [f"test_inner.py::{name}" for name in LEAKING], output
    assert SECRET not in output
    assert "[withheld by the secret-leak audit" in output  # -rA shows the sections: withheld, not the value
    assert "nothing to see" in output  # clean capture is shown as usual
