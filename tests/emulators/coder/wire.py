"""Coder's wire dialect: Go's text formats (encoding/json with HTML escaping, time.Time, time.Duration,
strconv.ParseBool) and httpapi's response writer and error envelope.

Sources: shared/api-specs/coder/NOTES.md §6.12 (times), README §2/§4 (nil slices, omitempty `detail`).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from tests.emulators.core import HttpError, Response

NS = 1_000_000_000


def go_json(value: Any) -> bytes:
    """encoding/json with SetEscapeHTML(true), as json.Encoder writes it: compact, newline-terminated."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return (text + "\n").encode()


def _fraction(dt: datetime) -> str:
    return f".{dt.microsecond:06d}".rstrip("0") if dt.microsecond else ""


def rfc3339(dt: datetime) -> str:
    """time.Time.MarshalJSON (RFC 3339, trailing zeros of the fraction trimmed) [NOTES §6.12]."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + _fraction(dt) + "Z"


def go_time_string(dt: datetime) -> str:
    """time.Time.String() of a UTC time: `2026-01-02 03:04:05.123456 +0000 UTC`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + _fraction(dt) + " +0000 UTC"


def _decimal(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(ns: int) -> str:
    """time.Duration.String(): 2160h0m0s, 1h30m0s, 1.5s, 250ms, 0s."""
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u == 0:
        return "0s"
    if u < 1000:
        return f"{sign}{u}ns"
    if u < NS:
        return sign + (_decimal(u, 1000) + "µs" if u < 1_000_000 else _decimal(u, 1_000_000) + "ms")
    hours, rest = divmod(u, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    seconds = _decimal(rest, NS) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else sign + seconds


_GO_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h))+")


def parse_duration_setting(key: str, value: Any) -> int:
    """A lifetime setting as seconds (int/float) or a Go duration string ("2160h"); returns nanoseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be seconds (a number) or a Go duration string like 2160h")
    if isinstance(value, str):
        if not _GO_DURATION.fullmatch(value):
            raise ValueError(f"{key}: {value!r} is not a Go duration like 2160h0m0s")
        ns = sum(int(float(n) * _GO_UNITS[u]) for n, u in re.findall(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", value))
    else:
        ns = int(value * NS)
    if ns <= 0:
        raise ValueError(f"{key} must be positive")
    return ns


def write(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """httpapi.Write: `application/json; charset=utf-8`, HTML-escaped, one value plus newline."""
    return Response(status, go_json(body), dict(headers or {}), "application/json; charset=utf-8")


def fail(status: int, message: str, detail: str = "", validations: list[dict[str, str]] | None = None) -> HttpError:
    body: dict[str, Any] = {"message": message}
    if detail:
        body["detail"] = detail  # omitempty [README 4]
    if validations:
        body["validations"] = validations
    resp = write(status, body)
    return HttpError(status, resp.body, content_type=resp.content_type)


def go_bool(value: str | None) -> bool:
    """strconv.ParseBool, errors ignored (the handler does `includeAll, _ = strconv.ParseBool(...)`)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")
