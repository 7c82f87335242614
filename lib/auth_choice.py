"""Which credentials a run uses, decided once, before any request, from the flags and the environment.

Azure (`--azure-auth auto|workload-identity|azure-cli`, env CWJ_AZURE_AUTH): exactly one credential, never a
chain. `auto` is Workload Identity when the webhook's four variables are all set, else, off-cluster only, the
Azure CLI's login. In a pod (KUBERNETES_SERVICE_HOST set) `auto` never ends at the CLI, nor at the node's
managed identity (IMDS), which DefaultAzureCredential would quietly have used: an incomplete Workload Identity
env there is a configuration error that names the missing variables. `azure-cli` is honoured anywhere, so an
SRE in a Coder workspace (a pod that carries the workspace's own Workload Identity env) can act as themself.

Vault (`--vault-auth auto|token|kubernetes`, env CWJ_VAULT_AUTH), like the vault CLI (hashicorp/vault
command/base.go `Client`: the VAULT_TOKEN env first, else the token helper; command/token/helper_internal.go:
`$HOME/.vault-token`, whitespace trimmed, a missing file meaning no token): `token` is VAULT_TOKEN, else
~/.vault-token; `kubernetes` logs in with the service-account JWT; `auto` tries them in that order. A token
found this way is the SRE's own: it is used, never revoked.

The decisions (`decide_*`) are pure; `vault_auth` only reads the two files they need.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lib.logs import get_logger
from lib.redact import register_secret
from lib.settings import AZURE, VAULT, ConfigError, one_of, setting

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from lib.clients.vault import VaultClient

AZURE_AUTH = ("auto", "workload-identity", "azure-cli")
VAULT_AUTH = ("auto", "token", "kubernetes")
# What the Azure Workload Identity webhook injects into a pod whose ServiceAccount uses it, all four together
# (Azure/azure-workload-identity docs/book/src/topics/mutating-admission-webhook.md, "Environment Variables").
WORKLOAD_IDENTITY_ENV = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST")
POD_MARKER = "KUBERNETES_SERVICE_HOST"  # the kubelet sets it in every container
# Where the kubelet mounts a pod's service-account token: the default JWT for Kubernetes auth.
POD_SA_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")


def azure_auth_setting() -> Any:
    return setting(
        "--azure-auth",
        "Azure credential: auto (Workload Identity when its env is complete, else, outside a pod, the Azure CLI "
        "login), workload-identity, or azure-cli; never a chain, never the node's managed identity",
        parse=one_of(*AZURE_AUTH),
        default="auto",
        group=AZURE,
    )


def vault_auth_setting() -> Any:
    return setting(
        "--vault-auth",
        "Vault login: auto (VAULT_TOKEN, else ~/.vault-token, else Kubernetes auth), token, or kubernetes",
        parse=one_of(*VAULT_AUTH),
        default="auto",
        group=VAULT,
    )


# ---- Azure ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AzureAuth:
    method: str  # "workload-identity" or "azure-cli"
    reason: str  # one line for the log: why this credential


def missing_workload_identity(environ: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(name for name in WORKLOAD_IDENTITY_ENV if not environ.get(name, "").strip())


def in_pod(environ: Mapping[str, str]) -> bool:
    return bool(environ.get(POD_MARKER, "").strip())


def decide_azure_auth(mode: str, environ: Mapping[str, str], cli_found: bool, label: str) -> AzureAuth:
    """The one Azure credential for this run, or a ConfigError (exit 2) saying what is missing."""
    missing = missing_workload_identity(environ)
    unset = ", ".join(missing)
    if mode == "workload-identity":
        if missing:
            raise ConfigError(label, f"workload-identity needs {_webhook_env()}; unset: {unset}")
        return AzureAuth("workload-identity", "chosen by --azure-auth")
    if mode == "azure-cli":
        if not cli_found:
            raise ConfigError(label, "azure-cli needs the Azure CLI (az) on PATH, logged in with `az login`")
        ignored = "" if missing else "; the Workload Identity env present is not used"
        return AzureAuth("azure-cli", "chosen by --azure-auth" + ignored)
    if not missing:
        return AzureAuth("workload-identity", "auto: the Workload Identity env is complete")
    if in_pod(environ):
        raise ConfigError(
            label,
            f"auto in a pod ({POD_MARKER} is set) uses Workload Identity only, and {unset} "
            f"{'is' if len(missing) == 1 else 'are'} unset: label the pod azure.workload.identity/use=true and "
            "annotate its ServiceAccount with azure.workload.identity/client-id (no fallback to the node's managed "
            "identity or the Azure CLI), or pass --azure-auth azure-cli to use your own login",
        )
    if not cli_found:
        raise ConfigError(
            label,
            f"auto found no Azure credential: the Workload Identity env is incomplete ({unset} unset) and the "
            "Azure CLI (az) is not on PATH; install it and run `az login`",
        )
    return AzureAuth("azure-cli", f"auto: outside a pod without a complete Workload Identity env ({unset} unset)")


def check_azure(mode: str, environ: Mapping[str, str], label: str) -> AzureAuth:
    """decide_azure_auth with the Azure CLI looked for on the environment's PATH."""
    cli_found = shutil.which("az", path=environ.get("PATH", os.defpath)) is not None
    return decide_azure_auth(mode, environ, cli_found, label)


