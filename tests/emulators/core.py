"""The shared base of every emulator: routing, JSON errors, fault and latency injection, the emulated clock
and the request log. The HTTPS server and request handler are in tests/emulators/server.py.

An emulator subclasses `Emulator`, declares routes with `@route(method, pattern, op)`, keeps its state
in memory behind `self.lock`, and overrides `reset`, `authenticate` and `error` to speak its service's
dialect. What it does not implement answers 404 or 405, never a guess.
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from tests.emulators.platform import Platform
    from tests.emulators.server import Server


class DropConnection(Exception):
    """Raise from `dispatch` to close the connection without an answer (a dropped connection fault)."""


class HttpError(Exception):
    """Raise from a handler (or `authenticate`) to answer with this response."""

    def __init__(
        self,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        super().__init__(f"HTTP {status}")
        self.response = Response(status, body, dict(headers or {}), content_type)


@dataclass
class Response:
    status: int
    body: Any = None  # dict/list -> JSON; bytes/str -> as is; None -> empty body
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    method: str
    path: str  # percent-encoded, without the query
    query: dict[str, list[str]]
    headers: Any  # email.message.Message: case-insensitive .get()
    body: bytes
    params: dict[str, str] = field(default_factory=dict)  # route groups, percent-decoded
    op: str = ""
    base_url: str = ""
    response_headers: dict[str, str] = field(default_factory=dict)  # added to whatever answers (ARM's rate limits)
    user: str | None = None  # who a bearer token other than the emulator's own authenticated as (kube)

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def json(self) -> Any:
        """The JSON body, or None when there is none. Invalid JSON raises ValueError."""
        if not self.body:
            return None
        return json.loads(self.body)


@dataclass
class Fault:
    service: str
    operation: str = "*"  # exact op, "*" for all, or a prefix ending in "*" ("fic.*")
    status: int | None = None  # None: latency only
    count: int | None = 1  # None: until cleared
    retry_after: str | None = None
    delay: float = 0.0
    match: str | None = None  # only requests whose path contains this
    code: str | None = None
    message: str | None = None
    skip: int = 0  # let the first `skip` matching requests through ("the second page fails")
    body: str | None = None  # answer this raw text as JSON (malformed JSON); status defaults to 200
    drop: str | None = None  # close the connection unanswered: "request" (before the handler) or "response" (after)
    # In-process only (not over the control API: a callable): another client's request that lands first, run
    # after the delay and before this request's handler, e.g. someone deletes the object this DELETE names, so
    # the handler gives the server's own answer to the race (404, a 409 precondition). Needs a count: the
    # callable's own requests to the same service must not match the rule again.
    before: Callable[[], None] | None = field(default=None, compare=False)

    def applies(self, service: str, op: str, path: str) -> bool:
        if self.service != service or (self.match and self.match.lower() not in unquote(path).lower()):
            return False
        if self.operation == "*" or self.operation == op:
            return True
        return self.operation.endswith("*") and op.startswith(self.operation[:-1])


class Faults:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[Fault] = []

    def add(self, fault: Fault) -> None:
        if fault.before is not None and fault.count is None:
            raise ValueError("a fault with `before` needs a count: its own requests would match it again")
        with self._lock:
            self._rules.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, service: str, op: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.applies(service, op, path):
                    if rule.skip > 0:
                        rule.skip -= 1
                        continue
                    if rule.count is not None:
                        rule.count -= 1
                        if rule.count <= 0:
                            self._rules.remove(rule)
                    return rule
        return None


class Clock:
    """The platform's emulated time: real time plus an offset that only moves forward."""

    def __init__(self) -> None:
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        return datetime.now(UTC) + self._offset

    def timestamp(self) -> float:
        return self.now().timestamp()

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()


