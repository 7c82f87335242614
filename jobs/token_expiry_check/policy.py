"""The token policy file: YAML defaults plus per-user overrides, validated at load with file and line.

    defaults:                       # every key optional; these are the built-in values
      warn_days: 14                 # warn when a token has this many days left or fewer
      max_lifetime_days: 90         # a token's requested lifetime (lifetime_seconds) may not exceed this
      allowed_site_roles: null      # null: any; a list: the user's site roles must be a subset
      name_pattern: null            # null: any name; else a pattern, see below
      allow_all_scope: true         # false: a token holding the `all` / `coder:all` scope is a warning
      expect_tokens: null           # true: an empty token list is an error; null: only for service
                                    # accounts named with --user; false: never
      unused_days: 30               # info when a token was not used for this long; null: off
    users:
      cicd-template-deployer:
        allowed_site_roles: [template-admin]
        name_pattern: "<purpose>-<environment:dev|staging|prod>-<yyyymmdd>"
        allow_all_scope: false
        expect_tokens: true

Name patterns: literal text matches itself; `<yyyymmdd>` matches a real calendar date written as eight
digits; `<name:a|b|c>` matches exactly one of the listed words; any other `<name>` matches one or more
lowercase letters or digits, possibly joined by single dashes (so `<purpose>` matches `cicd-template`).
The whole token name must match.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from lib.yaml_source import InvalidYaml, compose

_PLACEHOLDER = re.compile(r"<([a-z][a-z0-9_]*)(?::([^<>]*))?>")
_WORD = r"[a-z0-9]+(?:-[a-z0-9]+)*"
_CHOICE = re.compile(r"[a-z0-9][a-z0-9_-]*")
_ROLE = re.compile(r"[a-z][a-z0-9-]*")


class PolicyError(ValueError):
    """A problem in the policy file; the text starts with `<file>:<line>:`."""


@dataclass(frozen=True)
class NamePattern:
    source: str
    regex: re.Pattern[str]
    date_groups: tuple[str, ...]

    def matches(self, name: str) -> bool:
        return self._match(name) is not None

    def series(self, name: str) -> str | None:
        """The name with its dates blanked: tokens of one series replace each other on rotation."""
        match = self._match(name)
        if match is None:
            return None
        parts = [(g, match.group(g)) for g in self.regex.groupindex if g not in self.date_groups]
        return "|".join(f"{g}={v}" for g, v in parts)

    def _match(self, name: str) -> re.Match[str] | None:
        match = self.regex.fullmatch(name)
        if match is None or not all(_is_date(match.group(g)) for g in self.date_groups):
            return None
        return match


def _is_date(text: str) -> bool:
    try:
        datetime.strptime(text, "%Y%m%d")
    except ValueError:
        return False
    return True


def compile_pattern(source: str) -> NamePattern:
    """Turn `<purpose>-<environment>-<yyyymmdd>` into an anchored regex; raises ValueError("expected ...")."""
    if not source:
        raise ValueError("expected a non-empty name pattern")
    if any("<" in lit or ">" in lit for lit in _PLACEHOLDER.split(source)[::3]):
        raise ValueError(f"expected placeholders like <purpose> or <env:dev|prod>, got {source!r}")
    parts: list[str] = []
    dates: list[str] = []
    seen: set[str] = set()
    pos = 0
    for match in _PLACEHOLDER.finditer(source):
        parts.append(re.escape(source[pos : match.start()]))
        name, choices = match.group(1), match.group(2)
        if name in seen:
            raise ValueError(f"expected each placeholder once, <{name}> appears twice")
        seen.add(name)
        parts.append(f"(?P<{name}>{_placeholder_regex(name, choices)})")
        if name == "yyyymmdd":
            dates.append(name)
        pos = match.end()
    parts.append(re.escape(source[pos:]))
    return NamePattern(source, re.compile("".join(parts)), tuple(dates))


def _placeholder_regex(name: str, choices: str | None) -> str:
    if choices is None:
        return r"\d{8}" if name == "yyyymmdd" else _WORD
    words = choices.split("|")
    if not all(_CHOICE.fullmatch(w) for w in words):
        raise ValueError(f"expected <{name}:word|word> with lowercase words, got <{name}:{choices}>")
    return "|".join(re.escape(w) for w in words)


@dataclass(frozen=True)
class Rules:
    warn_days: int = 14
    max_lifetime_days: int = 90
    allowed_site_roles: tuple[str, ...] | None = None
    name_pattern: NamePattern | None = None
    allow_all_scope: bool = True
    expect_tokens: bool | None = None
    unused_days: int | None = 30


@dataclass(frozen=True)
class Policy:
    defaults: Rules = Rules()
    users: Mapping[str, Rules] = field(default_factory=dict)
    source: str = "(built-in defaults)"

    def for_user(self, username: str) -> Rules:
        return self.users.get(username, self.defaults)


# ---- loading: every error names the file and the line ------------------------------------------------------


def load_policy_file(raw: str) -> Policy:
    """The `--policy-file` parser: read, parse and validate. Raises PolicyError (a ValueError)."""
    path = Path(raw).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"expected a readable YAML file, {raw!r}: {exc.strerror}") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str) -> Policy:
    try:
        root = compose(text)
    except InvalidYaml as exc:
        raise PolicyError(f"{source}:{exc.line or 1}: expected valid YAML ({exc.problem})") from None
    if root is None:
        return Policy(source=source)
    top = _mapping(root, source, "the policy")
    unknown = set(top) - {"defaults", "users"}
    if unknown:
        key = sorted(unknown)[0]
        raise PolicyError(f"{source}:{_line(top[key][0])}: expected top-level keys defaults and users, got {key!r}")
    defaults = _rules(top["defaults"][1], Rules(), source) if "defaults" in top else Rules()
    users: dict[str, Rules] = {}
    if "users" in top:
        for name, (key_node, node) in _mapping(top["users"][1], source, "users").items():
            if not name.strip():
                raise PolicyError(f"{source}:{_line(key_node)}: expected a username, got an empty key")
            users[name] = _rules(node, defaults, source)
    return Policy(defaults, users, source)


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: yaml.Node, source: str, what: str) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null":
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise PolicyError(f"{source}:{_line(node)}: expected {what} to be a mapping")
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            raise PolicyError(f"{source}:{_line(key)}: expected a plain key in {what}")
        if key.value in out:
            raise PolicyError(f"{source}:{_line(key)}: expected each key once in {what}, {key.value!r} repeats")
        out[str(key.value)] = (key, value)
    return out


def _rules(node: yaml.Node, base: Rules, source: str) -> Rules:
    changes: dict[str, Any] = {}
    known = {f.name for f in dataclasses.fields(Rules)}
    for key, (key_node, value_node) in _mapping(node, source, "a rules block").items():
        if key not in known:
            raise PolicyError(f"{source}:{_line(key_node)}: expected one of {', '.join(sorted(known))}, got {key!r}")
        value = yaml.SafeLoader("").construct_object(value_node, deep=True)
        try:
            changes[key] = _CHECKS[key](value)
        except ValueError as exc:
            raise PolicyError(f"{source}:{_line(value_node)}: {key}: {exc}") from None
    return dataclasses.replace(base, **changes)


MAX_DAYS = 36500  # a hundred years; beyond it a day count overflows date arithmetic


def _whole(minimum: int, nullable: bool = False) -> Any:
    def check(value: Any) -> int | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_DAYS:
            expected = f"a whole number >= {minimum} and <= {MAX_DAYS}{' or null' if nullable else ''}"
            raise ValueError(f"expected {expected}, got {value!r}")
        return value

    return check


def _flag(nullable: bool) -> Any:
    def check(value: Any) -> bool | None:
        if value is None and nullable:
            return None
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false{' or null' if nullable else ''}, got {value!r}")
        return value

    return check


def _roles(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(r, str) and _ROLE.fullmatch(r) for r in value):
        raise ValueError(f"expected a list of site role names such as [template-admin], got {value!r}")
    return tuple(sorted(set(value)))


def _pattern(value: Any) -> NamePattern | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ValueError(f"expected a pattern string such as '<purpose>-<environment>-<yyyymmdd>', got {value!r}")
    return compile_pattern(value)


_CHECKS: dict[str, Any] = {
    "warn_days": _whole(0),
    "max_lifetime_days": _whole(1),
    "allowed_site_roles": _roles,
    "name_pattern": _pattern,
    "allow_all_scope": _flag(nullable=False),
    "expect_tokens": _flag(nullable=True),
    "unused_days": _whole(1, nullable=True),
}
