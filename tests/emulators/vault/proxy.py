"""Service `vault`: a real OpenBao server (openbao.py) behind a small fault-injecting reverse proxy.

`VAULT_ADDR` is the proxy: HTTPS with the platform's CA, like every emulator. It names each request's operation
(the names below, used by fault rules, request counts and the request log), applies the control API's faults
(latency, an error status in Vault's `{"errors": [...]}` envelope, a malformed body, a dropped connection
before or after OpenBao saw the request) and otherwise forwards the request unchanged to OpenBao over TLS and
its answer unchanged back. Faults match before OpenBao authenticates the request (the proxy holds no tokens).

OpenBao keeps real time: the emulated clock (`POST /clock/advance`) moves the other emulators, including the
kube emulator's TokenReview, but not Vault token TTLs or KV `created_time` (tests/emulators/README.md).
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlencode

import urllib3

from tests.emulators.core import Emulator, Request, Response, answer_with_fault
from tests.emulators.vault.baseline import VaultBaseline
from tests.emulators.vault.openbao import OpenBao

if TYPE_CHECKING:
    from tests.emulators.platform import Platform

_WRITE = ("POST", "PUT")
# (path regex after /v1/, {method: operation}); the first pattern that matches names the request.
OPERATIONS: list[tuple[re.Pattern[str], dict[str, str]]] = [
    (re.compile(p), ops)
    for p, ops in [
        (r"auth/kubernetes/login", dict.fromkeys(_WRITE, "k8s.login")),
        (r"auth/kubernetes/role/?", {"LIST": "k8s.role.list"}),
        (
            r"auth/kubernetes/role/[^/]+",
            {"GET": "k8s.role.read", "DELETE": "k8s.role.delete", **dict.fromkeys(_WRITE, "k8s.role.write")},
        ),
        (r"auth/kubernetes/config", {"GET": "k8s.config.read", **dict.fromkeys(_WRITE, "k8s.config.write")}),
        (r"auth/token/lookup-self", {"GET": "token.lookup-self"}),
        (r"auth/token/revoke-self", dict.fromkeys(_WRITE, "token.revoke-self")),
        (r"auth/token/renew-self", dict.fromkeys(_WRITE, "token.renew-self")),
        (r"auth/token/create", dict.fromkeys(_WRITE, "token.create")),
        (r"sys/policies/acl/?|sys/policy", {"LIST": "policy.list", "GET": "policy.list"}),
        (
            r"sys/policies/acl/[^/]+|sys/policy/[^/]+",
            {"GET": "policy.read", "DELETE": "policy.delete", **dict.fromkeys(_WRITE, "policy.write")},
        ),
        (r"secret/data/.+", {"GET": "kv.read", "DELETE": "kv.delete-latest", **dict.fromkeys(_WRITE, "kv.write")}),
        (r"secret/(?:delete|undelete|destroy)/.+", dict.fromkeys(_WRITE, "kv.versions")),
        (r"secret/metadata(?:/.*)?", {"LIST": "kv.metadata.list"}),
        (
            r"secret/metadata/.+",
            {"GET": "kv.metadata.read", "DELETE": "kv.metadata.delete", **dict.fromkeys(_WRITE, "kv.metadata.write")},
        ),
        (r"secret/config", {"GET": "kv.config.read", **dict.fromkeys(_WRITE, "kv.config.write")}),
        (r"secret/.*", {m: "kv.invalid-path" for m in ("GET", "LIST", "DELETE", *_WRITE)}),
        (r"sys/.*", {m: "sys" for m in ("GET", "LIST", "DELETE", *_WRITE)}),
    ]
]
_ISSUES_TOKENS = {"k8s.login", "token.create", "token.renew-self"}
# Not forwarded either way: hop-by-hop headers, and what the proxy's own server writes.
_SKIP_REQUEST = {"host", "connection", "content-length", "transfer-encoding", "accept-encoding", "keep-alive"}
_SKIP_RESPONSE = {"connection", "content-length", "transfer-encoding", "date", "keep-alive", "server"}


def operation(method: str, path: str) -> str:
    """The operation name of a request (`GET ?list=true` is LIST); `unsupported` for a known path's other verbs."""
    logical = unquote(path).removeprefix("/v1/")
    known = False
    for pattern, ops in OPERATIONS:
        if pattern.fullmatch(logical):
            if method in ops:
                return ops[method]
            known = True
    if not known:
        return "other"
    return "kv.patch" if method == "PATCH" and logical.startswith("secret/") else "unsupported"


