"""The local platform: every emulator in one process, one test CA, one emulated clock, one request log.

`Platform.start()` binds every emulator to a free port on 127.0.0.1, starts a real OpenBao server behind the
`vault` fault proxy, seeds the baseline (the identity pool, the jobs' own identity, the Vault role and
policy, the Coder owner and auditor), and writes the files the
env file points at (CA bundle, service-account tokens, kubeconfig, Coder tokens). `reset()` restores
that baseline without changing any value the env file names, so a long-lived platform can serve many
tests.
"""

from __future__ import annotations

import json
import shlex
import ssl
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulators.core import Clock, Emulator, Faults, RequestLog

TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"


def _uuid(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"coder-wi-jobs-emulator/{seed}"))


@dataclass(frozen=True)
class Baseline:
    """Names and ids the emulators seed on every reset; the env file is built from these."""

    tenant_id: str = _uuid("tenant")
    subscription_id: str = _uuid("subscription")
    pool_resource_group: str = "rg-coder-wi"
    pool_size: int = 3
    jobs_resource_group: str = "rg-coder-wi-jobs"
    jobs_identity: str = "id-coder-wi-jobs"
    jobs_namespace: str = "coder-wi-jobs"
    jobs_service_account: str = "coder-wi-jobs"  # the Azure-facing jobs (fic-reconcile, keyvault-sync)
    mint_service_account: str = "coder-token-mint"  # the Vault-facing job
    vault_role: str = "coder-token-writer"
    # OpenBao's TokenReview caller: bound to system:auth-delegator, as Vault's Kubernetes auth docs ask
    reviewer_namespace: str = "kube-system"
    reviewer_service_account: str = "vault-token-reviewer"
    oidc_issuer: str = f"https://oidc.aks.emulator.test/{_uuid('tenant')}/{_uuid('cluster')}/"
    location: str = "westeurope"
    cluster_resource_group: str = "rg-coder-aks"  # the AKS cluster whose identity bindings fic-reconcile manages
    cluster_name: str = "aks-coder"

    @property
    def cluster_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.cluster_resource_group}"
            f"/providers/Microsoft.ContainerService/managedClusters/{self.cluster_name}"
        )

    def pool_identity_name(self, index: int) -> str:
        return f"id-coder-ws-pool-{index}"

    def client_id(self, identity_name: str) -> str:
        return _uuid(f"client/{identity_name}")

    def principal_id(self, identity_name: str) -> str:
        return _uuid(f"principal/{identity_name}")

    def service_account_uid(self, namespace: str, name: str) -> str:
        """The uid of a baseline ServiceAccount: fixed, so the tokens the env file names survive a reset."""
        return _uuid(f"sa/{namespace}/{name}")

    @property
    def service_accounts(self) -> list[tuple[str, str]]:
        return [
            (self.jobs_namespace, self.jobs_service_account),
            (self.jobs_namespace, self.mint_service_account),
            (self.reviewer_namespace, self.reviewer_service_account),
        ]

    @property
    def pool_client_ids(self) -> list[str]:
        return [self.client_id(self.pool_identity_name(i)) for i in range(self.pool_size)]

    @property
    def jobs_client_id(self) -> str:
        return self.client_id(self.jobs_identity)


class SigningKey:
    """An RSA key that signs RS256 JWTs: the cluster's service-account issuer, or Entra's token signer."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key(), as_dict=True)
        return {**public, "kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def verify(self, token: str, audience: str | list[str] | None, now: float) -> dict[str, Any]:
        """Signature, `aud` and `exp`/`nbf` against the emulated clock. Raises jwt.InvalidTokenError."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self.public_pem,
            algorithms=["RS256"],
            audience=audience,
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": audience is not None},
        )
        if "exp" in claims and now >= float(claims["exp"]):
            raise jwt.ExpiredSignatureError("token expired")
        if "nbf" in claims and now < float(claims["nbf"]):
            raise jwt.ImmatureSignatureError("token not yet valid")
        return claims


