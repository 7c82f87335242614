"""Vault's wire dialect: Go's text formats (durations, RFC 3339, go-multierror lists, %q) and the response
envelope every handler answers with, as a base class the Vault emulator's mixins share.

Sources: shared/api-specs/vault/NOTES.md §0 (transport, the full envelope §0.1) and the Go source it cites.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import string
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.emulators.core import Emulator, HttpError, Request, Response

# ---- Go formatting ------------------------------------------------------------------------------------


def go_multierror(*messages: str) -> str:
    """hashicorp/go-multierror's ListFormatFunc, which is what Vault puts in `errors` for wrapped errors."""
    if len(messages) == 1:
        return f"1 error occurred:\n\t* {messages[0]}\n\n"
    return f"{len(messages)} errors occurred:\n\t" + "\n\t".join(f"* {m}" for m in messages) + "\n\n"


def go_quote(text: str) -> str:
    return json.dumps(text)  # Go's %q for printable ASCII


def go_duration(seconds: int) -> str:
    """time.Duration.String() for whole seconds: 0s, 45s, 15m0s, 1h0m0s."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def parse_duration(value: Any) -> int:
    """Vault's TypeDurationSecond: an int (seconds), a digit string, or a Go duration ("15m", "1h30m")."""
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return int(value)
    text = str(value).strip()
    if re.fullmatch(r"\d+", text):
        return int(text)
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"time: invalid duration {go_quote(text)}")
    factor = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    return int(sum(float(n) * factor[u] for n, u in parts))


def rfc3339(ts: float) -> str:
    """Go's RFC3339Nano in UTC: fraction without trailing zeros, `Z` suffix."""
    moment = datetime.fromtimestamp(ts, UTC)
    fraction = f"{moment.microsecond:06d}".rstrip("0")
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{fraction}" if fraction else "") + "Z"


def random_token(prefix: str = "hvs.") -> str:
    alphabet = string.ascii_letters + string.digits
    return prefix + "".join(secrets.choice(alphabet) for _ in range(24))


def as_list(value: Any) -> list[str]:
    """Vault's TypeCommaStringSlice: a list, or a comma-separated string."""
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def locked(fn: Callable[..., Response]) -> Callable[..., Response]:
    """Run the handler under the emulator's lock (the server is threaded)."""

    @functools.wraps(fn)
    def wrapper(self: Emulator, req: Request) -> Response:
        with self.lock:
            return fn(self, req)

    return wrapper


class VaultDialect(Emulator):
    """Vault's error body, headers and response envelope; the base of every Vault mixin."""

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"errors": [message]})

    def extra_headers(self) -> dict[str, str]:
        return {"Cache-Control": "no-store"}

    def _ok(
        self,
        data: Any = None,
        *,
        auth: dict[str, Any] | None = None,
        warnings: list[str] | None = None,
        mount_type: str = "kv",
        status: int = 200,
        extra: dict[str, Any] | None = None,
    ) -> Response:
        """The full envelope (NOTES §0.1); the docs' samples show only `data`/`auth`."""
        body = {
            "request_id": str(uuid.uuid4()),
            "lease_id": "",
            "renewable": False,
            "lease_duration": 0,
            "data": data,
            "wrap_info": None,
            "warnings": warnings,
            "auth": auth,
            "mount_type": mount_type,
            **(extra or {}),
        }
        return Response(status, body)

    @staticmethod
    def _no_content() -> Response:
        return Response(204, None, {"Content-Type": "application/json"})  # Vault sets it even without a body

    @staticmethod
    def _missing() -> Response:
        return Response(404, {"errors": []})

    @staticmethod
    def _bad(message: str) -> HttpError:
        return HttpError(400, {"errors": [message]})

    def _body(self, req: Request) -> dict[str, Any]:
        try:
            body = req.json()
        except ValueError as exc:
            raise self._bad(f"failed to parse JSON input: {exc}") from None
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise self._bad("failed to parse JSON input: expected a JSON object")
        return body