class VaultProxy(Emulator):
    service = "vault"

    def __init__(self, platform: Platform) -> None:
        self.bao: OpenBao | None = None
        self.dirty = False
        # X-Vault-Request / X-Vault-Namespace of recent requests: recorded, never required (NOTES §0)
        self.headers_seen: deque[dict[str, str | None]] = deque(maxlen=1000)
        super().__init__(platform)
        self.root_token = self.platform.remember_secret(
            secrets.token_hex(16)
        )  # stable across resets; OpenBao refuses a custom id with a token prefix ("s.")
        self.baseline = VaultBaseline(self.platform)

    # ---- lifecycle: OpenBao first, then the proxy in front of it --------------------------------------------

    def start(self, ssl_context: ssl.SSLContext, port: int = 0) -> None:
        cert = self.platform.ca.issue_cert("127.0.0.1", "localhost")
        workdir = Path(self.platform.state_dir) / "openbao"
        workdir.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = workdir / "tls.crt", workdir / "tls.key"
        cert.cert_chain_pems[0].write_to_path(str(cert_file))
        cert.private_key_pem.write_to_path(str(key_file))
        key_file.chmod(0o600)
        self.bao = OpenBao(workdir, cert_file, key_file, self.platform.ca_path, self.root_token)
        self.bao.start()
        super().start(ssl_context, port)

    def stop(self) -> None:
        super().stop()
        if self.bao is not None:
            self.bao.stop()

    def reset(self) -> None:
        """Back to the baseline (policies, the Kubernetes auth mount and role, an empty `secret/`), only when a
        request went through since the last reset: nothing reaches OpenBao except through this proxy."""
        if self.bao is None or self.bao.process is None:
            return
        if self.dirty or not self.baseline.seeded:
            self.baseline.restore(self.bao)
            self.dirty = False

    # ---- the proxy ------------------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        return Response(status, {"errors": [message]})

    def dispatch(self, req: Request) -> Response:
        req.op = operation("LIST" if req.method == "GET" and req.q("list") == "true" else req.method, req.path)
        self.dirty = True
        self.headers_seen.append({h: req.headers.get(h) for h in ("X-Vault-Request", "X-Vault-Namespace")})
        fault = self.platform.faults.take(self.service, req.op, req.path)
        if fault is not None:
            return answer_with_fault(fault, lambda: self.forward(req), self.error)
        return self.forward(req)

    def forward(self, req: Request) -> Response:
        assert self.bao is not None and self.bao.pool is not None
        query = urlencode(req.query, doseq=True)
        headers = {k: v for k, v in req.headers.items() if k.lower() not in _SKIP_REQUEST}
        try:
            upstream = self.bao.pool.request(
                req.method,
                req.path + (f"?{query}" if query else ""),
                body=req.body or None,
                headers=headers,
                redirect=False,
            )
        except urllib3.exceptions.HTTPError as exc:  # OpenBao down: what a gateway in front of it would say
            return Response(502, {"errors": [f"vault proxy: {type(exc).__name__}"]})
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _SKIP_RESPONSE}
        if req.op in _ISSUES_TOKENS and upstream.status == 200:
            self._remember_issued_token(upstream.data)
        return Response(upstream.status, upstream.data, kept, kept.get("Content-Type", "application/json"))

    def _remember_issued_token(self, body: bytes) -> None:
        """Every Vault token OpenBao hands out is a secret the leak audit looks for (tests/faults/leak_audit.py)."""
        try:
            token = (json.loads(body).get("auth") or {}).get("client_token")
        except (ValueError, AttributeError):
            return
        if isinstance(token, str):
            self.platform.remember_secret(token)
