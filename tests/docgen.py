"""The README's settings tables, generated from the settings dataclasses so the docs cannot drift.

`python -m tests.docgen` rewrites the blocks between `<!-- settings:NAME -->` and `<!-- /settings:NAME -->`
in README.md; tests/unit/test_readme.py fails when a block is out of date.
"""

from __future__ import annotations

import importlib
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from lib.settings import REQUIRED, RunOptions, specs

README = Path(__file__).resolve().parent.parent / "README.md"
JOBS = {
    "fic-reconcile": "jobs.fic_reconcile.job",
    "keyvault-sync": "jobs.keyvault_sync.job",
    "coder-token-mint": "jobs.coder_token_mint.job",
    "token-expiry-check": "jobs.token_expiry_check.job",
}


def _default(value: Any) -> str:
    if value is REQUIRED:
        return "required"
    if value in (None, (), ""):
        return "—"
    if isinstance(value, bool):
        return "off" if value is False else "on"
    if isinstance(value, timedelta):  # as the flag takes it: 1h, 30m, 1d
        return f"`{_duration(value)}`"
    return f"`{value}`"


def _duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(cls: type[Any]) -> str:
    rows = ["| flag | env var | default | meaning |", "|---|---|---|---|"]
    for _, spec in specs(cls):
        flag = spec.flag + ("" if spec.switch else " VALUE") + (" (repeatable)" if spec.repeatable else "")
        rows.append(f"| `{flag}` | `{spec.env}` | {_default(spec.default)} | {spec.help} |")
    return "\n".join(rows)


def blocks() -> dict[str, str]:
    jobs = {name: table(importlib.import_module(module).SPEC.settings) for name, module in JOBS.items()}
    return {"common": table(RunOptions), **jobs}


def render(text: str) -> str:
    for name, body in blocks().items():
        pattern = re.compile(
            rf"(<!-- settings:{re.escape(name)} -->\n)(?:.*?\n)?(<!-- /settings:{re.escape(name)} -->)", re.S
        )
        text = pattern.sub(lambda m, body=body: m.group(1) + body + "\n" + m.group(2), text)
    return text


def main() -> int:
    README.write_text(render(README.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
