"""What a workspace pod does to get an Entra token, as one call the e2e tests share (issue 20's done-means 2).

`exchange(platform, namespace, client_id, via="fic" | "identity-binding")`:
1. a TokenRequest for the namespace's `workspace` ServiceAccount through the real Kubernetes client (what the
   kubelet projects into the pod; 404 when the ServiceAccount does not exist), with the audience the workload
   identity webhook asks for: `api://AzureADTokenExchange` for a FIC, `api://AKSIdentityBinding` when the pod
   carries `azure.workload.identity/use-identity-binding: "true"` (the webhook then also injects
   AZURE_KUBERNETES_TOKEN_PROXY, AZURE_KUBERNETES_SNI_NAME and AZURE_KUBERNETES_CA_FILE: MicrosoftDocs
   azure-aks-docs articles/aks/identity-bindings.md, "Verify access"; the audience: the
   secrets-store-csi-driver-provider-azure auth package's IdentityBindingTokenAudience);
2. the real azure-identity WorkloadIdentityCredential with that token file and the client id, for the FIC path
   straight to the Entra emulator, for the binding path with `enable_azure_proxy=True` (azure-identity >= 1.26.0b2,
   identity-bindings-concepts.md), which sends the same token request to the AKS identity binding proxy
   (tests/emulators/ibproxy), which checks Kubernetes RBAC and then exchanges with Entra.

Returns granted, or refused with the code of whoever refused: Entra's `AADSTS<n>` or the proxy's error.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import WorkloadIdentityCredential
from kubernetes import client as k8s
from kubernetes import config as k8s_config

from tests.emulators.platform import Platform

FIC_AUDIENCE = "api://AzureADTokenExchange"
BINDING_AUDIENCE = "api://AKSIdentityBinding"
ARM_SCOPE = "https://management.azure.com/.default"
Via = Literal["fic", "identity-binding"]


@dataclass(frozen=True)
class ExchangeResult:
    granted: bool
    code: str  # "" when granted; else "AADSTS<n>" (Entra), the proxy's error (e.g. "access_denied"), or "k8s:<status>"
    message: str  # the refusal's first line (no token ever reaches it)


def workspace_token(platform: Platform, namespace: str, audience: str, seconds: int = 600) -> str:
    """A TokenRequest for `<namespace>/workspace`, as the kubelet asks for the pod's projected token."""
    api = k8s.CoreV1Api(k8s_config.new_client_from_config(str(platform.state_dir / "kubeconfig")))
    spec = k8s.V1TokenRequestSpec(audiences=[audience], expiration_seconds=seconds)
    minted = api.create_namespaced_service_account_token(
        "workspace", namespace, k8s.AuthenticationV1TokenRequest(spec=spec)
    )
    return str(platform.remember_secret(minted.status.token))


def credential(platform: Platform, client_id: str, token_file: Path, via: Via) -> WorkloadIdentityCredential:
    """The credential a workspace's code builds from the webhook's env (here passed explicitly)."""
    common = {
        "tenant_id": platform.baseline.tenant_id,
        "client_id": client_id,
        "token_file_path": str(token_file),
        "authority": platform.entra.url,
        "connection_verify": str(platform.ca_path),
    }
    if via == "fic":
        return WorkloadIdentityCredential(**common)
    with proxy_env(platform):  # azure-identity reads the proxy settings from the env at construction
        return WorkloadIdentityCredential(enable_azure_proxy=True, **common)


@contextmanager
def proxy_env(platform: Platform) -> Iterator[None]:
    """The three variables the webhook injects into a pod that uses an identity binding."""
    names = ("AZURE_KUBERNETES_TOKEN_PROXY", "AZURE_KUBERNETES_SNI_NAME", "AZURE_KUBERNETES_CA_FILE")
    saved = {k: os.environ.get(k) for k in names}
    os.environ.update(platform.ib_proxy_env())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def exchange(platform: Platform, namespace: str, client_id: str, *, via: Via) -> ExchangeResult:
    if via not in ("fic", "identity-binding"):
        raise ValueError(f'via: expected "fic" or "identity-binding", got {via!r}')
    audience = FIC_AUDIENCE if via == "fic" else BINDING_AUDIENCE
    try:
        token = workspace_token(platform, namespace, audience)
    except k8s.ApiException as exc:
        return ExchangeResult(False, f"k8s:{exc.status}", f"TokenRequest refused: {exc.reason}")
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "azure-identity-token"
        token_file.write_text(token)
        try:
            credential(platform, client_id, token_file, via).get_token(ARM_SCOPE)
        except ClientAuthenticationError as exc:
            return refusal(exc)
    return ExchangeResult(True, "", "")


def refusal(exc: ClientAuthenticationError) -> ExchangeResult:
    """Entra's body names `AADSTS<n>` in error_description; the proxy's names only its `error`."""
    body: dict[str, object] = {}
    if exc.response is not None:
        try:
            body = json.loads(exc.response.text())
        except ValueError:
            body = {}
    description = str(body.get("error_description") or exc.message or "")
    found = re.search(r"AADSTS\d+", description)
    code = found.group(0) if found else str(body.get("error") or "unknown")
    return ExchangeResult(False, code, description.splitlines()[0] if description else "")
