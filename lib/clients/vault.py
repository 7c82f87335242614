"""A small Vault client over hvac: Kubernetes-auth login (or a given token), one KV v2 entry read with its
version, a check-and-set write, and revoke-self.

Sources: shared/api-specs/vault/NOTES.md. hvac has no retries, so every call goes through
`lib.retry.call_with_retry` on the transient errors (503 sealed/standby, 500, 502, 429, connection errors
and timeouts), waiting what a Retry-After asks for. Errors keep Vault's own words (the `errors` array) but
never a token: hvac does not put request bodies into exceptions, and every token this module sees (the login
JWT, the Vault token, the values read from KV) is registered with the redactor before anything can print it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import hvac
import hvac.adapters
import hvac.exceptions as hx
import requests

from lib import limits, reach
from lib.http import guarded_session
from lib.redact import clip, is_secret_key, one_line, register_secret, scrub
from lib.retry import Backoff, call_with_retry, retry_after_of

R = TypeVar("R")

CAS_MISMATCH = "check-and-set parameter did not match the current version"
_TRANSIENT = (
    hx.VaultDown,
    hx.InternalServerError,
    hx.BadGateway,
    hx.RateLimitExceeded,
    requests.ConnectionError,
    requests.Timeout,
)
_STATUS: dict[type[Exception], int] = {
    hx.InvalidRequest: 400,
    hx.Unauthorized: 401,
    hx.Forbidden: 403,
    hx.InvalidPath: 404,
    hx.RateLimitExceeded: 429,
    hx.InternalServerError: 500,
    hx.VaultNotInitialized: 501,
    hx.BadGateway: 502,
    hx.VaultDown: 503,
}


class VaultError(Exception):
    """A Vault call that failed for good: what we tried, where, the status, and Vault's own reason."""

    def __init__(self, action: str, status: int | None, reason: str, addr: str = "") -> None:
        self.action, self.status, self.reason = action, status, scrub(reason)  # callers quote the reason
        where = f" ({status})" if status else ""
        at = f" at {addr}" if addr else ""
        super().__init__(scrub(f"Vault {action}{at} failed{where}: {reason}"))


class CheckAndSetMismatch(VaultError):
    """The entry's version moved since we read it: another writer won."""


def vault_reason(exc: Exception) -> str:
    """Vault's `errors` joined on one line (the ACL denial is a multi-line multierror), else the body text; for an
    endpoint that refused the connection or does not resolve, which and where (lib/reach.py)."""
    unreachable = reach.describe(exc)
    if unreachable:
        return unreachable
    if isinstance(exc, hx.VaultError):
        if exc.errors:
            return " ".join(one_line(e) for e in exc.errors)
        if exc.text:
            return clip(one_line(exc.text), 300)  # scrubbed before it is joined and cut (lib/redact.py)
        return str(exc.args[0] if exc.args else type(exc).__name__)
    return f"{type(exc).__name__}: {exc}"


def is_transient(exc: Exception) -> bool:
    return isinstance(exc, _TRANSIENT)


def is_vault_answer(exc: hx.VaultError) -> bool:
    """Vault (and OpenBao) answer every error as JSON `{"errors": [...]}` (an empty list for a missing path); an
    HTML page or another API's JSON means the address is not Vault's API (an ingress, Coder, a proxy's 404)."""
    text = (exc.text or "").strip()
    if not text:
        return True
    try:
        body = json.loads(text)
    except ValueError:
        return False
    return isinstance(body, dict) and "errors" in body


@dataclass(frozen=True)
class _Answer:
    headers: Mapping[str, str]


class _Adapter(hvac.adapters.JSONAdapter):  # type: ignore[misc]  # hvac ships no type hints
    """hvac's adapter, but its errors carry the answer's headers (`exc.response.headers`, as azure-core's do) so
    `retry_after_of` can read Retry-After. Vault's rate-limit quotas answer 429, with Retry-After when the
    operator set `enable_rate_limit_response_headers` ("additional rate limit quota HTTP headers will be added
    to responses", developer.hashicorp.com/vault/api-docs/system/quotas-config; the header is set in
    hashicorp/vault vault/quotas/quotas_rate_limit.go `allow`: seconds until the bucket refills or a
    `block_interval` ends, and sent by http/util.go `rateLimitQuotaWrapping`). Only the headers are kept: the
    request, with its X-Vault-Token, stays out of the exception."""

    def _raise_for_error(self, method: str, url: str, response: requests.Response) -> None:
        try:
            super()._raise_for_error(method, url, response)
        except hx.VaultError as exc:
            exc.response = _Answer(response.headers.copy())  # case-insensitive, like the original
            raise


@dataclass(frozen=True)
class KvEntry:
    version: int  # the key's current version; 0 when the key does not exist
    data: Mapping[str, str] | None  # None when missing, or when the latest version is deleted/destroyed
    created_time: datetime | None  # when that version was written, by Vault's clock


def parse_vault_time(value: Any) -> datetime | None:
    """Go RFC3339Nano (`2024-11-15T02:41:02.556301319Z`); fromisoformat takes at most 6 fraction digits."""
    if not isinstance(value, str) or not value:
        return None
    head, _, rest = value.replace("Z", "+00:00").partition(".")
    if rest:
        digits = "".join(c for c in rest if c.isdigit())
        head = f"{head}.{digits[:6].ljust(6, '0')}{rest[len(digits) :]}"
    return datetime.fromisoformat(head).astimezone(UTC)


