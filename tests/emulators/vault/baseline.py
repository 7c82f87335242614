"""What the platform's OpenBao holds after every reset, loaded through OpenBao's own API as an operator would:

- KV v2 at `secret/`, empty (re-mounted, so its config and every key are gone);
- the `kubernetes` auth method, configured against the kube emulator (`kubernetes_host`, the platform CA as
  `kubernetes_ca_cert`, and a `token_reviewer_jwt` of a ServiceAccount bound to system:auth-delegator, so
  every login is checked by the kube emulator's TokenReview), with the role `coder-token-writer` bound to the
  mint job's ServiceAccount in the jobs' namespace, audience `vault` (NOTES §5);
- the ACL policy `coder-token-writer` (the README's text) and OpenBao's own `default` policy as it started.
Any other mount, auth method or policy a test added is removed. Re-mounting `auth/kubernetes` revokes the
tokens it issued; the root token and the env file's JWT stay valid.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.emulators.kube.authn import API_AUDIENCES

if TYPE_CHECKING:
    from tests.emulators.platform import Platform
    from tests.emulators.vault.openbao import OpenBao

WRITER_POLICY = """# coder-token-writer: used only by the coder-token-mint CronJob
path "secret/data/coder-cli-session-token" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/coder-cli-session-token" {
  capabilities = ["read"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/revoke-self" {
  capabilities = ["update"]
}
"""
KV_MOUNT = "secret"
K8S_MOUNT = "kubernetes"


class VaultBaseline:
    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.seeded = False
        self.startup_mounts: set[str] = set()
        self.startup_auth: set[str] = set()
        self.default_policy = ""
        self.reviewer_jwt = ""

    def role(self) -> dict[str, Any]:
        b = self.platform.baseline
        return {
            "bound_service_account_names": [b.mint_service_account],
            "bound_service_account_namespaces": [b.jobs_namespace],
            "audience": "vault",
            "token_policies": [b.vault_role],
            "token_ttl": 900,
        }

    def _first_seed(self, bao: OpenBao) -> None:
        self.startup_mounts = set(bao.call("GET", "sys/mounts")["data"]) - {f"{KV_MOUNT}/"}
        self.startup_auth = set(bao.call("GET", "sys/auth")["data"])
        self.default_policy = bao.call("GET", "sys/policies/acl/default")["data"]["policy"]
        b = self.platform.baseline
        self.reviewer_jwt = self.platform.service_account_jwt(
            b.reviewer_namespace, b.reviewer_service_account, API_AUDIENCES, timedelta(days=365)
        )
        self.seeded = True

    def restore(self, bao: OpenBao) -> None:
        if not self.seeded:
            self._first_seed(bao)
        for path in set(bao.call("GET", "sys/mounts")["data"]) - self.startup_mounts:
            bao.call("DELETE", f"sys/mounts/{path}")
        bao.call("POST", f"sys/mounts/{KV_MOUNT}", {"type": "kv", "options": {"version": "2"}})
        for path in set(bao.call("GET", "sys/auth")["data"]) - self.startup_auth:
            bao.call("DELETE", f"sys/auth/{path}")
        bao.call("POST", f"sys/auth/{K8S_MOUNT}", {"type": "kubernetes"})
        bao.call(
            "POST",
            f"auth/{K8S_MOUNT}/config",
            {
                "kubernetes_host": self.platform.kube.url,
                "kubernetes_ca_cert": self.platform.ca_path.read_text(),
                "token_reviewer_jwt": self.reviewer_jwt,
                "disable_local_ca_jwt": True,  # not in a pod: no mounted ServiceAccount files to fall back on
            },
        )
        bao.call("POST", f"auth/{K8S_MOUNT}/role/{self.platform.baseline.vault_role}", self.role())
        for name in bao.call("LIST", "sys/policies/acl")["data"]["keys"]:
            if name not in ("default", "root"):
                bao.call("DELETE", f"sys/policies/acl/{name}")
        bao.call("PUT", "sys/policies/acl/default", {"policy": self.default_policy})
        bao.call("PUT", f"sys/policies/acl/{self.platform.baseline.vault_role}", {"policy": WRITER_POLICY})
