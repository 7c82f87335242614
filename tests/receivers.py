"""Recording stand-ins for what jobs send to: the alert webhook (Slack and the like, which cannot run here),
and, only where a fault has to be scripted (tests/faults/), the Pushgateway; everything else pushes to a real
Pushgateway (tests/pushgateway.py).

Both listen on 127.0.0.1 and record every request, so a test can parse what was pushed with
prometheus_client's own text parser or read the webhook's JSON. Given a TLS context (`Platform.server_tls()`,
signed by the platform's CA that REQUESTS_CA_BUNDLE names) they speak https, as the jobs require of every URL;
plain http reaches them only from a run with --allow-insecure-http (the loopback test override, lib/settings.py).
`serve` is the server under both `receiver` (one status for every request) and the fault matrix's scripted
receiver (tests/faults/common.py: answers in order).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (past a client's timeout)


@contextmanager
def serve(respond: Callable[[Received], Answer], tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A loopback HTTP(S) server answering each request with `respond(request)` (called one request at a time, so
    a recorder keeps arrival order); yields its URL."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                answer = respond(Received(self.command, self.path, dict(self.headers.items()), body))
            if answer.delay:
                threading.Event().wait(answer.delay)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    if tls is not None:  # handshake in the handler thread (lazily, on first read), not in the accept loop
        server.socket = tls.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # aborted handshakes
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200  # what to answer; a test can set 500 to simulate an outage

    def bodies(self) -> list[str]:
        return [r.body.decode() for r in self.requests]

    def answer(self, request: Received) -> Answer:
        self.requests.append(request)
        return Answer(self.status, b"" if self.status < 300 else b'{"error":"receiver told to fail"}')


@contextmanager
def receiver(status: int = 200, tls: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    """A recording HTTP(S) server; Pushgateway pushes are PUT/POST /metrics/job/<job>[/<label>/<value>...]."""
    rec = Receiver(url="", status=status)
    with serve(rec.answer, tls) as url:
        rec.url = url
        yield rec
