"""Redaction: the last line of defence between a secret and a log line, a report or an exception text.

Three nets, applied together by `scrub`:
- every secret value the run reads or mints is registered here and replaced wherever it appears, as it is and
  in the forms an encoder makes of it (JSON and Python string escapes, percent-encoding, whitespace collapsed);
- values under secret-looking keys are replaced whatever they hold;
- token shapes that need no registration (Coder API keys, Vault tokens, JWTs) are replaced by pattern,
  so a value that was never registered (say, one echoed back by a server) still does not leak.

Order matters: a secret cut by a truncation, split by a line break or escaped by an encoder no longer matches
what was registered. So every text transformation of output that may hold a secret goes through the helpers
at the end of this module (`one_line`, `first_line`, `clip`, `to_json`), which scrub first and transform after.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

MASK = "[REDACTED]"
MIN_REGISTERED_LENGTH = 4  # shorter values would mask ordinary words; no real secret is that short

_SECRET_KEYS = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "value",
        "secret_value",
        "client_secret",
        "access_token",
        "refresh_token",
        "id_token",
        "client_token",
        "client_assertion",
        "assertion",
        "api_key",
        "apikey",
        "private_key",
        "jwt",
        "authorization",
        "x-vault-token",
        "coder-session-token",
        "session_token",
        "key",
    }
)
_SECRET_KEY_SUFFIXES = ("_token", "_secret", "_password", "_jwt")
_PATTERNS = (
    re.compile(r"\b[0-9A-Za-z]{10}-[0-9A-Za-z]{22}\b"),  # Coder API key: <id>-<secret>
    re.compile(r"\bhv[sbr]\.[0-9A-Za-z_-]{20,}"),  # Vault service/batch/recovery tokens
    re.compile(r"\b[sbr]\.[0-9A-Za-z]{24}\b"),  # OpenBao's (and Vault < 1.10's): s./b./r. + 24 base62 characters
    re.compile(r"\beyJ[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]{5,}\.[0-9A-Za-z_-]*"),  # JWT (Entra, service account)
)


def is_secret_key(key: str) -> bool:
    lowered = key.lower()
    return lowered in _SECRET_KEYS or lowered.endswith(_SECRET_KEY_SUFFIXES)


class Redactor:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: tuple[str, ...] = ()

    def register(self, value: str | None) -> None:
        if not value or len(value) < MIN_REGISTERED_LENGTH:
            return
        forms = {f for f in encoded_forms(value) if len(f) >= MIN_REGISTERED_LENGTH}
        with self._lock:
            if not forms <= set(self._values):
                # longest first, so a secret that contains another is masked whole
                self._values = tuple(sorted({*self._values, *forms}, key=len, reverse=True))

    def clear(self) -> None:
        with self._lock:
            self._values = ()

    def scrub(self, text: str) -> str:
        for value in self._values:
            if value in text:
                text = text.replace(value, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(MASK, text)
        return text

    def scrub_obj(self, obj: Any) -> Any:
        """Scrub every string in a JSON-like structure; mask values under secret-looking keys. Anything that is
        not JSON (a datetime, an exception, a dataclass) becomes its scrubbed str() here, before an encoder's
        `default=str` or repr() could turn it into text nobody scrubbed."""
        if obj is None or isinstance(obj, bool | int | float):
            return obj
        if isinstance(obj, str):
            return self.scrub(obj)
        if isinstance(obj, Mapping):
            return {
                self.scrub(str(k)): (
                    MASK if isinstance(k, str) and is_secret_key(k) and v not in (None, "") else self.scrub_obj(v)
                )
                for k, v in obj.items()
            }
        if isinstance(obj, list | tuple):
            return [self.scrub_obj(v) for v in obj]
        return self.scrub(str(obj))


def encoded_forms(value: str) -> set[str]:
    """`value` and what common encoders make of it, each of which could carry it into output unmatched: JSON
    (ASCII-escaped or not), a Python repr (ASCII-escaped or not), percent-encoding (a URL), and whitespace
    collapsed to one space (a one-line message)."""
    forms = {value, " ".join(value.split())}
    for text in (json.dumps(value), json.dumps(value, ensure_ascii=False), repr(value), ascii(value)):
        forms.add(text[1:-1])
    forms |= {quote(value, safe=""), quote(value, safe="/:")}
    return forms


REDACTOR = Redactor()
register_secret = REDACTOR.register
scrub = REDACTOR.scrub
scrub_obj = REDACTOR.scrub_obj


# ---- the only ways output text is transformed: scrub first, then transform ------------------------------


def one_line(text: object) -> str:
    """Scrubbed, then every run of whitespace (line breaks included) collapsed to one space."""
    return " ".join(scrub(str(text)).split())


def first_line(text: object) -> str:
    """Scrubbed, then its first non-empty line (exception texts: the rest is a traceback or a body)."""
    return next((line for line in scrub(str(text)).strip().splitlines() if line.strip()), "")


def clip(text: object, limit: int) -> str:
    """Scrubbed, then cut to `limit` characters: a cut never leaves the head of a secret behind."""
    return scrub(str(text))[:limit]


def to_json(obj: Any, **kwargs: Any) -> str:
    """Scrubbed (values, keys and secret-looking keys), then JSON-encoded."""
    return json.dumps(scrub_obj(obj), default=str, **kwargs)