def connect_azure(mode: str, label: str, environ: Mapping[str, str] | None = None) -> TokenCredential:
    """Decide (ConfigError: exit 2), say which credential in the log, and build it. azure-identity is imported
    only here: `--help` and a configuration error need not pay for it."""
    env = os.environ if environ is None else environ
    choice = check_azure(mode, env, label)
    identity = {}
    if choice.method == "workload-identity":  # which identity: ids, not secrets
        identity = {"client_id": env["AZURE_CLIENT_ID"], "tenant_id": env["AZURE_TENANT_ID"]}
    get_logger().info("azure.credential", method=choice.method, reason=choice.reason, **identity)
    from lib.clients.azure_auth import azure_credential

    return azure_credential(env, choice.method)


def _webhook_env() -> str:
    return ", ".join(WORKLOAD_IDENTITY_ENV) + " (the webhook sets them in a pod labelled azure.workload.identity/use)"


# ---- Vault ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VaultAuth:
    method: str  # "token" or "kubernetes"
    source: str  # VAULT_TOKEN, the token file's path, or the JWT file's path: for the log, never a value
    token: str = field(default="", repr=False)


def vault_token_file(environ: Mapping[str, str]) -> Path:
    """Where `vault login` stores its token: $HOME/.vault-token (go-homedir reads $HOME first)."""
    home = environ.get("HOME", "").strip()
    return (Path(home) if home else Path.home()) / ".vault-token"


def decide_vault_auth(
    mode: str,
    env_token: str,
    file_token: str,
    token_file: Path,
    jwt_file: Path,
    jwt_exists: bool,
    labels: tuple[str, str],
) -> VaultAuth:
    """labels: (--vault-auth's, --vault-jwt-file's). A ConfigError (exit 2) when nothing applies names all three
    sources and where each was looked for."""
    auth_label, jwt_label = labels
    if mode in ("auto", "token"):
        if env_token:
            return VaultAuth("token", "VAULT_TOKEN", env_token)
        if file_token:
            return VaultAuth("token", str(token_file), file_token)
        if mode == "token":
            raise ConfigError(
                auth_label,
                f"token needs VAULT_TOKEN or the token `vault login` leaves in {token_file}; neither is there",
            )
    if jwt_exists:
        return VaultAuth("kubernetes", str(jwt_file))
    if mode == "kubernetes":
        raise ConfigError(jwt_label, f"expected a readable file, {str(jwt_file)!r} does not exist")
    raise ConfigError(
        auth_label,
        f"auto found no Vault credential: VAULT_TOKEN is unset, {token_file} does not exist (`vault login` writes "
        f"it), and there is no service-account token for Kubernetes auth at {jwt_file} ({jwt_label})",
    )


def vault_auth(mode: str, environ: Mapping[str, str], jwt_file: Path, labels: tuple[str, str]) -> VaultAuth:
    """decide_vault_auth over what is really there; a token read here is registered with the redactor first."""
    env_token = environ.get("VAULT_TOKEN", "").strip()
    token_file = vault_token_file(environ)
    file_token = ""
    if not env_token and mode != "kubernetes":
        try:
            file_token = token_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            file_token = ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(labels[0], f"cannot read {token_file}: {getattr(exc, 'strerror', None) or exc}") from None
    for token in (env_token, file_token):
        if token:
            register_secret(token)
    return decide_vault_auth(mode, env_token, file_token, token_file, jwt_file, jwt_file.is_file(), labels)


def connect_vault(
    mode: str, jwt_file: Path, labels: tuple[str, str], environ: Mapping[str, str] | None = None
) -> VaultAuth:
    """vault_auth over the environment, and one log line saying which (the source, never a value)."""
    auth = vault_auth(mode, os.environ if environ is None else environ, jwt_file, labels)
    get_logger().info("vault.credential", method=auth.method, source=auth.source)
    return auth


def vault_login(auth: VaultAuth, addr: str, role: str, jwt_file: Path, mount: str) -> VaultClient:
    """A client holding the chosen token, or a Kubernetes-auth login (whose token the run revokes at its end)."""
    from lib.clients.vault import VaultClient

    if auth.method == "token":  # a refused token is named by where it came from (VAULT_TOKEN, ~/.vault-token)
        return VaultClient(addr, auth.token, token_source=auth.source)
    return VaultClient.kubernetes_login(addr, role, jwt_file, mount)
