"""A small client for Coder's /api/v2 (there is no official Python SDK).

Sources: shared/api-specs/coder/NOTES.md. Durations on the wire are integer nanoseconds; token lists
always ask for `include_expired=true` (newer servers hide expired tokens by default) and accept `null`
for an empty list. Errors keep the server's own words (message, detail, validations) but never the
token: the session token travels in a header, which neither requests nor this module puts in an
exception text.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

import requests

from lib import reach
from lib.clients.coder_scopes import can_whoami
from lib.clients.coder_types import Malformed, Token, TokenFormatError, TokenList, User, parse_time, token_id
from lib.http import make_session
from lib.redact import clip, first_line, one_line, register_secret, scrub
from lib.retry import Backoff, call_with_retry, retry_after_seconds

NS_PER_SECOND = 1_000_000_000
SESSION_HEADER = "Coder-Session-Token"
__all__ = [
    "CoderClient",
    "CoderError",
    "Malformed",
    "Probe",
    "Token",
    "TokenList",
    "User",
    "parse_time",
    "token_id",
]
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


def to_nanoseconds(duration: timedelta) -> int:
    return int(duration.total_seconds()) * NS_PER_SECOND


@dataclass(frozen=True)
class Probe:
    """What one check of a token (with the token itself) showed, and how it was checked (for the report)."""

    outcome: Literal["valid", "invalid", "unverified"]  # unverified: no call its scopes permit answered
    username: str  # whom /users/me named; "" when another call checked it (then its record names the owner)
    how: str


class CoderClient:
    def __init__(self, url: str, token: str, session: requests.Session | None = None) -> None:
        register_secret(token)
        self.url = url.rstrip("/")
        self.session = session or make_session(client="coder")
        self.session.headers[SESSION_HEADER] = token

    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None, json: Any = None) -> Any:
        started = time.monotonic()
        try:
            response = self.session.request(method, f"{self.url}/api/v2{path}", params=params, json=json)
        # its text names the URL and the cause; keep the first line. A token that is no valid header value (a
        # wrong entry in Vault) fails here too, before any request: InvalidHeader, or http.client's latin-1 error.
        except (requests.RequestException, UnicodeError) as exc:
            unreachable = reach.describe(exc)
            if unreachable:  # urllib3 retried the connection (lib/http.py); say what and for how long
                message = f"{self.url}: {unreachable}; gave up after {time.monotonic() - started:.1f} s"
            else:
                message = f"{type(exc).__name__}: {first_line(exc)}"
            raise CoderError(0, message, "", method, path) from None
        if response.status_code >= 400:
            try:
                body = response.json()
            except ValueError:
                body = None
            gateway = response.status_code >= 500 or response.status_code == 429  # a proxy's own page is normal
            if (not isinstance(body, dict) or "message" not in body) and not gateway:
                raise CoderError(response.status_code, self._not_coder(response, "not Coder's"), "", method, path)
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
            raise CoderError(response.status_code, self._not_coder(response, "not JSON"), "", method, path) from None

    def _not_coder(self, response: requests.Response, what: str) -> str:
        """Coder answers every error with JSON carrying `message` (codersdk.Response) and every success with
        JSON: anything else comes from another service (Vault, an ingress page) at the configured URL."""
        snippet = clip(one_line(response.text), 80)  # scrubbed before it is cut (lib/redact.py)
        return (
            f"the answer is {what} ({snippet!r}): {self.url} does not look like a Coder deployment; "
            "point it at the URL `coder login` uses (its /api/v2/buildinfo answers with a version)"
        )

    # ---- users ----------------------------------------------------------------------------------------

    def me(self) -> User:
        return User.from_json(self._call("GET", "/users/me"))

    def user(self, user: str) -> User:
        return User.from_json(self._call("GET", f"/users/{quote(user, safe='')}"))

    def roles(self, user: str) -> tuple[str, ...]:
        """Site and organization roles (codersdk.UserRoles: `roles` + `organization_roles` per org), sorted.
        Needs user:read_personal on the user (an Owner, a User Admin, or the user itself), else 404."""
        data = self._call("GET", f"/users/{quote(user, safe='')}/roles") or {}
        names = set(data.get("roles") or [])
        for org_roles in (data.get("organization_roles") or {}).values():
            names.update(org_roles or [])
        return tuple(sorted(str(n) for n in names))

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

    def tokens(self, user: str, include_all: bool = False) -> TokenList:
        """Every API token of `user`, expired ones included; records it cannot read are in `.malformed`."""
        params = {"include_expired": "true", **({"include_all": "true"} if include_all else {})}
        path = f"/users/{quote(user, safe='')}/keys/tokens"
        data = self._call("GET", path, params=params)
        try:
            return TokenList.from_json(data)
        except ValueError as exc:
            raise CoderError(200, f"the answer is not a token list: {exc}", "", "GET", path) from None

    def token(self, user: str, key_id: str) -> Token:
        path = f"/users/{quote(user, safe='')}/keys/{quote(key_id, safe='')}"
        try:
            return Token.from_json(self._call("GET", path))
        except TokenFormatError as exc:
            raise CoderError(200, f"the answer is not an API key record: {exc}", "", "GET", path) from None

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

        # Only a 429 is retried: Coder's rate limit (go-chi/httprate middleware in front of every route, httprate
        # limiter.go) refuses the request before the handler runs, and answers Retry-After (its window), so no
        # token was made. A 5xx or a timeout is not replayed: the token may exist; the caller leaves it to a later
        # run, which revokes such an orphan after --revoke-grace (jobs/coder_token_mint/plan.py).
        data = call_with_retry(
            lambda: self._call("POST", path, json=body),
            transient=lambda e: isinstance(e, CoderError) and e.status == 429,
            retry_after=lambda e: e.retry_after if isinstance(e, CoderError) else None,
            backoff=CREATE_BACKOFF,
            client="coder",
            call=f"POST {path}",
        )
        key = str(data["key"])
        register_secret(key)
        return key

    def delete_token(self, user: str, key_id: str) -> None:
        self._call("DELETE", f"/users/{quote(user, safe='')}/keys/{quote(key_id, safe='')}")

    def max_token_lifetime(self, user: str) -> timedelta | None:
        """Coder's cap on a token lifetime for this user (codersdk.TokenConfig, nanoseconds); None when the server
        reports no cap (2023 servers sent 0 for an unset --max-token-lifetime)."""
        data = self._call("GET", f"/users/{quote(user, safe='')}/keys/tokens/tokenconfig")
        ns = int(data["max_token_lifetime"])
        return timedelta(seconds=ns // NS_PER_SECOND) if ns > 0 else None

    def ssh_config(self) -> dict[str, Any]:
        """GET /deployment/ssh: needs only a valid key (coderd/deployment.go sshConfig makes no Authorize call)."""
        result: dict[str, Any] = self._call("GET", "/deployment/ssh") or {}
        return result

    def probe(self, token: str, record: Token | None = None) -> Probe:
        """Check `token` with a call its own scopes permit (from `record`, its API key record, when known):
        `/users/me` (what `coder whoami` calls) if it may read its user, else `/deployment/ssh`, which every
        valid key may call. Only a 401 means the token is invalid; a refusal (403/404) of a call outside its
        scopes means nothing about the token and leaves it `unverified`, never `invalid`."""
        client = self.with_token(token)
        if record is None or can_whoami(record.scopes, record.allow_list, record.user_id):
            try:
                who = client.me()
            except CoderError as exc:
                if exc.status == 401:
                    return Probe("invalid", "", f"/users/me answered 401: {exc.message} ({exc.detail})")
                if exc.status not in (403, 404):
                    raise
            else:
                return Probe("valid", who.username, "/users/me (what `coder whoami` calls)")
        try:
            client.ssh_config()
        except CoderError as exc:
            if exc.status == 401:
                return Probe("invalid", "", f"/deployment/ssh answered 401: {exc.message} ({exc.detail})")
            if exc.status not in (403, 404):
                raise
            return Probe("unverified", "", f"skipped: no call its scopes permit answered ({exc.status})")
        return Probe(
            "valid", "", "/deployment/ssh (authentication only: /users/me is outside its scopes); owner from its record"
        )

    def buildinfo(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/buildinfo")
        return result

    def with_token(self, token: str) -> CoderClient:
        """Another client for the same server authenticated by `token` (to check a token we hold)."""
        return CoderClient(self.url, token)