class RequestLog:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def record(self, service: str, op: str, method: str, path: str, status: int) -> None:
        with self._lock:
            self._entries.append(
                {
                    "seq": len(self._entries) + 1,
                    "time": self._clock.now().isoformat(),
                    "service": service,
                    "op": op,
                    "method": method,
                    "path": path,
                    "status": status,
                }
            )

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def entries(self, service: str | None = None, op: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [
                e
                for e in self._entries
                if (service is None or e["service"] == service) and (op is None or e["op"] == op)
            ]

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for entry in self.entries():
            per = out.setdefault(entry["service"], {})
            per[entry["op"]] = per.get(entry["op"], 0) + 1
        return out


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    op: str
    handler_name: str


def route(method: str, pattern: str, op: str) -> Callable[[Callable[..., Response]], Callable[..., Response]]:
    """Mark an emulator method as the handler for `method` on paths matching `pattern` (full match)."""

    def mark(fn: Callable[..., Response]) -> Callable[..., Response]:
        fn.__dict__.setdefault("_routes", []).append((method, pattern, op))
        return fn

    return mark


class Emulator:
    service = "base"  # the name used in fault rules, request counts and the request log
    case_insensitive_paths = False  # ARM matches path segments case-insensitively
    record_requests = True

    def __init__(self, platform: Platform, service: str | None = None) -> None:
        self.platform = platform
        if service:
            self.service = service
        self.lock = threading.RLock()
        self.routes: list[_Route] = []
        flags = re.IGNORECASE if self.case_insensitive_paths else 0
        for name in dir(type(self)):
            fn = getattr(type(self), name, None)
            for method, pattern, op in getattr(fn, "_routes", ()):
                self.routes.append(_Route(method, re.compile(pattern, flags), op, name))
        self.server: Server | None = None
        self.reset()

    # ---- overridable dialect --------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop all state and re-seed the baseline."""

    def authenticate(self, req: Request) -> None:
        """Raise HttpError when the request is not authenticated. Runs before faults and handlers."""

    def admit(self, req: Request) -> None:
        """The service's own admission control after authentication and before faults and handlers (ARM's
        throttling): raise HttpError to refuse; headers put in `req.response_headers` go on any answer."""

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"error": {"code": code, "message": message}})

    def not_found(self, req: Request) -> Response:
        return self.error(404, "NotFound", f"no route for {req.method} {req.path}")

    def method_not_allowed(self, req: Request) -> Response:
        return self.error(405, "MethodNotAllowed", f"{req.method} is not supported on {req.path}")

    def extra_headers(self) -> dict[str, str]:
        return {}

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Server-side settings a real deployment sets by flag (e.g. Coder's max token lifetime), changed
        through the control API. Override; unknown keys must raise ValueError. Reset restores defaults."""
        if settings:
            raise ValueError(f"{self.service} has no settings; got {sorted(settings)}")
        return {}

    # ---- lifecycle ------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self.server is not None, "emulator not started"
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def start(self, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        from tests.emulators.server import Server, handler_for  # server.py builds this module's Requests

        self.server = Server(("127.0.0.1", port), handler_for(self), ssl_context)
        threading.Thread(target=self.server.serve_forever, name=f"emu-{self.service}", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ---- dispatch -------------------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        resp = self._dispatch(req)
        for key, value in req.response_headers.items():
            resp.headers.setdefault(key, value)
        return resp

    def _dispatch(self, req: Request) -> Response:
        matched = [(r, m) for r in self.routes if (m := r.pattern.fullmatch(req.path))]
        if not matched:
            return self.not_found(req)
        chosen = next(((r, m) for r, m in matched if r.method == req.method), None)
        if chosen is None:
            req.op = "unsupported"
            return self.method_not_allowed(req)
        rt, m = chosen
        req.op = rt.op
        req.params = {k: unquote(v) for k, v in m.groupdict().items() if v is not None}
        try:
            self.authenticate(req)
            self.admit(req)
            fault = self.platform.faults.take(self.service, req.op, req.path)
            handler: Callable[[Request], Response] = getattr(self, rt.handler_name)
            if fault is not None:
                return answer_with_fault(fault, lambda: handler(req), self.error)
            return handler(req)
        except HttpError as exc:
            return exc.response


def answer_with_fault(
    fault: Fault, run: Callable[[], Response], error: Callable[[int, str, str], Response]
) -> Response:
    """What a matched fault makes of a request: latency first, then a dropped connection, a garbled body or an
    error status in the service's envelope instead of `run()`; latency alone (or `drop: "response"`) still
    runs it, as on a slow server or one whose answer is lost after it acted."""
    if fault.delay:
        time.sleep(fault.delay)
    if fault.before is not None:
        fault.before()
    if fault.drop == "request":
        raise DropConnection
    if fault.body is not None:  # a garbled answer: the handler does not run
        headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
        return Response(fault.status or 200, fault.body, headers)
    if fault.status is not None:
        resp = error(
            fault.status,
            fault.code or _default_code(fault.status),
            fault.message or f"injected fault ({fault.status})",
        )
        if fault.retry_after is not None:
            resp.headers["Retry-After"] = fault.retry_after
        return resp
    resp = run()
    if fault.drop == "response":
        raise DropConnection
    return resp


def _default_code(status: int) -> str:
    return {
        400: "BadRequest",
        401: "Unauthorized",
        403: "Forbidden",
        404: "NotFound",
        409: "Conflict",
        429: "TooManyRequests",
        500: "InternalServerError",
        503: "ServiceUnavailable",
    }.get(status, "Error")
