"""HTTP sessions for APIs without an SDK (Coder): timeouts always, bounded retries for safe requests, and no
redirect followed.

Why no redirect: requests follows 3xx by default and strips only `Authorization` when the host changes
(requests/sessions.py `rebuild_auth`); a `Coder-Session-Token` or `X-Vault-Token` header, and a POST body
re-sent on 307/308 (a Vault login JWT), go to wherever `Location` points. A Coder URL that answers 302 to
another host would hand it the bootstrap Owner token. So every session built here refuses any redirect with
an error naming where it pointed, before anything is sent there; set the URL to the real address instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

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


class RedirectRefused(requests.RequestException):
    """The server answered with a redirect; nothing was sent to its Location."""


def _address(url: str) -> str:
    """scheme://host[:port]/path: never userinfo, a query or a fragment (they could carry a credential)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def refuse_redirect(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    """A response hook (runs before requests' redirect handling): a 3xx with a Location is an error."""
    if response.is_redirect:
        target = requests.compat.urljoin(response.url, response.headers.get("Location", ""))
        response.close()
        raise RedirectRefused(
            f"{response.status_code} redirect from {_address(response.url)} to {_address(target)} refused: "
            "credentials are never sent across a redirect; use the address it points to if that is the server",
            response=response,
        )
    return response


def guarded_session() -> requests.Session:
    """A plain session that follows no redirect (for SDKs that bring their own transport, e.g. hvac)."""
    session = requests.Session()
    session.hooks["response"].append(refuse_redirect)
    return session


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
    session = guarded_session()
    bounded = (limits.timeout(timeout[0]), limits.timeout(timeout[1]))
    adapter = _TimeoutAdapter(bounded, max_retries=retry_policy(total=retries))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": "coder-wi-jobs/0.1", **(headers or {})})
    return session
