"""Schema errors a human can act on (issue 22, point 9). Helm prints each schema violation in its own words
(`minLength: got 0, want 1`, or the whole regex) and names the value's path; so every constrained value of
values.schema.json carries a `description` saying what it must be, docs/helm.md lists them by that path
(tests/helm/schema_doc.py), and every unconditional rule is triggered here to check helm refuses it at exactly
the path the table names."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.helm import schema_doc
from tests.helm.chart import FULL, template_error

UNCONDITIONAL = sorted(
    {c.pointer: c for c in schema_doc.constrained() if not c.conditional and "*" not in c.path}.values(),
    key=lambda c: c.pointer,
)


def test_every_constrained_value_has_a_description() -> None:
    missing = sorted({c.pointer for c in schema_doc.constrained() if not c.node.get("description")})
    assert missing == []
    assert len(list(schema_doc.constrained())) > 100  # the walk reaches the job blocks and the definitions


def test_the_table_in_docs_is_current() -> None:
    text = schema_doc.DOC.read_text()
    assert schema_doc.render(text) == text, "docs/helm.md is stale: run `.venv/bin/python -m tests.helm.schema_doc`"
    assert "| `/jobs/ficReconcile/settings/issuer` |" in text


def violation(node: dict[str, Any]) -> Any:
    """A value the node refuses, of the type it otherwise takes."""
    if "enum" in node:
        return "not-one-of-them"
    if "pattern" in node:
        for candidate in ("Not Valid!", "", "-", "x" * 300, "/double//slash/"):
            if not re.search(node["pattern"], candidate):
                return candidate
    if "minLength" in node:
        return ""
    if "maxLength" in node:
        return "a" * (node["maxLength"] + 1)
    if "minimum" in node:
        return node["minimum"] - 1
    if "exclusiveMinimum" in node:
        return node["exclusiveMinimum"]
    if "maximum" in node:
        return node["maximum"] + 1
    if "minItems" in node:
        return []
    if "minProperties" in node:
        return {}
    raise AssertionError(f"no violating value for {node}")


def set_json(path: tuple[str, ...], value: Any) -> str:
    """--set-json for the value at `path`; through an array item, the array is set to that one item."""
    if "0" not in path:
        return f"{'.'.join(path)}={json.dumps(value)}"
    at = path.index("0")
    item: Any = value
    for key in reversed(path[at + 1 :]):
        item = {key: item}
    return f"{'.'.join(path[:at])}={json.dumps([item])}"


@pytest.mark.parametrize("rule", UNCONDITIONAL, ids=[c.pointer for c in UNCONDITIONAL])
def test_each_rule_is_refused_at_the_path_the_table_names(home: Path, rule: schema_doc.Constrained) -> None:
    value = violation(rule.node)
    error = template_error(home, "-f", str(FULL), "--set-json", set_json(rule.path, value))
    assert "values don't meet the specifications of the schema" in error, error
    assert f"- at '{rule.pointer}'" in error, error
    assert rule.pointer in schema_doc.rows()
