"""A small client for Coder's /api/v2 (there is no official Python SDK).

Sources: shared/api-specs/coder/NOTES.md. Durations on the wire are integer nanoseconds; token lists
always ask for `include_expired=true` (newer servers hide expired tokens by default) and accept `null`
for an empty list. Errors keep the server's own words (message, detail, validations) but never the
token: the session token travels in a header, which neither requests nor this module puts in an
exception text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import requests

from lib.http import make_session
from lib.logs import get_logger
from lib.redact import clip, first_line, register_secret, scrub
from lib.retry import Backoff, call_with_retry, retry_after_seconds

NS_PER_SECOND = 1_000_000_000
SESSION_HEADER = "Coder-Session-Token"
# Token create is a POST, which lib/http.py never replays: only a 429 is retried here (see create_token).
CREATE_BACKOFF = Backoff(base=1.0, cap=30.0, deadline=120.0, max_attempts=5)


class CoderError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        detail: str = "",
        method: str = "",
        path: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status, self.message, self.detail = status, scrub(message), scrub(detail)  # callers quote them
        self.retry_after = retry_after  # seconds the server asked us to wait (Retry-After), if it said
        outcome = f"-> {status}" if status else "failed"  # status 0: no answer (refused, timed out)
        text = f"Coder {method} {path} {outcome}: {message}" + (f" ({detail})" if detail else "")
        super().__init__(scrub(text))


def parse_time(value: str | None) -> datetime | None:
    """Go RFC 3339 with 0-9 fractional digits; Go's zero time and the Unix epoch both mean 'never'."""
    if not value or value.startswith(("0001-01-01", "1970-01-01T00:00:00Z")):
        return None
    head, _, rest = value.partition(".")
    if rest:  # trim fractions to microseconds; fromisoformat rejects 9 digits
        digits = "".join(c for c in rest if c.isdigit())
        value = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def to_nanoseconds(duration: timedelta) -> int:
    return int(duration.total_seconds()) * NS_PER_SECOND


_KEY_SHAPE = re.compile(r"([0-9A-Za-z]{10})-[0-9A-Za-z]{22}")
NOT_A_KEY = "(not a Coder API key)"


def token_id(key: str) -> str:
    """The key id is the part before the dash of `<10>-<22>`: the record of a token we hold, and public. Text of
    any other shape (a wrong value in Vault) has no public part: nothing of it is returned."""
    match = _KEY_SHAPE.fullmatch(key)
    return match.group(1) if match else NOT_A_KEY


@dataclass(frozen=True)
class User:
    id: str
    username: str
    status: str
    roles: tuple[str, ...]  # site roles; `member` is implicit and never listed
    is_service_account: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> User:
        return cls(
            id=data["id"],
            username=data["username"],
            status=data.get("status", ""),
            roles=tuple(sorted(r["name"] for r in data.get("roles") or [])),
            is_service_account=bool(data.get("is_service_account", False)),
        )


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    token_name: str
    created_at: datetime | None
    expires_at: datetime | None
    last_used: datetime | None
    lifetime_seconds: int
    scopes: tuple[str, ...]
    allow_list: tuple[str, ...]  # canonical `type:id`
    login_type: str = "token"
    username: str = ""

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Token:
        scopes = data.get("scopes")
        if scopes is None:  # servers before scopes: only the legacy single scope
            scopes = [data["scope"]] if data.get("scope") else []
        return cls(
            id=data["id"],
            user_id=data.get("user_id", ""),
            token_name=data.get("token_name", ""),
            created_at=parse_time(data.get("created_at")),
            expires_at=parse_time(data.get("expires_at")),
            last_used=parse_time(data.get("last_used")),
            lifetime_seconds=int(data.get("lifetime_seconds") or 0),
            scopes=tuple(scopes),
            allow_list=tuple(f"{a['type']}:{a['id']}" for a in data.get("allow_list") or []),
            login_type=data.get("login_type", "token"),
            username=data.get("username", ""),
        )


