"""Vault ACL policies: the built-in texts, an HCL subset (and JSON) parser, and path/capability matching
with Vault's priority rules.

Sources: shared/api-specs/vault/NOTES.md §3.1 (the default policy), §5 (the writer policy), and Vault's
policies.mdx ("Priority matching", deny wins, same pattern -> union of capabilities).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.emulators.vault.wire import go_multierror, go_quote

CAPABILITIES = {"create", "read", "update", "delete", "list", "sudo", "deny", "patch", "recover", "subscribe"}
LEGACY_POLICY = {
    "deny": ["deny"],
    "read": ["read", "list"],
    "write": ["create", "read", "update", "delete", "list"],
    "sudo": ["create", "read", "update", "delete", "list", "sudo"],
}
PATH_KEYS = {
    "comment", "policy", "capabilities", "allowed_parameters", "denied_parameters", "required_parameters",
    "min_wrapping_ttl", "max_wrapping_ttl", "mfa_methods", "control_group", "subscribe_event_types",
}  # fmt: skip

# Vault's built-in `default` policy, as a dev server prints it (`vault read sys/policy/default`); NOTES §3.1.
DEFAULT_POLICY = """# Allow tokens to look up their own properties
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

# Allow tokens to renew themselves
path "auth/token/renew-self" {
    capabilities = ["update"]
}

# Allow tokens to revoke themselves
path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# Allow a token to look up its own capabilities on a path
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# Allow a token to manage its own cubbyhole
path "cubbyhole/*" {
    capabilities = ["create", "read", "update", "delete", "list"]
}

