"""The Azure credential: Workload Identity in a pod, the developer's own login on a laptop."""

from __future__ import annotations

from collections.abc import Mapping

from azure.core.credentials import TokenCredential
from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential

WEBHOOK_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE")


def has_workload_identity(environ: Mapping[str, str]) -> bool:
    return all(environ.get(name) for name in WEBHOOK_ENV)


def azure_credential(environ: Mapping[str, str], client_id: str | None = None) -> TokenCredential:
    """WorkloadIdentityCredential when the webhook's env is present (a pod, or the emulated platform);
    otherwise DefaultAzureCredential without any interactive step, so a CronJob never waits on a browser."""
    if has_workload_identity(environ):
        return WorkloadIdentityCredential(
            tenant_id=environ["AZURE_TENANT_ID"],
            client_id=client_id or environ["AZURE_CLIENT_ID"],
            token_file_path=environ["AZURE_FEDERATED_TOKEN_FILE"],
        )
    return DefaultAzureCredential(
        exclude_interactive_browser_credential=True,
        exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True,
    )
