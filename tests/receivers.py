"""Local stand-ins for the two things jobs push to: a Prometheus Pushgateway and an alert webhook.

Both are plain HTTP on 127.0.0.1 (in-cluster Pushgateways usually are) and record every request, so a
test can parse what was pushed with prometheus_client's own text parser or read the webhook's JSON.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
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
class Receiver:
    url: str
    requests: list[Received] = field(default_factory=list)
    status: int = 200  # what to answer; a test can set 500 to simulate an outage

    def bodies(self) -> list[str]:
        return [r.body.decode() for r in self.requests]


@contextmanager
def receiver(status: int = 200) -> Iterator[Receiver]:
    """A recording HTTP server; Pushgateway pushes are PUT/POST /metrics/job/<job>[/<label>/<value>...]."""
    rec = Receiver(url="")
    rec.status = status

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            rec.requests.append(Received(self.command, self.path, dict(self.headers.items()), body))
            payload = b"" if rec.status < 300 else b'{"error":"receiver told to fail"}'
            self.send_response(rec.status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = _handle

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    rec.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec
    finally:
        server.shutdown()
        server.server_close()
