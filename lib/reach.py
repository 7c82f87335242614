"""Is the other end there at all? A refused connection or a host name that does not resolve is no passing
hiccup worth minutes of backoff: it is a wrong address, a service that is down, or a missing DNS entry. Each
client's retries go on for at most UNREACHABLE_WITHIN seconds for those (lib/retry.py), and the error then says
in one line which of the two it was, for which host, and how long was spent (`describe`).

Recognised through the exception chain (requests and azure-core wrap urllib3, which wraps the socket error)
and, where a wrapper keeps only the text, by the operating system's own words.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

UNREACHABLE_WITHIN = 10.0  # seconds of retrying a refused connection or an unresolvable name

REFUSED, NO_DNS = "connection refused", "name does not resolve"
_TEXT = (
    (REFUSED, re.compile(r"Connection refused|\[Errno 111\]|\[WinError 10061\]", re.I)),
    (NO_DNS, re.compile(
        r"Failed to resolve|Name or service not known|nodename nor servname|getaddrinfo failed"
        r"|Temporary failure in name resolution|No address associated with hostname|\[Errno -[235]\]",
        re.I,
    )),
)  # fmt: skip
_HOST = re.compile(r"host='([^']+)', port=(\d+)|Failed to resolve '([^']+)'")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        todo += [link for link in linked if isinstance(link, BaseException)]  # urllib3's `reason` may be text


def unreachable(exc: BaseException) -> str | None:
    """REFUSED, NO_DNS, or None when the failure is anything else (a timeout, an HTTP status, TLS)."""
    for link in _chain(exc):
        if isinstance(link, ConnectionRefusedError):
            return REFUSED
        if isinstance(link, socket.gaierror):
            return NO_DNS
    text = " ".join(str(link) for link in _chain(exc))
    return next((kind for kind, pattern in _TEXT if pattern.search(text)), None)


def where(exc: BaseException) -> str:
    """host:port (or the host name that did not resolve) as the failure's own text names it; "" if it does not."""
    for link in _chain(exc):
        found = _HOST.search(str(link))
        if found:
            return f"{found.group(1)}:{found.group(2)}" if found.group(1) else str(found.group(3))
    return ""


def gave_up(exc: BaseException, attempts: int, seconds: float) -> None:
    """Record on the exception how long its call tried (a PEP 678 note, read back by `describe`)."""
    exc.add_note(f"gave up after {attempts} attempt{'s' if attempts != 1 else ''} in {seconds:.1f} s")


def describe(exc: BaseException) -> str | None:
    """`connection refused (host:port); gave up after 4 attempts in 9.6 s` for an unreachable endpoint, else
    None (the caller keeps its own wording for statuses, timeouts and the rest)."""
    kind = unreachable(exc)
    if kind is None:
        return None
    host = where(exc)
    notes = [n for link in _chain(exc) for n in getattr(link, "__notes__", ())]
    return f"{kind}{f' ({host})' if host else ''}" + (f"; {notes[0]}" if notes else "")