class VaultClient:
    def __init__(
        self,
        addr: str,
        token: str,
        *,
        owns_token: bool = False,
        backoff: Backoff = Backoff(),
        token_source: str = "",
    ) -> None:
        register_secret(token)
        self.token_source = token_source  # named when Vault refuses the token, e.g. VAULT_TOKEN
        # token="" (not None) keeps hvac from picking up VAULT_TOKEN or ~/.vault-token behind our back.
        # No redirect is followed (lib/http.py): requests would re-send X-Vault-Token, and on a 307 the login
        # JWT in the body, to wherever Location points; a redirect fails the call naming its target instead.
        self._hvac = hvac.Client(
            url=addr,
            token=token or "",
            timeout=limits.timeout(30),
            adapter=_Adapter,
            session=guarded_session(),
            allow_redirects=False,
        )
        self.addr = addr
        self.owns_token = owns_token  # a Kubernetes-auth login is ours to revoke; an SRE's VAULT_TOKEN is not
        self._backoff = backoff

    # ---- construction -----------------------------------------------------------------------------------

    @classmethod
    def kubernetes_login(
        cls, addr: str, role: str, jwt_file: Path, mount: str = "kubernetes", backoff: Backoff = Backoff()
    ) -> VaultClient:
        """Log in with the pod's service-account JWT, read fresh from its file (the kubelet rotates it)."""
        jwt = jwt_file.read_text().strip()
        register_secret(jwt)
        client = cls(addr, "", owns_token=True, backoff=backoff)
        auth = client._call(
            f"login (auth/{mount}, role {role!r})",
            lambda: client._hvac.auth.kubernetes.login(role=role, jwt=jwt, use_token=False, mount_point=mount),
        )
        token = str(auth["auth"]["client_token"])
        register_secret(token)
        client._hvac.token = token
        return client

    # ---- calls --------------------------------------------------------------------------------------------

    def _call(self, action: str, fn: Callable[[], R]) -> R:
        try:
            result = call_with_retry(
                fn,
                transient=is_transient,
                retry_after=retry_after_of,
                backoff=self._backoff,
                client="vault",
                call=action,
            )
        except hx.VaultError as exc:
            status = _STATUS.get(type(exc))
            if not is_vault_answer(exc):  # status None: a 404 from elsewhere must not read as "no such entry"
                raise VaultError(action, None, self._not_vault(status, exc.text or ""), self.addr) from None
            reason = vault_reason(exc)
            if status in (401, 403) and self.token_source:
                reason += f" (the Vault token from {self.token_source})"
            kind = CheckAndSetMismatch if CAS_MISMATCH in reason else VaultError
            raise kind(action, status, reason, self.addr) from None
        except requests.RequestException as exc:
            raise VaultError(action, None, vault_reason(exc), self.addr) from None
        if isinstance(result, requests.Response) and result.content:  # hvac hands back a 2xx it could not parse
            reason = self._not_vault(result.status_code, result.text)
            raise VaultError(action, result.status_code, reason, self.addr)
        return result

    def _not_vault(self, status: int | None, text: str) -> str:
        snippet = clip(one_line(text), 80)  # scrubbed before it is cut (lib/redact.py)
        return (
            f"the answer ({status or 'error'}: {snippet!r}) is not Vault's; check that {self.addr} is the address of "
            "the Vault API (the one `vault status` uses), not an ingress page or another service"
        )

    def read_kv(self, mount: str, path: str) -> KvEntry:
        """The latest version of a KV v2 entry. Missing -> version 0 (or the metadata's current version when
        the key exists with its latest version deleted), data None."""
        action = f"read {mount}/data/{path}"
        try:
            body = self._call(
                action,
                lambda: self._hvac.secrets.kv.v2.read_secret_version(
                    path=path, mount_point=mount, raise_on_deleted_version=False
                ),
            )
        except VaultError as exc:
            if exc.status != 404:
                raise
            return KvEntry(self._current_version(mount, path), None, None)
        payload = body.get("data") or {}
        meta = payload.get("metadata") or {}
        data = payload.get("data")
        if isinstance(data, Mapping):
            data = {str(k): str(v) for k, v in data.items()}
            for key, value in data.items():
                if is_secret_key(key):
                    register_secret(value)
        else:
            data = None  # a soft-deleted latest version comes back with data null
        return KvEntry(int(meta.get("version") or 0), data, parse_vault_time(meta.get("created_time")))

    def _current_version(self, mount: str, path: str) -> int:
        # A destroyed latest version reads as 404 while the key still exists; check-and-set needs its version.
        try:
            meta = self._call(
                f"read {mount}/metadata/{path}",
                lambda: self._hvac.secrets.kv.v2.read_secret_metadata(path=path, mount_point=mount),
            )
        except VaultError as exc:
            if exc.status == 404:
                return 0
            raise
        return int((meta.get("data") or {}).get("current_version") or 0)

    def write_kv(self, mount: str, path: str, data: Mapping[str, str], cas: int) -> int:
        """Write a new version only if the current one is still `cas`; returns the new version number."""
        for key, value in data.items():
            if is_secret_key(key):
                register_secret(value)
        body = self._call(
            f"write {mount}/data/{path} (check-and-set {cas})",
            lambda: self._hvac.secrets.kv.v2.create_or_update_secret(
                path=path, secret=dict(data), cas=cas, mount_point=mount
            ),
        )
        return int((body.get("data") or {}).get("version") or 0)

    def revoke_self(self) -> None:
        self._call("revoke-self", lambda: self._hvac.auth.token.revoke_self())
        self._hvac.token = ""  # hvac leaves the revoked token set
