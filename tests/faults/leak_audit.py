"""The suite-wide secret-leak audit: every secret the emulators hand out (Entra access tokens, service-account
JWTs, Vault tokens, Coder API keys, Key Vault secret values: `Platform.secrets`) is looked for in everything
pytest captured for every test phase: stdout, stderr and log records (`report.sections`) and the failure text
(`report.longrepr`). A phase whose capture holds one fails, and what held it is withheld from the run's
output, so the audit itself never prints the value. (Job processes are checked by `run_job` as they end, with
the same `count`.)

tests/conftest.py wires `LeakAudit.check` into `pytest_runtest_makereport`; tests/faults/test_leak_audit.py
proves it catches a leak.

A secret can leave in another form than it was issued: JSON- or repr-escaped (quotes, backslashes, line breaks,
non-ASCII), percent-encoded, with its whitespace collapsed onto one line, or cut short by a truncation. The audit
looks for every such form (`encodings`, defined here independently of lib/redact.py, so a form the redactor
forgot is still caught); `exposures` also looks for any fragment of a given length, for the tests that feed
secrets of awkward shapes on purpose (tests/faults/test_secret_shapes.py). Fragments are not looked for
suite-wide: every JWT shares its header with every other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from urllib.parse import quote

import pytest

WITHHELD = "[withheld by the secret-leak audit: it held a secret value]"
_CODER_KEY = re.compile(r"[0-9A-Za-z]{10}-([0-9A-Za-z]{22})")


MIN_FORM = 6  # shorter forms (a collapsed "a  b") would match ordinary words


def encodings(secret: str) -> dict[str, str]:
    """The forms an encoder or a formatter makes of `secret`, by name (the names are safe to print)."""
    forms = {
        "as issued": secret,
        "JSON-escaped": json.dumps(secret)[1:-1],
        "JSON-escaped, UTF-8": json.dumps(secret, ensure_ascii=False)[1:-1],
        "repr-escaped": repr(secret)[1:-1],
        "repr-escaped, ASCII": ascii(secret)[1:-1],
        "whitespace collapsed": " ".join(secret.split()),
        "percent-encoded": quote(secret, safe=""),
        "percent-encoded, path": quote(secret),
    }
    return {name: form for name, form in forms.items() if form == secret or len(form) >= MIN_FORM}


def exposures(secret: str, text: str, fragment: int | None = None) -> list[str]:
    """Which forms of `secret` occur in `text` (names only, never the value); with `fragment`, also whether any
    `fragment` consecutive characters of any form do (a truncation leaves the head of a secret behind)."""
    found = [name for name, form in encodings(secret).items() if form in text]
    if fragment:
        windows = {form[i : i + fragment] for form in encodings(secret).values() for i in range(len(form))}
        if any(len(w) == fragment and w.strip() and w in text for w in windows):
            found.append(f"a {fragment}-character fragment")
    return found


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
        """How many secret values occur in `text`, in any of their encodings (a count: never the values)."""
        return sum(1 for secret in (self.secrets() if secrets is None else secrets) if exposures(secret, text))

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
