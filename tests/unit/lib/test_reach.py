"""lib/reach.py and the retry bound for unreachable endpoints (issue 22, point 4): the failures are produced by
real connections (a closed loopback port, a name under .invalid, RFC 6761: never resolves) through the real
libraries each client uses, since their wrapping is exactly what the classification must see through."""

from __future__ import annotations

import io
import json
import socket
import urllib.request
from collections.abc import Iterator

import pytest
import requests
from azure.core import PipelineClient
from azure.core.exceptions import ServiceRequestError
from azure.core.rest import HttpRequest

from lib import logs, reach
from lib.retry import Backoff, call_with_retry


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def failure_of(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except Exception as exc:
        return exc
    pytest.fail("the call did not fail")


def test_a_refused_connection_is_recognised_through_requests(closed_port: int) -> None:
    exc = failure_of(lambda: requests.get(f"http://127.0.0.1:{closed_port}/x", timeout=5))
    assert reach.unreachable(exc) == reach.REFUSED
    assert reach.where(exc) == f"127.0.0.1:{closed_port}"
    assert reach.describe(exc) == f"connection refused (127.0.0.1:{closed_port})"


def test_a_refused_connection_is_recognised_through_azure_core(closed_port: int) -> None:
    client: PipelineClient = PipelineClient(f"http://127.0.0.1:{closed_port}")  # type: ignore[type-arg]
    exc = failure_of(lambda: client.send_request(HttpRequest("GET", f"http://127.0.0.1:{closed_port}/")))
    assert isinstance(exc, ServiceRequestError)
    assert reach.unreachable(exc) == reach.REFUSED and reach.where(exc) == f"127.0.0.1:{closed_port}"


def test_a_refused_connection_is_recognised_through_urllib(closed_port: int) -> None:
    exc = failure_of(lambda: urllib.request.urlopen(f"http://127.0.0.1:{closed_port}/", timeout=5))
    assert reach.unreachable(exc) == reach.REFUSED


def test_a_name_that_does_not_resolve_is_recognised() -> None:
    exc = failure_of(lambda: requests.get("https://kv-cwj-test.vault.invalid/secrets", timeout=5))
    assert reach.unreachable(exc) == reach.NO_DNS
    assert "kv-cwj-test.vault.invalid" in reach.where(exc)


def test_other_failures_are_not_called_unreachable() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()  # accepts, never answers: a read timeout
    port = listener.getsockname()[1]
    try:
        exc = failure_of(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=(2, 0.2)))
    finally:
        listener.close()
    assert isinstance(exc, requests.Timeout) and reach.unreachable(exc) is None and reach.describe(exc) is None
    assert reach.unreachable(ValueError("Not Found")) is None


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("test-job", "run1", "json", "info", stream=stream)
    yield stream


def test_retrying_a_refused_connection_stops_within_the_bound_and_says_how_long(
    closed_port: int, log_lines: io.StringIO
) -> None:
    fake = FakeTime()
    attempts = []

    def call() -> None:
        attempts.append(fake.now)
        requests.get(f"http://127.0.0.1:{closed_port}/", timeout=5)

    with pytest.raises(requests.ConnectionError) as caught:
        call_with_retry(
            call,
            transient=lambda e: True,
            backoff=Backoff(base=0.5, cap=30.0, deadline=120.0, max_attempts=50),
            sleep=fake.sleep,
            clock=fake.clock,
            client="vault",
            call="read secret/data/x",
        )
    assert fake.now <= reach.UNREACHABLE_WITHIN and len(attempts) >= 3  # not 120 s, but not a single try either
    described = reach.describe(caught.value)
    assert described is not None and f"gave up after {len(attempts)} attempts in" in described
    retries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    assert [r["event"] for r in retries] == ["retry"] * (len(attempts) - 1)
    assert set(retries[0]) >= {"client", "call", "attempt", "wait_s", "status", "reason", "job", "run_id"}
    assert retries[0]["client"] == "vault" and retries[0]["reason"] == f"connection refused (127.0.0.1:{closed_port})"


def test_other_transient_failures_keep_the_full_deadline() -> None:
    fake = FakeTime()

    def call() -> None:
        raise TimeoutError("read timed out")

    with pytest.raises(TimeoutError):
        call_with_retry(
            call,
            transient=lambda e: True,
            backoff=Backoff(base=0.5, cap=30.0, deadline=120.0, max_attempts=50),
            sleep=fake.sleep,
            clock=fake.clock,
        )
    assert fake.now > 60  # a slow or overloaded endpoint gets the call's whole deadline
