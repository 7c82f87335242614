"""The suite-wide secret-leak audit: every secret the emulators hand out (Entra access tokens, service-account
JWTs, Vault tokens, Coder API keys, Key Vault secret values: `Platform.secrets`) is looked for in everything
pytest captured for every test phase: stdout, stderr and log records (`report.sections`) and the failure text
(`report.longrepr`). A phase whose capture holds one fails, and what held it is withheld from the run's
output, so the audit itself never prints the value. (Job processes are checked by `run_job` as they end, with
the same `count`.)

tests/conftest.py wires `LeakAudit.check` into `pytest_runtest_makereport`; tests/faults/test_leak_audit.py
proves it catches a leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pytest

WITHHELD = "[withheld by the secret-leak audit: it held a secret value]"
_CODER_KEY = re.compile(r"[0-9A-Za-z]{10}-([0-9A-Za-z]{22})")


class LeakAudit:
    def __init__(self) -> None:
        self._sources: list[Callable[[], Iterable[str]]] = []

    def watch(self, source: Callable[[], Iterable[str]]) -> None:
        """Add a provider of secret values (called at every check: the set grows as emulators issue more)."""
        self._sources.append(source)

    def secrets(self) -> set[str]:
        values = {value for source in self._sources for value in list(source())}
        # a Coder key's secret half is the credential on its own (`<id>-<secret>`; the id is public)
        values |= {m.group(1) for value in values if (m := _CODER_KEY.fullmatch(value))}
        return values

    def count(self, text: str, secrets: set[str] | None = None) -> int:
        """How many secret values occur in `text` (a count: never the values)."""
        return sum(1 for secret in (self.secrets() if secrets is None else secrets) if secret in text)

    def check(self, report: pytest.TestReport) -> int:
        """Fail `report` if what its own phase captured, or its failure text, holds a secret; returns how many.
        A section holding one is withheld in every later phase's report too (pytest repeats earlier phases'
        captures there), without failing that phase again."""
        texts = list(report.sections)
        if report.longrepr is not None:
            texts.append(("failure report", str(report.longrepr)))
        if not any(content for _, content in texts):
            return 0
        secrets = self.secrets()
        found = {title: n for title, content in texts if (n := self.count(content, secrets))}
        report.sections = [(title, WITHHELD if title in found else content) for title, content in report.sections]
        own = {title: n for title, n in found.items() if title == "failure report" or title.endswith(f" {report.when}")}
        if not own:
            return 0
        report.outcome = "failed"
        where = ", ".join(f"{title!r} ({n})" for title, n in sorted(own.items()))
        report.longrepr = (
            f"secret-leak audit: secret values issued by the emulators appeared in {where} of "
            f"{report.nodeid} ({report.when}); the captured text is withheld"
        )
        return sum(own.values())
