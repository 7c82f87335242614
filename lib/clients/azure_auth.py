"""The Azure credential: exactly one, built for the method lib/auth_choice.py decided (never a chain).

Workload Identity: azure-identity's WorkloadIdentityCredential from the webhook's env, its token endpoint
retried three times within --request-timeout/--retry-deadline. Azure CLI: azure-identity's AzureCliCredential,
which runs `az account get-access-token --output json --resource <scope without /.default> [--tenant <id>]`
and reads `accessToken` and `expires_on` (else `expiresOn`, a naive local time) from its JSON; its one process
may take at most --retry-deadline (default azure-identity's 10 s). Neither probes IMDS: the DefaultAzureCredential
chain this replaces would have tried the node's managed identity, following its Retry-After uncapped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import AzureCliCredential, ClientAssertionCredential, WorkloadIdentityCredential

from lib import limits
from lib.redact import first_line, register_secret

T = TypeVar("T")
CLI_PROCESS_TIMEOUT = 10.0  # azure-identity's own default for the az process


def azure_credential(environ: Mapping[str, str], method: str = "workload-identity") -> TokenCredential:
    """The credential for `method` ("workload-identity" or "azure-cli"); the caller has checked that its
    inputs are there (lib/auth_choice.py)."""
    if method == "azure-cli":
        return azure_cli_credential()
    if method == "workload-identity":
        return workload_identity_credential(environ)
    raise ValueError(f"unknown Azure credential method {method!r}")


def workload_identity_credential(environ: Mapping[str, str]) -> TokenCredential:
    return EntraCredential(
        WorkloadIdentityCredential(
            tenant_id=environ["AZURE_TENANT_ID"],
            client_id=environ["AZURE_CLIENT_ID"],
            token_file_path=environ["AZURE_FEDERATED_TOKEN_FILE"],
            authority=environ.get("AZURE_AUTHORITY_HOST") or None,
            retry_policy_class=CappedRetryPolicy,
            **_transport(),
        ),
        "Entra ID token request",
    )


def azure_cli_credential() -> TokenCredential:
    # No tenant: the CLI's own login picks it, and a Key Vault challenge's tenant is passed on as --tenant.
    timeout = max(1, math.ceil(limits.deadline(CLI_PROCESS_TIMEOUT)))
    return EntraCredential(
        AzureCliCredential(process_timeout=timeout), "Azure CLI token request (az account get-access-token)"
    )


class EntraCredential:
    """The credential, with every failure as one ClientAuthenticationError that names where the token was
    asked for (Entra ID or the Azure CLI), the scope and the HTTP status: azure-identity's own text names only
    its class, and a connection error would otherwise reach the SDK clients as a retryable ServiceRequestError
    (retried again on top of the credential's own retries)."""

    def __init__(self, inner: WorkloadIdentityCredential | AzureCliCredential, what: str) -> None:
        self._inner = inner
        self.what = what  # "Entra ID token request" or "Azure CLI token request (...)": the error's first words

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return _named(self.what, scopes, lambda: self._inner.get_token(*scopes, **kwargs))

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        return _named(self.what, scopes, lambda: self._inner.get_token_info(*scopes, options=options))

    def close(self) -> None:
        self._inner.close()


def _named(what: str, scopes: tuple[str, ...], fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Exception as exc:
        status = getattr(exc, "status_code", None)
        line = first_line(getattr(exc, "message", None) or exc) or type(exc).__name__
        where = f"HTTP {status}: " if status else f"{type(exc).__name__}: "
        message = f"{what} for {' '.join(scopes)} failed: {where}{line}"
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
    30 s or --retry-deadline. And one token request's retries all fit in that same bound: three retries each
    waiting the cap held a run against a throttling Entra for three times --retry-deadline. When the bound is
    spent the last answer stands (a still-throttled endpoint fails the run, named with its status)."""

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        request.context[_RETRY_UNTIL] = time.monotonic() + limits.deadline(RETRY_BUDGET)
        return super().send(request)

    def increment(self, settings: dict[str, Any], response: Any = None, error: Any = None) -> bool:
        retry = super().increment(settings, response=response, error=error)
        return retry and _left(getattr(response, "context", None)) > 0

    def get_retry_after(self, response: PipelineResponse[Any, Any]) -> float | None:
        asked = super().get_retry_after(response)
        return None if asked is None else min(asked, limits.deadline(RETRY_BUDGET), _left(response.context))


RETRY_BUDGET = 30.0  # seconds one token request may spend waiting to retry, unless --retry-deadline is lower
_RETRY_UNTIL = "cwj_retry_until"


def _left(context: Any) -> float:
    until = context.get(_RETRY_UNTIL) if context is not None else None
    return RETRY_BUDGET if until is None else max(0.0, until - time.monotonic())


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
