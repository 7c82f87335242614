"""The HTTPS side of every emulator: a threaded TLS server on loopback and the request handler that turns
each HTTP request into a `Request` for `Emulator.dispatch`, then writes its `Response` back. `Emulator.start()`
(tests/emulators/core.py) builds both."""

from __future__ import annotations

import email.utils
import ssl
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from tests.emulators.core import DropConnection, Request

if TYPE_CHECKING:
    from tests.emulators.core import Emulator


class Server(ThreadingHTTPServer):
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


def handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
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
            except DropConnection:  # an injected dropped connection: no status line, the socket just closes
                if emulator.record_requests:
                    emulator.platform.log.record(emulator.service, req.op or "unrouted", self.command, self.path, 0)
                self.close_connection = True
                return
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
