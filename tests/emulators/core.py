"""The shared base of every emulator: HTTPS server, routing, JSON errors, fault and latency injection,
the emulated clock and the request log.

An emulator subclasses `Emulator`, declares routes with `@route(method, pattern, op)`, keeps its state
in memory behind `self.lock`, and overrides `reset`, `authenticate` and `error` to speak its service's
dialect. What it does not implement answers 404 or 405, never a guess.
"""

from __future__ import annotations

import email.utils
import json
import re
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from tests.emulators.platform import Platform


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
        with self._lock:
            self._rules.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def take(self, service: str, op: str, path: str) -> Fault | None:
        with self._lock:
            for rule in self._rules:
                if rule.applies(service, op, path):
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
        self.server: _Server | None = None
        self.reset()

    # ---- overridable dialect --------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop all state and re-seed the baseline."""

    def authenticate(self, req: Request) -> None:
        """Raise HttpError when the request is not authenticated. Runs before faults and handlers."""

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
        self.server = _Server(("127.0.0.1", port), _handler_for(self), ssl_context)
        threading.Thread(target=self.server.serve_forever, name=f"emu-{self.service}", daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    # ---- dispatch -------------------------------------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
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
            fault = self.platform.faults.take(self.service, req.op, req.path)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.status is not None:
                    resp = self.error(
                        fault.status,
                        fault.code or _default_code(fault.status),
                        fault.message or f"injected fault ({fault.status})",
                    )
                    if fault.retry_after is not None:
                        resp.headers["Retry-After"] = fault.retry_after
                    return resp
            result: Response = getattr(self, rt.handler_name)(req)
            return result
        except HttpError as exc:
            return exc.response


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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], ctx: ssl.SSLContext) -> None:
        self._ctx = ctx
        super().__init__(address, handler)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = self.socket.accept()
        return self._ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # TLS handshakes aborted by clients are normal noise


def _handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: Nagle would stall ~40 ms each
        server_version = f"emulator-{emulator.service}"
        sys_version = ""

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            return email.utils.formatdate(emulator.platform.clock.timestamp(), usegmt=True)

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _handle(self) -> None:
            body = self._read_body()
            parts = urlsplit(self.path)
            host = (
                self.headers.get("Host") or f"127.0.0.1:{emulator.server.server_address[1] if emulator.server else 0}"
            )
            req = Request(
                self.command,
                parts.path,
                parse_qs(parts.query, keep_blank_values=True),
                self.headers,
                body,
                base_url=f"https://{host}",
            )
            try:
                resp = emulator.dispatch(req)
            except Exception as exc:  # an emulator bug must surface as a 500, not a hung connection
                resp = emulator.error(500, "InternalServerError", f"emulator error: {type(exc).__name__}: {exc}")
            if emulator.record_requests:
                emulator.platform.log.record(
                    emulator.service, req.op or "unrouted", self.command, self.path, resp.status
                )
            payload = resp.encode()
            self.send_response(resp.status)
            headers = {**emulator.extra_headers(), **resp.headers}
            if payload or resp.status not in (204, 304):
                headers.setdefault("Content-Type", resp.content_type)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_LIST = _handle

    return Handler
