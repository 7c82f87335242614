"""A small client over azure-keyvault-secrets' SecretClient: the calls keyvault-sync needs, one-line errors,
and one retry layer that we control and log.

Retries: azure-core's own status retries are switched off (`retry_status=0`) so that 429/5xx (honouring
Retry-After) and the eventual-consistency 409s of soft-delete (`ObjectIsBeingRecovered`,
`ObjectIsBeingDeleted`, shared/api-specs/azure/NOTES.md §2.2-2.3) go through `lib.retry` with one deadline;
connection retries stay with azure-core. Values: every value read is registered with the redactor before
it is returned, and never appears in a repr, a log line or an exception text.
"""

from __future__ import annotations

import email.utils
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.keyvault.secrets import SecretClient, SecretProperties

from lib import limits, reach
from lib.clients.keyvault_types import KeyVaultError, Props, SecretMeta, SecretValue
from lib.logs import get_logger
from lib.redact import first_line, one_line, register_secret
from lib.retry import Backoff, call_with_retry, retry_after_of

R = TypeVar("R")
TRANSIENT_CONFLICTS = frozenset({"ObjectIsBeingRecovered", "ObjectIsBeingDeleted"})
PAGE_SIZE = 25  # the service's maximum


def _seconds(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value is not None else None


def _datetime(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def meta_of(props: SecretProperties) -> SecretMeta:
    return SecretMeta(
        name=str(props.name),
        props=Props(
            content_type=props.content_type,
            tags=dict(props.tags or {}),
            enabled=bool(props.enabled),
            expires_on=_seconds(props.expires_on),
            not_before=_seconds(props.not_before),
        ),
        version=props.version or None,
        created=_seconds(props.created_on),
        updated=_seconds(props.updated_on),
    )


def error_codes(exc: HttpResponseError) -> tuple[str, str]:
    """(outer code, inner code); the inner one is only in the raw body (NOTES.md §2.3)."""
    outer = getattr(getattr(exc, "error", None), "code", None) or ""
    inner = ""
    try:
        body = json.loads(exc.response.text()) if exc.response is not None else None
        error = body.get("error", {}) if isinstance(body, dict) else {}
        outer = outer or str(error.get("code") or "")
        inner = str((error.get("innererror") or {}).get("code") or "")
    except (ValueError, AttributeError, TypeError):
        pass
    return outer, inner


def is_transient(exc: Exception) -> bool:
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return True
    if not isinstance(exc, HttpResponseError) or isinstance(exc, ClientAuthenticationError):
        return False
    status = exc.status_code or 0
    if status == 429 or (status >= 500 and status not in (501, 505)):
        return True
    return status == 409 and error_codes(exc)[1] in TRANSIENT_CONFLICTS


def describe_error(label: str, what: str, exc: Exception, needs: str = "", url: str = "") -> KeyVaultError:
    """One line naming the vault, the call and the service's answer; on a 403 (other than a disabled secret)
    also what the job's identity needs there (`needs`, e.g. "the Key Vault Secrets Officer role on this vault")."""
    if isinstance(exc, HttpResponseError) and (exc.status_code or 0) >= 400:  # not a 200 that failed to decode
        outer, inner = error_codes(exc)
        status = exc.status_code or 0
        if not outer and status < 500 and status != 429:  # Key Vault's own errors always carry error.code
            return KeyVaultError(
                f"{label} vault: {what} -> {status}: {_not_key_vault(exc, url)}"
            )  # no status: not a 404 of Key Vault
        message = getattr(getattr(exc, "error", None), "message", None) or exc.reason or ""
        codes = "/".join(c for c in (outer, inner) if c)
        head = f"{label} vault: {what} -> {exc.status_code} {codes}: "
        if exc.status_code == 403 and inner == "ForbiddenByRbac":
            return KeyVaultError(head + _rbac_text(str(message), needs), exc.status_code, outer, inner, label)
        message = one_line(str(message))  # the service's messages carry \r\n: scrubbed before they are joined
        denied = exc.status_code == 403 and inner != "SecretDisabled" and needs
        hint = f" (the job's identity needs {needs})" if denied else ""
        return KeyVaultError(f"{head}{message}{hint}", exc.status_code, outer, inner, label)
    # the vault itself unreachable; a credential that could not reach Entra ID keeps its own words below
    unreachable = None if isinstance(exc, ClientAuthenticationError) else reach.describe(exc)
    if unreachable:
        return KeyVaultError(f"{label} vault: {what} -> {unreachable}")
    return KeyVaultError(f"{label} vault: {what} -> {type(exc).__name__}: {first_line(exc)}")


def _not_key_vault(exc: HttpResponseError, url: str) -> str:
    """Key Vault answers every error as JSON `{"error": {"code", "message"}}` (NOTES.md §2.3); anything else at
    the URL is another service (or a proxy's page), so the URL, not the secret, is what is wrong."""
    try:
        text = exc.response.text() if exc.response is not None else ""
    except (AttributeError, ValueError):
        text = ""
    snippet = " ".join(str(text).split())[:80]
    return (
        f"the answer ({snippet!r}) is not Key Vault's: {url or 'the vault URL'} does not look like a Key Vault; "
        "expected https://<vault-name>.vault.azure.net (az keyvault show --query properties.vaultUri)"
    )


def _rbac_text(message: str, needs: str) -> str:
    """Key Vault's RBAC refusal names the data action on its own line ("Action: '...'"); that, not the
    nine-line text, is what an SRE needs to fix the role assignment."""
    found = re.search(r"Action: '([^']+)'", message)
    action = found.group(1) if found else "(not named)"
    wanted = f"; it needs {needs}" if needs else ""
    return f"the job's identity lacks the data action {action}{wanted}"


class KeyVault:
    def __init__(
        self,
        url: str,
        credential: TokenCredential,
        *,
        label: str,
        needs: str = "",
        verify_challenge_resource: bool = True,
        backoff: Backoff = Backoff(base=0.5, cap=30.0, deadline=120.0, max_attempts=8),
    ) -> None:
        self.url, self.label, self.needs, self.backoff = url, label, needs, backoff
        self.client = SecretClient(
            url,
            credential,
            verify_challenge_resource=verify_challenge_resource,
            retry_status=0,
            retry_backoff_factor=limits.backoff_factor(0.8, 3),
            connection_timeout=limits.timeout(10),
            read_timeout=limits.timeout(60),
            raw_response_hook=self._saw_response,
        )
        self._values: dict[str, SecretValue] = {}  # this run's reads, so a value is fetched once
        self._log = get_logger(vault=label)
        self._clock_lock = threading.Lock()
        self._server_time: int | None = None

    # ---- the vault's own clock ------------------------------------------------------------------------------

    def _saw_response(self, response: Any) -> None:
        """Keep the latest `Date` the vault answered with: whole seconds of the vault's clock, the clock that
        stamps `created`/`updated`. Every request sent after a response was received is handled at or after
        that second, which is what makes a recorded `updated` time a safe change marker (see detect.py)."""
        try:
            stamp = int(email.utils.parsedate_to_datetime(response.http_response.headers["Date"]).timestamp())
        except (AttributeError, KeyError, TypeError, ValueError):
            return
        with self._clock_lock:
            self._server_time = max(stamp, self._server_time or stamp)

    @property
    def server_time(self) -> int | None:
        """The latest `Date` (Unix seconds) of any answer received so far; None before the first."""
        with self._clock_lock:
            return self._server_time

    def _call(self, what: str, fn: Callable[[], R], within: float | None = None) -> R:
        """Retry what Key Vault calls transient (honouring Retry-After) for at most the backoff's deadline, or
        `within` seconds when that is less (a run budget's time left: a call still throttled then gives up)."""
        backoff = self.backoff if within is None else replace(self.backoff, deadline=min(self.backoff.deadline, within))
        try:
            return call_with_retry(
                fn,
                transient=is_transient,
                retry_after=retry_after_of,
                backoff=backoff,
                client="keyvault",
                call=f"{self.label} vault {self.url}: {what}",
            )
        except (HttpResponseError, ServiceRequestError, ServiceResponseError, ClientAuthenticationError) as exc:
            raise describe_error(self.label, what, exc, self.needs, self.url) from None
        except ValueError as exc:
            if "challenge resource" not in str(exc):
                raise
            raise KeyVaultError(  # the SDK's own text tells a developer to pass a kwarg; an SRE needs the cause
                f"{self.label} vault: {what} -> {self.url} answered with an authentication challenge for a domain "
                "it is not under; check the vault URL (verification is turned off only for local emulators)"
            ) from None

    # ---- reads without values ----------------------------------------------------------------------------

    def list_secrets(self) -> list[SecretMeta]:
        """Every secret (all pages); a page that fails restarts the listing, which is harmless for a read."""
        return self._call(
            "list secrets", lambda: _metas(self.client.list_properties_of_secrets(max_page_size=PAGE_SIZE))
        )

    def list_versions(self, name: str) -> list[SecretMeta]:
        return self._call(
            f"list versions of {name}",
            lambda: _metas(self.client.list_properties_of_secret_versions(name, max_page_size=PAGE_SIZE)),
        )

    def list_deleted(self) -> list[SecretMeta]:
        return self._call(
            "list deleted secrets",
            lambda: [meta_of(d.properties) for d in self.client.list_deleted_secrets(max_page_size=PAGE_SIZE)],
        )

    # ---- the value ------------------------------------------------------------------------------------

    def read(self, name: str, within: float | None = None) -> SecretValue:
        """The current version with its value (registered with the redactor before anyone sees it)."""
        key = name.lower()
        if key not in self._values:
            secret = self._call(f"get {name}", lambda: self.client.get_secret(name), within)
            register_secret(secret.value)
            self._values[key] = SecretValue(meta_of(secret.properties), secret.value or "")
        return self._values[key]

    # ---- writes ---------------------------------------------------------------------------------------

    def set(self, name: str, value: str, props: Props, within: float | None = None) -> SecretMeta:
        """A new version (Key Vault's CREATE secret: its smallest limit, 300 per 10 s per vault; the caller
        paces these)."""
        secret = self._call(
            f"set {name}", lambda: self.client.set_secret(name, value, **_sdk_properties(props)), within
        )
        self._values.pop(name.lower(), None)
        return meta_of(secret.properties)

    def update(self, name: str, version: str | None, props: Props, within: float | None = None) -> SecretMeta:
        """Properties only (no new version). Expiry and not-before can be set but not cleared by a PATCH
        that omits them, so the caller compares before deciding to update."""
        updated = self._call(
            f"update {name}",
            lambda: self.client.update_secret_properties(name, version, **_sdk_properties(props)),
            within,
        )
        return meta_of(updated)

    def recover(self, name: str, within: float | None = None) -> SecretMeta:
        """Start the recovery; the answer names the recovered (latest) version. Not yet usable: see
        wait_until_recovered."""
        poller = self._call(f"recover {name}", lambda: self.client.begin_recover_deleted_secret(name), within)
        return meta_of(poller.result())  # KeyVaultOperationPoller.result() returns the initial answer, no polling

    def wait_until_recovered(
        self, name: str, timeout: float, interval: float = 0.5, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        """Poll GET /secrets/{name} until it answers, as the SDK's own recover poller does
        (azure-keyvault-secrets `_shared/_polling.py` DeleteRecoverPollingMethod: 404 = still recovering,
        2xx = done, 403 = done but not readable by us). Not the SDK poller itself: its thread cannot be stopped
        at a deadline and it raises on the 409 ObjectIsBeingRecovered and the 429s a busy vault answers, which
        here are retried. Not the versions list either: real Key Vault lists no versions (200, empty) for a
        name it does not hold, so that list cannot tell "recovered" from "not yet". The value read is
        registered with the redactor and dropped."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                secret = self._call(f"get {name} (recovery check)", lambda: self.client.get_secret(name))
                register_secret(secret.value or "")
                return
            except KeyVaultError as exc:
                if exc.status == 403 and exc.inner == "SecretDisabled":
                    return  # recovered; its current version is disabled, which the GET refuses by design
                if exc.status not in (404, 409):
                    raise
                if time.monotonic() + interval > deadline:
                    raise KeyVaultError(
                        f"{self.label} vault: {name} not readable {timeout:.0f}s after recover: {exc}", exc.status
                    ) from None
            sleep(interval)

    def soft_delete(self, name: str, within: float | None = None) -> None:
        # result() returns the deleted bundle without polling /deletedsecrets (NOTES.md §2.2)
        self._call(f"delete {name}", lambda: self.client.begin_delete_secret(name).result(), within)


def _metas(items: Iterable[SecretProperties]) -> list[SecretMeta]:
    return [meta_of(p) for p in items]


def _sdk_properties(props: Props) -> dict[str, Any]:
    """The SDK keywords for the properties a set or an update carries (the same five either way)."""
    return {
        "enabled": props.enabled,
        "tags": dict(props.tags),
        "content_type": props.content_type,
        "not_before": _datetime(props.not_before),
        "expires_on": _datetime(props.expires_on),
    }