class CoderClient:
    def __init__(self, url: str, token: str, session: requests.Session | None = None) -> None:
        register_secret(token)
        self.url = url.rstrip("/")
        self.session = session or make_session()
        self.session.headers[SESSION_HEADER] = token

    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None) -> Any:
        try:
            response = self.session.request(method, f"{self.url}/api/v2{path}", params=params, json=json)
        # its text names the URL and the cause; keep the first line. A token that is no valid header value (a
        # wrong entry in Vault) fails here too, before any request: InvalidHeader, or http.client's latin-1 error.
        except (requests.RequestException, UnicodeError) as exc:
            raise CoderError(0, f"{type(exc).__name__}: {first_line(exc)}", "", method, path) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                body = {"message": clip(response.text, 200)}  # scrubbed, then cut: no half secret left
            detail = body.get("detail", "") or "; ".join(
                f"{v.get('field')}: {v.get('detail')}" for v in body.get("validations") or []
            )
            raise CoderError(
                response.status_code,
                str(body.get("message", "")),
                str(detail),
                method,
                path,
                retry_after_seconds(response.headers),
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CoderError(response.status_code, "the answer is not JSON", "", method, path) from None

    # ---- users ----------------------------------------------------------------------------------------

    def me(self) -> User:
        return User.from_json(self._call("GET", "/users/me"))

    def user(self, user: str) -> User:
        return User.from_json(self._call("GET", f"/users/{quote(user, safe='')}"))

    def site_roles(self, user: str) -> tuple[str, ...]:
        return tuple(sorted(self._call("GET", f"/users/{quote(user, safe='')}/roles").get("roles") or []))

    def users(self, query: str = "") -> list[User]:
        out: list[User] = []
        offset = 0
        while True:
            params = {"limit": "100", "offset": str(offset), **({"q": query} if query else {})}
            page = self._call("GET", "/users", params=params).get("users") or []
            out += [User.from_json(u) for u in page]
            if len(page) < 100:
                return out
            offset += len(page)

    # ---- tokens ---------------------------------------------------------------------------------------

    def tokens(self, user: str, include_all: bool = False) -> list[Token]:
        params = {"include_expired": "true", **({"include_all": "true"} if include_all else {})}
        data = self._call("GET", f"/users/{quote(user, safe='')}/keys/tokens", params=params)
        return [Token.from_json(t) for t in data or []]

    def token(self, user: str, key_id: str) -> Token:
        return Token.from_json(self._call("GET", f"/users/{quote(user, safe='')}/keys/{quote(key_id, safe='')}"))

    def create_token(
        self,
        user: str,
        name: str,
        lifetime: timedelta,
        scopes: tuple[str, ...] = (),
        allow: tuple[str, ...] = (),
    ) -> str:
        body: dict[str, Any] = {"token_name": name, "lifetime": to_nanoseconds(lifetime)}
        if scopes:
            body["scopes"] = list(scopes)
        if allow:
            body["allow_list"] = list(allow)
        path = f"/users/{quote(user, safe='')}/keys/tokens"

        def on_retry(exc: Exception, attempt: int, wait: float) -> None:
            get_logger(client="coder").warning(
                "coder.retry", call=f"POST {path}", attempt=attempt, wait_s=round(wait, 2)
            )

        # Only a 429 is retried: Coder's rate limit (go-chi/httprate middleware in front of every route, httprate
        # limiter.go) refuses the request before the handler runs, and answers Retry-After (its window), so no
        # token was made. A 5xx or a timeout is not replayed: the token may exist; the caller leaves it to a later
        # run, which revokes such an orphan after --revoke-grace (jobs/coder_token_mint/plan.py).
        data = call_with_retry(
            lambda: self._call("POST", path, json=body),
            transient=lambda e: isinstance(e, CoderError) and e.status == 429,
            retry_after=lambda e: e.retry_after if isinstance(e, CoderError) else None,
            backoff=CREATE_BACKOFF,
            on_retry=on_retry,
        )
        key = str(data["key"])
        register_secret(key)
        return key

    def delete_token(self, user: str, key_id: str) -> None:
        self._call("DELETE", f"/users/{quote(user, safe='')}/keys/{quote(key_id, safe='')}")

    def max_token_lifetime(self, user: str) -> timedelta:
        data = self._call("GET", f"/users/{quote(user, safe='')}/keys/tokens/tokenconfig")
        return timedelta(seconds=int(data["max_token_lifetime"]) / NS_PER_SECOND)

    def buildinfo(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/buildinfo")
        return result

    def with_token(self, token: str) -> CoderClient:
        """Another client for the same server authenticated by `token` (to check a token we hold)."""
        return CoderClient(self.url, token)
