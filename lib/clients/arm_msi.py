"""A small client over azure-mgmt-msi: the identity pool, and the FICs of each identity.

Retries: azure-core's RetryPolicy would retry 429/5xx (and any status carrying Retry-After) up to 3 times
per call on its own; wrapped in our retry that would multiply into dozens of attempts. So the SDK keeps
only connection/read retries (`retry_status=0`, `retry_total=3`) and every status-based retry lives in
`call` below, in one place, honouring Retry-After and bounded in total time (lib/retry.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential

from lib import limits, reach
from lib.clients.arm_types import FicSpec, ObservedFic
from lib.redact import first_line
from lib.retry import Backoff, call_with_retry, retry_after_of

R = TypeVar("R")

CONCURRENT_WRITE = "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
WRITE_BACKOFF = Backoff(base=0.5, cap=15.0, deadline=90.0, max_attempts=10)
SERVER_ERROR_ATTEMPTS = 3  # a 5xx that persists is a real failure: report it rather than wait out the deadline


@dataclass(frozen=True)
class PoolIdentity:
    name: str
    client_id: str


class ArmError(Exception):
    """A failed ARM call, as one line that names the call."""


class UnknownClientIds(Exception):
    def __init__(self, missing: Sequence[str], resource_group: str) -> None:
        super().__init__(f"client id(s) {', '.join(missing)} not found in resource group {resource_group}")
        self.missing = tuple(missing)


def status_of(exc: Exception) -> int | None:
    return exc.status_code if isinstance(exc, HttpResponseError) else None


def error_code(exc: Exception) -> str:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    response = getattr(exc, "response", None)
    try:
        return str(response.json()["error"]["code"]) if response is not None else ""
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def is_transient(exc: Exception) -> bool:
    """409 concurrent-write (Azure serialises FIC writes per identity), 429 throttling, and 5xx."""
    status = status_of(exc)
    if status == 409:
        return error_code(exc) == CONCURRENT_WRITE
    return status is not None and (status == 429 or status >= 500)


def describe_error(exc: Exception) -> str:
    """One line for the report: ARM, status, error code and message (ARM messages carry no secrets). An answer
    that is not JSON comes with status 200: it is named by its exception, not its status."""
    status = status_of(exc)
    message = getattr(exc, "message", None) or str(exc)
    first = first_line(message) or type(exc).__name__
    if status and status >= 400:
        return f"ARM {status} {error_code(exc)}: {first}".replace(" :", ":")
    # ARM itself unreachable; a credential that could not reach Entra ID keeps its own words below
    unreachable = None if isinstance(exc, ClientAuthenticationError) else reach.describe(exc)
    if unreachable:
        return f"ARM {unreachable}"
    return f"ARM {type(exc).__name__}: {first}"


class _TransientBudget:
    """is_transient, but a persisting 5xx gives up after SERVER_ERROR_ATTEMPTS (409/429 follow the backoff)."""

    def __init__(self) -> None:
        self.server_errors = 0

    def __call__(self, exc: Exception) -> bool:
        status = status_of(exc)
        if status is not None and status >= 500:
            self.server_errors += 1
            return self.server_errors < SERVER_ERROR_ATTEMPTS
        return is_transient(exc)


def call_arm(
    fn: Callable[[], R],
    backoff: Backoff,
    on_retry: Callable[[Exception, int, float], None] | None,
    within: float | None = None,
    what: str = "",
) -> R:
    """Retry what ARM calls transient (is_transient), for at most the backoff's deadline or `within` seconds if
    less; every ARM client of this package retries this one way, and logs each retry in the one shape (`retry`,
    client arm, the call `what`)."""
    if within is not None:
        backoff = replace(backoff, deadline=min(backoff.deadline, within))
    budget = _TransientBudget()
    return call_with_retry(
        fn,
        transient=budget,
        retry_after=retry_after_of,
        backoff=backoff,
        on_retry=on_retry,
        client="arm",
        call=what,
    )


def sdk_transport() -> dict[str, Any]:
    """The azure-mgmt clients' own pipeline settings: connection errors retried by azure-core, HTTP statuses
    left to call_arm (retry_status=0), so one retry loop decides and logs, each wait within the process limits."""
    return {
        "retry_total": 3,
        "retry_connect": 3,
        "retry_read": 1,
        "retry_status": 0,
        "retry_backoff_factor": limits.backoff_factor(0.8, 3),
        "connection_timeout": limits.timeout(10),
        "read_timeout": limits.timeout(60),
    }


class ArmMsi:
    def __init__(
        self,
        credential: TokenCredential,
        subscription_id: str,
        resource_group: str,
        endpoint: str,
        scope: str,
        on_retry: Callable[[Exception, int, float], None] | None = None,
        backoff: Backoff = WRITE_BACKOFF,
    ) -> None:
        """`scope` is the token scope for `endpoint`'s own audience (lib/arm_cloud.py): without it the SDK asks
        for its default cloud's (`https://management.azure.com/.default`) whatever host it calls."""
        self.resource_group = resource_group
        self.scope = scope  # a probe's exchange asks Entra for the same resource
        self._on_retry = on_retry
        self._backoff = backoff
        self._client = ManagedServiceIdentityClient(
            credential,
            subscription_id,
            base_url=endpoint,
            credential_scopes=[scope],
            **sdk_transport(),
        )

    def call(self, fn: Callable[[], R], within: float | None = None, what: str = "") -> R:
        """Retry what ARM calls transient, for at most the backoff's deadline or `within` seconds if less (a
        caller with a run budget: a Retry-After past it ends the call with that 429)."""
        return call_arm(fn, self._backoff, self._on_retry, within, what=what)

    def resolve_pool(self, client_ids: Sequence[str]) -> list[PoolIdentity]:
        """The pool's client ids, in pool order, as identity names in the resource group."""
        listed = self.call(
            lambda: list(self._client.user_assigned_identities.list_by_resource_group(self.resource_group)),
            what=f"list identities in {self.resource_group}",
        )
        by_client = {str(i.client_id).lower(): str(i.name) for i in listed if i.client_id}
        missing = [c for c in client_ids if c.lower() not in by_client]
        if missing:
            raise UnknownClientIds(missing, self.resource_group)
        return [PoolIdentity(by_client[c.lower()], c) for c in client_ids]

    def list_fics(self, identity: str) -> list[ObservedFic]:
        """Every FIC of the identity, across all pages (the pager follows nextLink)."""
        fics = self._client.federated_identity_credentials
        return self.call(
            lambda: [_observed(f) for f in fics.list(self.resource_group, identity)], what=f"list FICs of {identity}"
        )

    def put_fic(self, identity: str, name: str, spec: FicSpec, within: float | None = None) -> None:
        body = FederatedIdentityCredential(issuer=spec.issuer, subject=spec.subject, audiences=list(spec.audiences))
        self.call(
            lambda: self._client.federated_identity_credentials.create_or_update(
                self.resource_group, identity, name, body
            ),
            within,
            what=f"put FIC {identity}/{name}",
        )

    def delete_fic(self, identity: str, name: str, within: float | None = None) -> None:
        fics = self._client.federated_identity_credentials
        self.call(
            lambda: fics.delete(self.resource_group, identity, name), within, what=f"delete FIC {identity}/{name}"
        )

    def close(self) -> None:
        self._client.close()  # type: ignore[no-untyped-call]


def _observed(fic: Any) -> ObservedFic:
    return ObservedFic(
        str(fic.name),
        FicSpec(str(fic.issuer or ""), str(fic.subject or ""), tuple(str(a) for a in fic.audiences or ())),
    )
