"""The Azure credential: Workload Identity in a pod, the developer's own login on a laptop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import ClientAssertionCredential, DefaultAzureCredential, WorkloadIdentityCredential

from lib import limits
from lib.redact import register_secret

WEBHOOK_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")
T = TypeVar("T")


def has_workload_identity(environ: Mapping[str, str]) -> bool:
    return all(environ.get(name) for name in WEBHOOK_ENV)


def azure_credential(environ: Mapping[str, str], client_id: str | None = None) -> TokenCredential:
    """WorkloadIdentityCredential when the webhook's env is present (a pod, or the emulated platform);
    otherwise DefaultAzureCredential without any interactive step, so a CronJob never waits on a browser."""
    if has_workload_identity(environ):
        return EntraCredential(
            WorkloadIdentityCredential(
                tenant_id=environ["AZURE_TENANT_ID"],
                client_id=client_id or environ["AZURE_CLIENT_ID"],
                token_file_path=environ["AZURE_FEDERATED_TOKEN_FILE"],
                retry_policy_class=CappedRetryPolicy,
                **_transport(),
            )
        )
    # No CappedRetryPolicy here: DefaultAzureCredential hands its kwargs to ManagedIdentityCredential, whose IMDS
    # credential sets its own retry_policy_class (a second one is a TypeError) and needs its IMDS retry rules.
    return EntraCredential(
        DefaultAzureCredential(
            exclude_interactive_browser_credential=True,
            exclude_shared_token_cache_credential=True,
            exclude_visual_studio_code_credential=True,
            **_transport(),
        )
    )


class EntraCredential:
    """The credential, with every failure as one ClientAuthenticationError that names Entra ID, the token
    request and the HTTP status: azure-identity's own text names only its class, and a connection error would
    otherwise reach the SDK clients as a retryable ServiceRequestError (retried again on top of the
    credential's own retries)."""

    def __init__(self, inner: WorkloadIdentityCredential | DefaultAzureCredential) -> None:
        self._inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return _named(scopes, lambda: self._inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return _named(scopes, lambda: self._inner.get_token_info(*scopes, options=options))

    def close(self) -> None:
        self._inner.close()


def _named(scopes: tuple[str, ...], fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        lines = str(getattr(exc, "message", None) or exc).strip().splitlines() or [type(exc).__name__]
        where = f"HTTP {status}: " if status else f"{type(exc).__name__}: "
        message = f"Entra ID token request for {' '.join(scopes)} failed: {where}{lines[0]}"
        # no response attached: the SDK clients would describe it by the token endpoint's status, as if their
        # own service had answered it
        raise ClientAuthenticationError(message=message) from None


def _transport() -> dict[str, float | int]:
    # azure-identity's own pipeline would retry a failing token endpoint 10 times with backoff up to 120 s
    # (minutes of silence in an Entra outage); three retries, within --request-timeout/--retry-deadline.
    return {
        "retry_total": 3,
        "retry_backoff_factor": limits.backoff_factor(0.8, 3),
        "retry_backoff_max": limits.deadline(120.0),
        "connection_timeout": limits.timeout(10.0),
        "read_timeout": limits.timeout(60.0),
    }


class CappedRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's RetryPolicy sleeps for whatever Retry-After the token endpoint sends (`_sleep_for_retry`;
    `retry_backoff_max` bounds only its own exponential backoff), so an Entra 429 with Retry-After: 3600 would
    hold the run for an hour. Capped as lib/http.py caps urllib3's `retry_after_max`: no single wait beyond
    30 s or --retry-deadline, then the retry happens (and a still-throttled endpoint fails the run, named)."""

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        asked = super().get_retry_after(response)
        return None if asked is None else min(asked, limits.deadline(30.0))


def exchange_assertion(tenant_id: str, client_id: str, assertion: str, scope: str, timeout: float) -> None:
    """One client-assertion grant at Entra (`AZURE_AUTHORITY_HOST`), the exchange WorkloadIdentityCredential makes in
    a workload's pod: `assertion` (a ServiceAccount JWT) for a token of `client_id` for `scope`. No retry (the caller
    keeps its own schedule), every wait bounded by `timeout`. A refusal raises azure-identity's
    ClientAuthenticationError, whose message carries Entra's AADSTS code and text (never the assertion). The token
    granted is registered with the redactor and dropped: only the grant matters."""
    credential = ClientAssertionCredential(
        tenant_id,
        client_id,
        lambda: assertion,
        retry_total=0,
        connection_timeout=timeout,
        read_timeout=timeout,
    )
    try:
        granted = credential.get_token(scope)
    finally:
        credential.close()
    register_secret(granted.token)
