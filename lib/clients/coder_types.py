"""Coder's users and API keys as they come over the wire, parsed tolerantly: every release line's shape is
accepted, unknown fields are ignored, and a record that cannot be read becomes a `Malformed` naming the token
(a finding for the caller), never a crash.

Wire differences between Coder releases (all read in coder/coder):
- `allow_list` entries: one release line's codersdk/allowlist.go encodes `APIAllowListTarget` as a JSON
  string (`MarshalJSON`: "encodes as a JSON string: \"<type>:<id>\"", e.g. `"*:*"`); later ones as the object
  `{"type": "*", "id": "*"}` ("ensures encoding/json uses the structured representation instead of the legacy
  colon-delimited string form"). Servers before scopes (~v2.27) send no `allow_list` at all.
- `scopes` (a list, canonical names like `coder:all`) exists from ~v2.27; before it only the legacy single
  `scope` (`all` | `application_connect`); newer servers send both (`scope` then `""` for custom scopes).
- Times are Go RFC 3339 with 0-9 fractional digits; Go's zero time and the Unix epoch mean "never".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

_KEY_SHAPE = re.compile(r"([0-9A-Za-z]{10})-[0-9A-Za-z]{22}")
NOT_A_KEY = "(not a Coder API key)"


def token_id(key: str) -> str:
    """The key id is the part before the dash of `<10>-<22>`: the record of a token we hold, and public. Text of
    any other shape (a wrong value in Vault) has no public part: nothing of it is returned."""
    match = _KEY_SHAPE.fullmatch(key)
    return match.group(1) if match else NOT_A_KEY


class TokenFormatError(ValueError):
    """An API key record this client cannot read; names the token as far as the record allows."""

    def __init__(self, data: Any, problem: str) -> None:
        record = data if isinstance(data, dict) else {}
        self.token_id = str(record.get("id") or "")
        self.token_name = str(record.get("token_name") or "")
        self.problem = problem
        super().__init__(f"API key {self.label}: {problem}")

    @property
    def label(self) -> str:
        return f"{self.token_name or '(no name)'} ({self.token_id or 'no id'})"


@dataclass(frozen=True)
class Malformed:
    """A token record Coder sent that could not be read: reported, never acted on."""

    token_id: str
    token_name: str
    problem: str

    @property
    def label(self) -> str:
        return f"{self.token_name or '(no name)'} ({self.token_id or 'no id'})"

    @classmethod
    def of(cls, exc: TokenFormatError) -> Malformed:
        return cls(exc.token_id, exc.token_name, exc.problem)


def parse_time(value: str | None) -> datetime | None:
    """Go RFC 3339 with 0-9 fractional digits; Go's zero time and the Unix epoch both mean 'never'."""
    if not value or value.startswith(("0001-01-01", "1970-01-01T00:00:00Z")):
        return None
    head, _, rest = value.partition(".")
    if rest:  # trim fractions to microseconds; fromisoformat rejects 9 digits
        digits = "".join(c for c in rest if c.isdigit())
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


@dataclass(frozen=True)
class User:
    id: str
    username: str
    status: str
    roles: tuple[str, ...]  # site roles; `member` is implicit and never listed
    is_service_account: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(
            id=data["id"],
            username=data["username"],
            status=data.get("status", ""),
            roles=tuple(sorted(r["name"] if isinstance(r, dict) else str(r) for r in data.get("roles") or [])),
            is_service_account=bool(data.get("is_service_account", False)),
        )


def allow_entry(raw: Any) -> str:
    """One allow-list entry, either wire form, as the canonical `type:id`."""
    if isinstance(raw, str):
        kind, sep, ident = raw.strip().partition(":")
    elif isinstance(raw, dict) and isinstance(raw.get("type"), str) and isinstance(raw.get("id"), str):
        kind, sep, ident = raw["type"].strip(), ":", raw["id"].strip()
    else:
        raise ValueError(f'allow_list entry {raw!r} is neither "type:id" nor {{type, id}}')
    if not sep or not kind or not ident:
        raise ValueError(f"allow_list entry {raw!r} is not <type>:<id>")
    return f"{kind}:{ident}"


def _scopes(data: dict[str, Any]) -> tuple[str, ...]:
    scopes = data.get("scopes")
    if scopes is None:  # servers before scopes: only the legacy single scope
        legacy = data.get("scope")
        if legacy is not None and not isinstance(legacy, str):
            raise ValueError(f"scope {legacy!r} is not a string")
        return (legacy,) if legacy else ()
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise ValueError(f"scopes {scopes!r} is not a list of strings")
    return tuple(scopes)


def _allow_list(data: dict[str, Any]) -> tuple[str, ...]:
    entries = data.get("allow_list")
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ValueError(f"allow_list {entries!r} is not a list")
    return tuple(allow_entry(e) for e in entries)


def _time(data: dict[str, Any], name: str) -> datetime | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} {value!r} is not a time")
    try:
        return parse_time(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not RFC 3339") from None


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    token_name: str
    created_at: datetime | None
    expires_at: datetime | None
    last_used: datetime | None
    lifetime_seconds: int
    scopes: tuple[str, ...]
    allow_list: tuple[str, ...]  # canonical `type:id`; () when the server predates allow lists
    login_type: str = "token"
    username: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Token:
        """Raises TokenFormatError (naming the token) for a record it cannot read; ignores unknown fields."""
        if not isinstance(data, dict):
            raise TokenFormatError(data, f"expected a JSON object, got {type(data).__name__}")
        try:
            if not isinstance(data.get("id"), str) or not data["id"]:
                raise ValueError("no id")
            lifetime = data.get("lifetime_seconds") or 0
            if isinstance(lifetime, bool) or not isinstance(lifetime, int | float):
                raise ValueError(f"lifetime_seconds {lifetime!r} is not a number")
            return cls(
                id=data["id"],
                user_id=str(data.get("user_id") or ""),
                token_name=str(data.get("token_name") or ""),
                created_at=_time(data, "created_at"),
                expires_at=_time(data, "expires_at"),
                last_used=_time(data, "last_used"),
                lifetime_seconds=int(lifetime),
                scopes=_scopes(data),
                allow_list=_allow_list(data),
                login_type=str(data.get("login_type") or "token"),
                username=str(data.get("username") or ""),
            )
        except ValueError as exc:
            raise TokenFormatError(data, str(exc)) from None


@dataclass(frozen=True)
class TokenList:
    """A token list as read: the records understood and those that were not (each a finding for the caller).
    Iterating yields the tokens."""

    tokens: tuple[Token, ...] = ()
    malformed: tuple[Malformed, ...] = ()

    def __iter__(self) -> Iterator[Token]:
        return iter(self.tokens)

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def from_json(cls, data: Any) -> TokenList:
        """A list (or Go's `null` for none); each record parsed on its own."""
        if data is not None and not isinstance(data, list):
            raise ValueError(f"expected a JSON list of API keys, got {type(data).__name__}")
        tokens: list[Token] = []
        malformed: list[Malformed] = []
        for item in data or []:
            try:
                tokens.append(Token.from_json(item))
            except TokenFormatError as exc:
                malformed.append(Malformed.of(exc))
        return cls(tuple(tokens), tuple(malformed))
