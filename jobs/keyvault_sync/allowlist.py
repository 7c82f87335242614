"""The keyvault-sync allowlist: which seed secrets are copied, and under which name.

A YAML list; each entry is a secret name (copied under the same name) or `{source: a, target: b}` (copied
under another name). Names are taken as written (`- 2024` is the name "2024", not a number), validated
against Key Vault's rules (1-127 characters of 0-9, a-z, A-Z and '-'; the service compares them
case-insensitively, so `Db` and `db` are the same secret). Every error names the file and the line, and
all of them are reported at once, so an SRE fixes a ConfigMap in one round.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from lib.yaml_source import InvalidYaml, compose

NAME_RULE = re.compile(r"[0-9A-Za-z-]{1,127}")
NAME_EXPECTED = "1-127 characters of 0-9, a-z, A-Z and '-'"
MAX_ERRORS_SHOWN = 5
Errors = list[tuple[int, str]]  # (1-based line, problem)


@dataclass(frozen=True)
class Entry:
    source: str
    target: str
    line: int  # 1-based, for messages


@dataclass(frozen=True)
class Allowlist:
    path: str
    entries: tuple[Entry, ...]

    @property
    def targets(self) -> frozenset[str]:
        """Target names, lower-cased: Key Vault names are case-insensitive."""
        return frozenset(e.target.lower() for e in self.entries)


class AllowlistError(ValueError):
    """Raised with every problem found, each as `file:line: problem`; one line of text."""


def load_allowlist(raw_path: str) -> Allowlist:
    """Read and validate; the settings parser for --allowlist-file (ValueError -> exit 2)."""
    path = Path(raw_path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AllowlistError(f"expected a readable UTF-8 YAML file, cannot read {raw_path!r}: {exc}") from None
    return parse_allowlist(text, raw_path)


def parse_allowlist(text: str, name: str = "allowlist") -> Allowlist:
    try:
        root = compose(text)
    except InvalidYaml as exc:
        where = name if exc.line is None else f"{name}:{exc.line}"
        raise AllowlistError(f"{where}: expected valid YAML: {exc.problem}") from None
    if not isinstance(root, SequenceNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise AllowlistError(f"{name}:{line}: expected a YAML list of secret names or {{source, target}} entries")
    if not root.value:
        raise AllowlistError(f"{name}:1: expected at least one entry (an empty allowlist would sync nothing)")
    errors: Errors = []
    entries = [e for node in root.value if (e := _entry(node, errors)) is not None]
    _check_unique(entries, errors)
    if errors:
        errors.sort(key=lambda e: e[0])
        shown = [f"{name}:{line}: {problem}" for line, problem in errors[:MAX_ERRORS_SHOWN]]
        more = f"; and {len(errors) - len(shown)} more" if len(errors) > len(shown) else ""
        raise AllowlistError("; ".join(shown) + more)
    return Allowlist(name, tuple(entries))


def _entry(node: Node, errors: Errors) -> Entry | None:
    line = node.start_mark.line + 1
    if isinstance(node, ScalarNode):
        secret = _name(node, errors)
        return Entry(secret, secret, line) if secret is not None else None
    if not isinstance(node, MappingNode):
        errors.append((line, "expected a secret name or a mapping with source and target"))
        return None
    fields: dict[str, Node] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else "?"
        if key not in ("source", "target"):
            errors.append((key_node.start_mark.line + 1, f"expected only keys source and target, got {key!r}"))
        elif key in fields:
            errors.append((key_node.start_mark.line + 1, f"{key} given twice"))
        else:
            fields[key] = value_node
    missing = [k for k in ("source", "target") if k not in fields]
    if missing:
        errors.append((line, f"expected both source and target, missing {' and '.join(missing)}"))
        return None
    source, target = _name(fields["source"], errors), _name(fields["target"], errors)
    if source is None or target is None:
        return None
    return Entry(source, target, line)


def _name(node: Node, errors: Errors) -> str | None:
    line = node.start_mark.line + 1
    if not isinstance(node, ScalarNode):
        shape = "list" if isinstance(node, SequenceNode) else "mapping"
        errors.append((line, f"expected a secret name, got a {shape}"))
        return None
    text = str(node.value)
    if not NAME_RULE.fullmatch(text):
        errors.append((line, f"invalid Key Vault secret name {text!r}: expected {NAME_EXPECTED}"))
        return None
    return text


def _check_unique(entries: list[Entry], errors: Errors) -> None:
    first: dict[str, Entry] = {}
    for entry in entries:
        earlier = first.get(entry.target.lower())
        if earlier is None:
            first[entry.target.lower()] = entry
        elif earlier.source.lower() == entry.source.lower():
            errors.append((entry.line, f"duplicate entry for {entry.target!r} (first on line {earlier.line})"))
        else:
            problem = f"two sources onto one target: {entry.source!r} and {earlier.source!r} (line {earlier.line})"
            errors.append((entry.line, f"{problem} both write {entry.target!r}"))
