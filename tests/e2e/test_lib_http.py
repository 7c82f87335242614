"""lib/http.py's session (the Coder client's transport) against the Coder emulator over HTTPS: safe
requests are retried on 429/5xx honouring Retry-After, a POST is never replayed, and errors keep Coder's
own words without the session token."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from lib.clients.coder import CoderClient, CoderError
from tests.conftest import Control
from tests.emulators.platform import Platform


@pytest.fixture
def coder(platform: Platform) -> CoderClient:
    return CoderClient(platform.coder.url, platform.coder.bootstrap_token)


def test_get_is_retried_on_503_and_429_honouring_retry_after(coder: CoderClient, control: Control) -> None:
    control.fault("coder", "users.get", status=503, count=1)
    control.fault("coder", "users.get", status=429, count=1, retry_after=1)
    started = time.monotonic()
    assert coder.me().username == "admin"
    assert time.monotonic() - started >= 1.0  # the 429's Retry-After was honoured
    statuses = [e["status"] for e in control.requests("coder", "users.get")["log"]]
    assert statuses == [503, 429, 200]


def test_post_is_not_replayed_after_a_5xx(coder: CoderClient, control: Control) -> None:
    control.fault("coder", "tokens.create", status=503, count=1)
    with pytest.raises(CoderError) as info:
        coder.create_token("me", "should-not-be-replayed", timedelta(days=1))
    assert info.value.status == 503
    assert control.count("coder", "tokens.create") == 1


def test_retries_are_bounded(coder: CoderClient, control: Control) -> None:
    control.fault("coder", "users.get", status=502, count=None)
    with pytest.raises(CoderError) as info:
        coder.me()
    assert info.value.status == 502
    assert control.count("coder", "users.get") == 5  # the first try and four retries, then the error


def test_errors_keep_coders_words_and_never_the_token(platform: Platform) -> None:
    token = platform.coder.bootstrap_token
    bad = CoderClient(platform.coder.url, token[:-1] + ("y" if token.endswith("x") else "x"))  # 1 in 62 ends in x
    with pytest.raises(CoderError) as info:
        bad.me()
    assert info.value.status == 401 and "API key secret is invalid" in str(info.value)
    assert platform.coder.bootstrap_token not in str(info.value)