# Allow a token to wrap arbitrary values in a response-wrapping token
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}
"""

# NOTES §5, for the layout in DESIGN.md: data create/read/update, metadata read, the token's own lifecycle.
WRITER_POLICY = """# coder-token-writer: used only by the coder-token-mint CronJob
path "secret/data/coder-cli-session-token" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/coder-cli-session-token" {
  capabilities = ["read"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
"""
# ---- policies: an HCL subset and the ACL ----------------------------------------------------------------

_HCL_TOKEN = re.compile(
    r'\s+|#[^\n]*|//[^\n]*|/\*.*?\*/|(?P<str>"(?:[^"\\]|\\.)*")|(?P<num>-?\d+(?:\.\d+)?)'
    r"|(?P<ident>[A-Za-z_][\w.\-]*)|(?P<punct>[{}\[\]=,:])",
    re.DOTALL,
)


class PolicyError(ValueError):
    pass


def _hcl_tokens(text: str) -> list[tuple[str, Any, int]]:
    tokens, pos = [], 0
    while pos < len(text):
        m = _HCL_TOKEN.match(text, pos)
        if not m:
            raise PolicyError(f"illegal char at line {text.count(chr(10), 0, pos) + 1}")
        line = text.count("\n", 0, pos) + 1
        if m["str"]:
            tokens.append(("str", json.loads(m["str"]), line))
        elif m["num"]:
            tokens.append(("num", float(m["num"]), line))
        elif m["ident"]:
            tokens.append(("ident", m["ident"], line))
        elif m["punct"]:
            tokens.append((m["punct"], m["punct"], line))
        pos = m.end()
    return tokens


class _HclParser:
    def __init__(self, text: str) -> None:
        self.tokens, self.i = _hcl_tokens(text), 0

    def peek(self) -> str | None:
        return self.tokens[self.i][0] if self.i < len(self.tokens) else None

    def take(self, *kinds: str) -> tuple[str, Any, int]:
        if self.peek() not in kinds:
            where = self.tokens[self.i][2] if self.i < len(self.tokens) else "end"
            raise PolicyError(f"unexpected token at line {where}, expected {' or '.join(kinds)}")
        self.i += 1
        return self.tokens[self.i - 1]

    def body(self, closing: str | None) -> list[tuple[str, list[str], Any, int]]:
        """Items `key [labels...] = value` or `key [labels...] { body }`."""
        items = []
        while self.peek() != closing:
            _, key, line = self.take("ident", "str")
            labels = []
            while self.peek() == "str":
                labels.append(self.take("str")[1])
            if self.peek() in ("=", ":"):
                self.i += 1
            items.append((key, labels, self.value(), line))
            if self.peek() == ",":
                self.i += 1
        if closing:
            self.take(closing)
        return items

    def value(self) -> Any:
        kind, val, _ = self.take("str", "num", "ident", "[", "{")
        if kind == "[":
            values = []
            while self.peek() != "]":
                values.append(self.value())
                if self.peek() == ",":
                    self.i += 1
            self.take("]")
            return values
        if kind == "{":
            return self.body("}")
        if kind == "ident":
            return {"true": True, "false": False}.get(val, val)
        return val


def parse_policy(text: str) -> dict[str, set[str]]:
    """Policy text (HCL or JSON) -> {path pattern: capabilities}. Raises PolicyError with Vault's wording."""
    try:
        if text.lstrip().startswith("{"):
            raw = json.loads(text).get("path") or {}
            items = [(p, attrs, 0) for p, attrs in raw.items()]
        else:
            items = []
            for key, labels, value, line in _HclParser(text).body(None):
                if key not in ("path", "name"):
                    raise PolicyError(go_multierror(f"invalid key {go_quote(key)} on line {line}"))
                if key == "path":
                    attrs = {k: v for k, _, v, _ in value} if isinstance(value, list) else {}
                    items.append((labels[0] if labels else "", attrs, line))
        return {pattern.lstrip("/"): _capabilities(pattern, attrs) for pattern, attrs, _ in items}
    except (ValueError, AttributeError, IndexError) as exc:
        raise PolicyError(f"failed to parse policy: {exc}") from None


def _capabilities(pattern: str, attrs: dict[str, Any]) -> set[str]:
    unknown = set(attrs) - PATH_KEYS
    if unknown:
        raise PolicyError(f"path {go_quote(pattern)}: invalid key {go_quote(sorted(unknown)[0])}")
    caps = [str(c).lower() for c in attrs.get("capabilities") or []]
    if attrs.get("policy"):
        if attrs["policy"] not in LEGACY_POLICY:
            raise PolicyError(f"path {go_quote(pattern)}: invalid policy {go_quote(str(attrs['policy']))}")
        caps += LEGACY_POLICY[attrs["policy"]]
    for cap in caps:
        if cap not in CAPABILITIES:
            raise PolicyError(f"path {go_quote(pattern)}: invalid capability {go_quote(cap)}")
    return {"deny"} if "deny" in caps else set(caps)


@dataclass(frozen=True)
class Acl:
    """Merged rules of a token's policies: same pattern -> union of capabilities; deny wins (policies.mdx)."""

    rules: dict[str, frozenset[str]]

    @classmethod
    def of(cls, policy_texts: list[str]) -> Acl:
        merged: dict[str, set[str]] = {}
        for text in policy_texts:
            for pattern, caps in parse_policy(text).items():
                merged.setdefault(pattern, set()).update(caps)
        return cls({p: frozenset({"deny"} if "deny" in c else c) for p, c in merged.items()})

    def allows(self, path: str, capability: str) -> bool:
        caps = self.capabilities(path, listing=capability == "list")
        return "deny" not in caps and capability in caps

    def capabilities(self, path: str, listing: bool = False) -> frozenset[str]:
        exact = {p for p in self.rules if not p.endswith("*") and "+" not in p.split("/")}
        for candidate in (path, path.rstrip("/")) if listing else (path,):
            if candidate in exact:
                return self.rules[candidate]
        matching = [p for p in self.rules if p not in exact and _pattern_matches(p, path)]
        return self.rules[max(matching, key=_priority)] if matching else frozenset()


def _pattern_matches(pattern: str, path: str) -> bool:
    is_prefix = pattern.endswith("*")
    segs, parts = pattern.removesuffix("*").split("/"), path.split("/")
    if len(parts) < len(segs) or (not is_prefix and len(parts) != len(segs)):
        return False
    for i, seg in enumerate(segs):
        if seg == "+":
            continue
        if i == len(segs) - 1 and is_prefix:
            if not parts[i].startswith(seg):
                return False
        elif parts[i] != seg:
            return False
    return True


def _priority(pattern: str) -> tuple[int, bool, int, int, str]:
    """policies.mdx "Priority matching": a later first wildcard, no trailing `*`, fewer `+`, longer, larger."""
    wildcards = [i for i, ch in enumerate(pattern) if ch in "*+"]
    return (wildcards[0], not pattern.endswith("*"), -pattern.split("/").count("+"), len(pattern), pattern)
