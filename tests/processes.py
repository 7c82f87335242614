"""Helpers for the real servers the tests run as child processes (OpenBao, the Pushgateway): a free loopback
port, and a child that is sent SIGTERM when the Python process that started it dies, however it dies."""

from __future__ import annotations

import ctypes
import signal
import socket

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def free_port() -> int:
    """A loopback port free now (the caller binds it soon after and retries if another process won it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """`preexec_fn` for subprocess.Popen: runs in the child between fork and exec."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
