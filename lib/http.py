"""HTTP sessions for APIs without an SDK (Coder): timeouts always, bounded retries for safe requests."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from lib import limits

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read


class _TimeoutAdapter(HTTPAdapter):
    def __init__(self, timeout: tuple[float, float], **kwargs: Any) -> None:
        self._timeout = timeout
        super().__init__(**kwargs)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeout
        return super().send(request, **kwargs)


def retry_policy(total: int = 4, backoff: float = 0.5) -> Retry:
    # POST is not retried: a token create that reached the server must not be replayed blindly.
    cap = limits.deadline(30.0)  # no single wait (backoff or the server's Retry-After) beyond --retry-deadline
    return Retry(
        total=total,
        connect=total,
        read=2,
        status=total,
        backoff_factor=limits.backoff_factor(backoff, total),
        backoff_max=cap,
        retry_after_max=max(1, round(cap)),
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def make_session(
    *, headers: dict[str, str] | None = None, timeout: tuple[float, float] = DEFAULT_TIMEOUT, retries: int = 4
) -> requests.Session:
    session = requests.Session()
    bounded = (limits.timeout(timeout[0]), limits.timeout(timeout[1]))
    adapter = _TimeoutAdapter(bounded, max_retries=retry_policy(total=retries))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": "coder-wi-jobs/0.1", **(headers or {})})
    return session