class Platform:
    def __init__(self, state_dir: Path, baseline: Baseline | None = None) -> None:
        from tests.emulators.arm.emulator import ArmEmulator
        from tests.emulators.coder.emulator import CoderEmulator
        from tests.emulators.control import ControlEmulator
        from tests.emulators.entra.emulator import EntraEmulator
        from tests.emulators.ibproxy.emulator import IbProxyEmulator
        from tests.emulators.keyvault.emulator import KeyVaultEmulator
        from tests.emulators.kube.emulator import KubeEmulator
        from tests.emulators.vault.proxy import VaultProxy

        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.baseline = baseline or Baseline()
        self.clock = Clock()
        self.faults = Faults()
        self.log = RequestLog(self.clock)
        self.secrets: set[str] = set()  # every credential or secret value any emulator issued or stored
        self.cluster_key = SigningKey("cluster-sa-key")  # signs service-account JWTs (the AKS OIDC issuer)
        self.ib_key = SigningKey("aks-identity-binding")  # the identity binding proxy's issuer (ib.oic.prod-aks)
        self.ca = trustme.CA()
        self.entra = EntraEmulator(self)
        self.arm = ArmEmulator(self)
        self.kv_source = KeyVaultEmulator(self, "keyvault_source")
        self.kv_target = KeyVaultEmulator(self, "keyvault_target")
        self.vault = VaultProxy(self)  # a real OpenBao behind the fault proxy
        self.coder = CoderEmulator(self)
        self.kube = KubeEmulator(self)
        self.ibproxy = IbProxyEmulator(self)  # AKS's identity binding token proxy
        self.control = ControlEmulator(self)

    @property
    def emulators(self) -> list[Emulator]:
        return [
            self.entra,
            self.arm,
            self.kv_source,
            self.kv_target,
            self.vault,
            self.coder,
            self.kube,
            self.ibproxy,
            self.control,
        ]

    def by_service(self, service: str) -> Emulator:
        for emulator in self.emulators:
            if emulator.service == service:
                return emulator
        raise KeyError(service)

    # ---- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> Platform:
        ctx = self.server_tls()
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        for emulator in self.emulators:
            emulator.start(ctx)
        self.reset()
        self._write_files()
        return self

    def server_tls(self) -> ssl.SSLContext:
        """A server context whose certificate (127.0.0.1, localhost) the platform's CA signs: what every emulator
        serves, and what a test's own loopback server (tests/receivers.py) serves so jobs reach it over https."""
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    def stop(self) -> None:
        for emulator in self.emulators:
            emulator.stop()

    def reset(self) -> None:
        """Back to the baseline: state, faults, clock and request log. Env-file values stay valid."""
        self.faults.clear()
        self.clock.reset()
        for emulator in self.emulators:
            with emulator.lock:
                emulator.reset()
        self.log.clear()

    def remember_secret(self, value: str) -> str:
        """Record a value that must never appear in any job's output; tests/conftest.py checks every run.
        Values under 8 characters are not tracked: they would match ordinary words in a report."""
        if len(value) >= 8:
            self.secrets.add(value)
        return value

    def leaked_secrets(self, text: str) -> int:
        """How many remembered secrets occur in `text` (a count, so a failing test never prints one)."""
        return sum(1 for secret in list(self.secrets) if secret in text)

    # ---- service-account tokens (what the kubelet would project into a pod) ---------------------------

    def service_account_jwt(
        self,
        namespace: str,
        name: str,
        audience: str | list[str] = TOKEN_EXCHANGE_AUDIENCE,
        lifetime: timedelta = timedelta(days=365),
        issuer: str | None = None,
    ) -> str:
        now = int(self.clock.timestamp())
        uid = self.kube.service_account_uid(namespace, name) or self.baseline.service_account_uid(namespace, name)
        claims = {
            "aud": audience if isinstance(audience, list) else [audience],
            "exp": now + int(lifetime.total_seconds()),
            "iat": now,
            "nbf": now,
            "iss": issuer or self.baseline.oidc_issuer,
            "sub": f"system:serviceaccount:{namespace}:{name}",
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": name, "uid": uid}},
        }
        return self.remember_secret(self.cluster_key.sign(claims))

    def ib_proxy_env(self) -> dict[str, str]:
        """AZURE_KUBERNETES_TOKEN_PROXY, _SNI_NAME and _CA_FILE, as the webhook injects them into a pod that uses an
        identity binding (not in the env file: they are the workspaces', not the jobs')."""
        return self.ibproxy.env()

    def signing_key_for(self, issuer: str) -> SigningKey:
        """Who signs assertions from `issuer`: the identity binding proxy for the IB issuer, else the cluster."""
        return self.ib_key if issuer.startswith("https://ib.oic.prod-aks.azure.com/") else self.cluster_key

    def service_account_kubeconfig(self, namespace: str, name: str) -> Path:
        """A kubeconfig whose user is the ServiceAccount `namespace/name` (a token for the API server's audience, as
        a pod's in-cluster config holds): its requests meet RBAC (kube/authz.py), not the admin's system:masters.
        The job's own is `service_account_kubeconfig(baseline.jobs_namespace, baseline.jobs_service_account)`."""
        from tests.emulators.kube.authn import API_AUDIENCES

        config = self.kube.kubeconfig(str(self.ca_path))
        config["users"][0]["user"]["token"] = self.service_account_jwt(namespace, name, audience=API_AUDIENCES[0])
        path = self.state_dir / f"kubeconfig-{namespace}-{name}"
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o600)
        return path

    # ---- files and env --------------------------------------------------------------------------------

    @property
    def ca_path(self) -> Path:
        return self.state_dir / "ca.pem"

    def _write_files(self) -> None:
        b = self.baseline
        (self.state_dir / "azure-identity-token").write_text(
            self.service_account_jwt(b.jobs_namespace, b.jobs_service_account)
        )
        (self.state_dir / "vault-sa-token").write_text(
            self.service_account_jwt(b.jobs_namespace, b.mint_service_account, audience="vault")
        )
        (self.state_dir / "coder-bootstrap-token").write_text(self.coder.bootstrap_token)
        (self.state_dir / "coder-auditor-token").write_text(self.coder.auditor_token)
        (self.state_dir / "kubeconfig").write_text(json.dumps(self.kube.kubeconfig(str(self.ca_path)), indent=2))
        for path in self.state_dir.iterdir():
            path.chmod(0o600)

    def env(self) -> dict[str, str]:
        b, d = self.baseline, self.state_dir
        return {
            "AZURE_AUTHORITY_HOST": self.entra.url,
            "AZURE_TENANT_ID": b.tenant_id,
            "AZURE_CLIENT_ID": b.jobs_client_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(d / "azure-identity-token"),
            "REQUESTS_CA_BUNDLE": str(self.ca_path),
            "AZURE_SUBSCRIPTION_ID": b.subscription_id,
            "CWJ_ARM_ENDPOINT": self.arm.url,
            # the emulator is not a known cloud's ARM host: it plays public ARM, so its tokens are for that audience
            "CWJ_ALLOW_CUSTOM_ARM_ENDPOINT": "true",
            "CWJ_ARM_AUDIENCE": "https://management.azure.com/",
            "CWJ_IDENTITY_RESOURCE_GROUP": b.pool_resource_group,
            "CWJ_AKS_CLUSTER_ID": b.cluster_id,  # identity bindings live on this managed cluster (arm/aks.py)
            "AZURE_CLIENT_IDS_JSON": json.dumps(b.pool_client_ids, separators=(",", ":")),
            "CWJ_OIDC_ISSUER": b.oidc_issuer,
            # its discovery document, through the kube emulator: the issuer's host does not resolve
            "CWJ_ISSUER_DISCOVERY_BASE": f"{self.kube.url}/_issuer/",
            "CWJ_STATE_NAMESPACE": b.jobs_namespace,  # where fic-reconcile keeps its relocation record
            "CWJ_SOURCE_VAULT_URL": self.kv_source.url,
            "CWJ_TARGET_VAULT_URL": self.kv_target.url,
            "CWJ_KEYVAULT_VERIFY_CHALLENGE_RESOURCE": "false",
            "VAULT_ADDR": self.vault.url,
            "VAULT_TOKEN": self.vault.root_token,
            "CWJ_VAULT_ROLE": b.vault_role,
            "CWJ_VAULT_JWT_FILE": str(d / "vault-sa-token"),
            "CODER_URL": self.coder.url,
            "CWJ_BOOTSTRAP_TOKEN_FILE": str(d / "coder-bootstrap-token"),
            "CWJ_CODER_TOKEN_FILE": str(d / "coder-auditor-token"),
            "KUBECONFIG": str(d / "kubeconfig"),
            "CWJ_EMULATOR_CONTROL_URL": self.control.url,
        }

    def azure_credential(self) -> Any:
        """The jobs' own Workload Identity credential, for seeding through the Azure SDKs in demos and benches
        (the way a person with the jobs' identity would), trusting the platform's CA explicitly."""
        from azure.identity import WorkloadIdentityCredential

        env = self.env()
        return WorkloadIdentityCredential(
            tenant_id=env["AZURE_TENANT_ID"],
            client_id=env["AZURE_CLIENT_ID"],
            token_file_path=env["AZURE_FEDERATED_TOKEN_FILE"],
            authority=env["AZURE_AUTHORITY_HOST"],
            connection_verify=str(self.ca_path),
        )

    def write_env_file(self, path: Path) -> None:
        """`KEY=VALUE` lines, values shell-quoted where needed, so `set -a; . FILE` works too."""
        lines = [f"{key}={shlex.quote(value)}" for key, value in self.env().items()]
        path.write_text("\n".join(lines) + "\n")
        path.chmod(0o600)


def read_env_file(path: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    for line in Path(path).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key] = shlex.split(value)[0] if value else ""
    return env
