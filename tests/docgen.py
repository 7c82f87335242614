"""The README's settings tables, generated from the settings dataclasses so the docs cannot drift.

`python -m tests.docgen` rewrites the blocks between `<!-- settings:NAME -->` and `<!-- /settings:NAME -->`
in README.md; tests/unit/test_readme.py fails when a block is out of date.
"""

from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path
from typing import Any

from lib.cli import format_default, metavar
from lib.settings import REQUIRED, RunOptions, Spec, specs

README = Path(__file__).resolve().parent.parent / "README.md"
JOBS = {
    "fic-reconcile": "jobs.fic_reconcile.job",
    "keyvault-sync": "jobs.keyvault_sync.job",
    "coder-token-mint": "jobs.coder_token_mint.job",
    "token-expiry-check": "jobs.token_expiry_check.job",
}


def _default(spec: Spec) -> str:
    """As --help prints it (lib.settings.format_default): `1d`, `600`, on/off."""
    if spec.default is REQUIRED:
        return "required"
    shown = format_default(spec)
    if shown is None:
        return "—"
    return shown if isinstance(spec.default, bool) else f"`{shown}`"


def table(cls: type[Any]) -> str:
    rows = ["| flag | env var | default | meaning |", "|---|---|---|---|"]
    for _, spec in specs(cls):
        flag = spec.flag + ("" if spec.switch else f" {metavar(spec)}") + (" (repeatable)" if spec.repeatable else "")
        rows.append(f"| `{flag}` | `{spec.env}` | {_default(spec)} | {spec.help} |")
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
