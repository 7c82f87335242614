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
from lib.retry import log_retry
from lib.version import version

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


class _LoggedRetry(Retry):
    """urllib3's Retry, logging each retry in the shape every client shares (lib.retry.log_retry) instead of
    urllib3's own `Retrying (Retry(total=...))` text, which lib/logs.py silences."""

    client = "http"

    def new(self, **kw: Any) -> _LoggedRetry:
        fresh = super().new(**kw)
        fresh.client = self.client
        return fresh

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: Any = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> Retry:
        fresh = super().increment(method, url, response, error, _pool, _stacktrace)  # raises when spent
        after = fresh.get_retry_after(response) if response is not None and fresh.respect_retry_after_header else None
        wait = after if after is not None else fresh.get_backoff_time()
        status = getattr(response, "status", None)
        call = f"{method} {urlsplit(url or '').path}"
        log_retry(self.client, call, len(fresh.history), wait, error, status=status)
        return fresh


def retry_policy(total: int = 4, backoff: float = 0.5, client: str = "http") -> Retry:
    # POST is not retried: a token create that reached the server must not be replayed blindly. A refused
    # connection or an unresolvable name is retried `connect` times, about 7 s in all (lib/reach.py's bound).
    cap = limits.deadline(30.0)  # no single wait (backoff or the server's Retry-After) beyond --retry-deadline
    policy = _LoggedRetry(
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
    policy.client = client
    return policy


def make_session(
    *,
    headers: dict[str, str] | None = None,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    retries: int = 4,
    client: str = "http",
) -> requests.Session:
    session = guarded_session()
    bounded = (limits.timeout(timeout[0]), limits.timeout(timeout[1]))
    adapter = _TimeoutAdapter(bounded, max_retries=retry_policy(total=retries, client=client))
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers.update({"User-Agent": f"coder-wi-jobs/{version()}", **(headers or {})})
    return session
