"""Helpers for the real servers the tests run as child processes (OpenBao, the Pushgateway): a free loopback
port, a child that is sent SIGTERM when the Python process that started it dies, however it dies, and the
wait for it to answer and the stop that both servers share."""

from __future__ import annotations

import ctypes
import signal
import socket
import subprocess
import time

import urllib3

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def free_port() -> int:
    """A loopback port free now (the caller binds it soon after and retries if another process won it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen: runs in the child between fork and exec."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def wait_ready(process: subprocess.Popen[bytes], pool: urllib3.HTTPConnectionPool, path: str, seconds: float) -> bool:
    """Poll GET `path` until it answers 200; False once the child exits or `seconds` pass."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if pool.request("GET", path).status == 200:
                return True
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.05)
    return False


def stop_process(process: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, then SIGKILL after 10 s; nothing for a child that has already exited."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
