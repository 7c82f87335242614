"""Recording stand-ins for what jobs send to: the alert webhook (Slack and the like, which cannot run here),
and, only where a fault has to be scripted (tests/faults/), the Pushgateway; everything else pushes to a real
Pushgateway (tests/pushgateway.py).

Plain HTTP on 127.0.0.1; every request is recorded, so a test can read the webhook's JSON.
`serve` is the server under both `receiver` (one status for every request) and the fault matrix's scripted
receiver (tests/faults/common.py: answers in order).
"""

from __future__ import annotations

import json
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
def serve(respond: Callable[[Received], Answer]) -> Iterator[str]:
    """A loopback HTTP server answering each request with `respond(request)` (called one request at a time, so
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
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
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
def receiver(status: int = 200) -> Iterator[Receiver]:
    """A recording HTTP server (the webhook's stand-in)."""
    rec = Receiver(url="", status=status)
    with serve(rec.answer) as url:
        rec.url = url
        yield rec
