"""docs/helm.md's "What the schema refuses" table, generated from helm/coder-wi-jobs/values.schema.json: every
constrained value by the path helm's error names (`- at '/jobs/ficReconcile/settings/issuer': ...`), with what it
must be (the constraint's `description`). Helm prints the raw rule; this table says it in words, and cannot drift
from the schema (tests/helm/test_schema_messages.py). `python -m tests.helm.schema_doc` rewrites it."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "helm" / "coder-wi-jobs" / "values.schema.json"
DOC = ROOT / "docs" / "helm.md"
CONSTRAINTS = frozenset({
    "minLength", "maxLength", "pattern", "enum", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", "minProperties",
})  # fmt: skip
MARK = re.compile(r"(<!-- schema-errors -->\n)(?:.*?\n)?(<!-- /schema-errors -->)", re.S)


@dataclass(frozen=True)
class Constrained:
    path: tuple[str, ...]  # as helm's error names it; "0" for an array item, "*" for any key of a map
    node: dict[str, Any]
    conditional: bool  # under if/then, anyOf, oneOf or allOf: it binds only in some configurations

    @property
    def pointer(self) -> str:
        return "/" + "/".join(self.path)


def load() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA.read_text())
    return schema


def constrained(schema: dict[str, Any] | None = None) -> Iterator[Constrained]:
    """Every constrained node reachable from the root, by the values path it constrains ($ref followed, `if`
    subtrees skipped: those are conditions, not rules for a value)."""
    root = schema or load()

    def walk(node: Any, path: tuple[str, ...], conditional: bool, seen: tuple[str, ...]) -> Iterator[Constrained]:
        if not isinstance(node, dict):
            return
        if CONSTRAINTS & set(node):
            yield Constrained(path, node, conditional)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref not in seen:
            target: Any = root
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            yield from walk(target, path, conditional, (*seen, ref))
        for name, sub in (node.get("properties") or {}).items():
            yield from walk(sub, (*path, name), conditional, seen)
        if isinstance(node.get("items"), dict):
            yield from walk(node["items"], (*path, "0"), conditional, seen)
        if isinstance(node.get("additionalProperties"), dict):
            yield from walk(node["additionalProperties"], (*path, "*"), conditional, seen)
        for key in ("then", "else"):
            yield from walk(node.get(key), path, True, seen)
        for key in ("allOf", "anyOf", "oneOf"):
            for sub in node.get(key) or []:
                yield from walk(sub, path, True, seen)

    yield from walk(root, (), False, ())


def rows(schema: dict[str, Any] | None = None) -> dict[str, list[str]]:
    """pointer -> its descriptions, in schema order, without repeats."""
    table: dict[str, list[str]] = {}
    for c in constrained(schema):
        said = table.setdefault(c.pointer, [])
        text = str(c.node.get("description", "")).strip()
        if text and text not in said:
            said.append(text)
    return table


def render_table() -> str:
    lines = ["| value (as helm's error names it) | must be |", "|---|---|"]
    for pointer, said in rows().items():
        lines.append(f"| `{pointer}` | {'; '.join(s.replace('|', '&#124;') for s in said)} |")
    return "\n".join(lines)


def render(text: str) -> str:
    return MARK.sub(lambda m: m.group(1) + render_table() + "\n" + m.group(2), text)


def main() -> int:
    DOC.write_text(render(DOC.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
