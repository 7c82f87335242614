"""HashiCorp Vault: Kubernetes auth, tokens, ACL policies (an HCL subset) and KV v2 at `secret/`, enough for
unmodified hvac 2.4.0 and for coder-token-mint.

Sources: shared/api-specs/vault/NOTES.md (§0 transport, §1 login, §2 KV v2, §3 tokens, §6 checklist) and the
source it cites: vault-plugin-auth-kubernetes path_login.go/path_role.go, hashicorp/cap jwt.go (login error
texts), vault-plugin-secrets-kv path_data.go/path_metadata.go, vault request_handling.go. One correction to
NOTES §3.3 (the invalid-token 403 of Vault >= 1.16) is explained in tokens.py.
Not modelled (answer 404/405): other mounts, sys/mounts, response wrapping, PATCH, subkeys, identity, namespaces.
Layout: wire.py (Go formats, the envelope), policy.py (HCL policies, the ACL), tokens.py
(token store), k8s_auth.py (Kubernetes auth), kv.py (KV v2); this module is the emulator itself:
transport rules, authentication and the ACL check, the sys/policy endpoints, and the baseline.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from urllib.parse import unquote

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.vault.k8s_auth import (
    ALLOWED_JWT_ALGS,
    JWT_LEEWAY,
    NO_AUDIENCE_WARNING,
    KubernetesAuth,
    glob_match,
)
from tests.emulators.vault.kv import KV_WARNING, KvEngine, KvKey, KvVersion
from tests.emulators.vault.policy import (
    CAPABILITIES,
    DEFAULT_POLICY,
    LEGACY_POLICY,
    PATH_KEYS,
    WRITER_POLICY,
    Acl,
    PolicyError,
    parse_policy,
)
from tests.emulators.vault.tokens import SYSTEM_DEFAULT_TTL, Token, sanitize_policies
from tests.emulators.vault.wire import (
    as_list,
    go_duration,
    go_multierror,
    go_quote,
    locked,
    parse_duration,
    random_token,
    rfc3339,
)

__all__ = [  # the names this module offered before the split, still importable from here
    "ALLOWED_JWT_ALGS",
    "CAPABILITIES",
    "DEFAULT_POLICY",
    "JWT_LEEWAY",
    "KV_WARNING",
    "LEGACY_POLICY",
    "NO_AUDIENCE_WARNING",
    "PATH_KEYS",
    "SYSTEM_DEFAULT_TTL",
    "UNAUTHENTICATED_OPS",
    "WRITER_POLICY",
    "WRITE_METHODS",
    "Acl",
    "KvKey",
    "KvVersion",
    "PolicyError",
    "Token",
    "VaultEmulator",
    "as_list",
    "glob_match",
    "go_duration",
    "go_multierror",
    "go_quote",
    "parse_duration",
    "parse_policy",
    "random_token",
    "rfc3339",
    "sanitize_policies",
]

WRITE_METHODS = {"POST", "PUT", "PATCH"}
UNAUTHENTICATED_OPS = {"k8s.login"}


class VaultEmulator(KvEngine, KubernetesAuth):
    service = "vault"
    kv_mount = "secret"

    def reset(self) -> None:
        now = self.platform.clock.timestamp()
        if "root_token" not in self.__dict__:
            self.root_token = self.platform.remember_secret(
                random_token()
            )  # the env file names it: stable across resets
        root = Token(self.root_token, ["root"], "root", "auth/token/root", now, 0, None, renewable=False)
        self.tokens = {self.root_token: root}
        self.policies: dict[str, str] = {"default": DEFAULT_POLICY, "coder-token-writer": WRITER_POLICY}
        self.kv = {}
        self.kv_config = {"max_versions": 0, "cas_required": False, "delete_version_after": 0}
        # X-Vault-Request / X-Vault-Namespace of recent requests: recorded, never required (NOTES §0)
        self.headers_seen: deque[dict[str, str | None]] = deque(maxlen=1000)
        b = self.platform.baseline
        self.roles = {}
        self._store_role(
            b.vault_role,
            {
                "bound_service_account_names": [b.mint_service_account],
                "bound_service_account_namespaces": [b.jobs_namespace],
                "audience": "vault",  # NOTES §1.3: optional, but set; the env file's JWT carries aud "vault"
                "token_policies": [b.vault_role],
                "token_ttl": 900,
            },
        )

    # ---- transport rules and authentication -----------------------------------------------------------

    def dispatch(self, req: Request) -> Response:
        if req.method == "GET" and req.q("list") == "true":
            req.method = "LIST"  # NOTES §0: `?list=true` is the LIST operation
        self.headers_seen.append(
            {
                "X-Vault-Request": req.headers.get("X-Vault-Request"),
                "X-Vault-Namespace": req.headers.get("X-Vault-Namespace"),
            }
        )
        if req.method in WRITE_METHODS and req.path.endswith("/"):
            # request_handling.go: checked before the token and before routing
            return self.error(400, "BadRequest", "cannot write to a path ending in '/'")
        return super().dispatch(req)

    def authenticate(self, req: Request) -> None:
        if req.op in UNAUTHENTICATED_OPS:
            return
        with self.lock:
            self._authorize(req, self._capability(req))

    def not_found(self, req: Request) -> Response:
        if not req.path.startswith("/v1/"):
            return Response(404, {"errors": []})
        logical = self._logical_path(req)
        try:
            with self.lock:
                self._authorize(req, self._capability(req))  # the ACL runs before routing (NOTES §3.3)
        except HttpError as exc:
            return exc.response
        mounts = (f"{self.kv_mount}/", "auth/kubernetes/", "auth/token/", "sys/")
        if logical.startswith(mounts):
            return self.error(404, "NotFound", go_multierror("unsupported path"))
        return self.error(404, "NotFound", f"no handler for route {go_quote(logical)}. route entry not found.")

    def method_not_allowed(self, req: Request) -> Response:
        try:
            with self.lock:
                self._authorize(req, self._capability(req))
        except HttpError as exc:
            return exc.response
        return self.error(405, "MethodNotAllowed", go_multierror("unsupported operation"))

    # ---- the ACL --------------------------------------------------------------------------------------

    def _logical_path(self, req: Request) -> str:
        path = unquote(req.path).removeprefix("/v1/")
        return path + "/" if req.method == "LIST" and not path.endswith("/") else path

    def _authorize(self, req: Request, capability: str) -> Token:
        token = self.caller(req)
        if "root" in token.policies:
            return token
        texts = [self.policies[p] for p in token.policies if p in self.policies]
        if not Acl.of(texts).allows(self._logical_path(req), capability):
            raise HttpError(403, {"errors": [go_multierror("permission denied")]})
        return token

    def _capability(self, req: Request) -> str:
        """The capability an operation needs; for writes an existence check decides create vs update."""
        if req.method not in ("POST", "PUT"):
            return {"GET": "read", "LIST": "list", "DELETE": "delete", "PATCH": "patch"}.get(req.method, "update")
        exists: dict[str, Callable[[], bool]] = {
            "kv.write": lambda: req.params.get("path", "") in self.kv,
            "kv.metadata.write": lambda: req.params.get("path", "") in self.kv,
            "k8s.role.write": lambda: req.params.get("name", "").lower() in self.roles,
        }
        check = exists.get(req.op)
        return "update" if check is None or check() else "create"

    # ---- ACL policies ---------------------------------------------------------------------------------

    @route("PUT", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.write")
    @route("POST", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.write")
    @route("PUT", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.write")
    @route("POST", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.write")
    @locked
    def policy_write(self, req: Request) -> Response:
        name, body = req.params["name"].strip().lower(), self._body(req)
        text = str(body.get("policy") or body.get("rules") or "")
        if name == "root":
            raise self._bad('cannot update "root" policy')
        if not text.strip():
            raise self._bad("'policy' parameter not supplied or empty")
        try:
            parse_policy(text)
        except PolicyError as exc:
            raise self._bad(str(exc)) from None
        self.policies[name] = text
        return self._no_content()

    @route("GET", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.read")
    @route("GET", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.read")
    @locked
    def policy_read(self, req: Request) -> Response:
        name = req.params["name"].strip().lower()
        text = "" if name == "root" else self.policies.get(name)
        if text is None:
            return self._missing()
        if "/sys/policy/" in req.path:  # the legacy endpoint also repeats the fields at the top level
            return self._ok({"name": name, "rules": text}, mount_type="system", extra={"name": name, "rules": text})
        return self._ok({"name": name, "policy": text}, mount_type="system")

    @route("DELETE", r"/v1/sys/policies/acl/(?P<name>[^/]+)", "policy.delete")
    @route("DELETE", r"/v1/sys/policy/(?P<name>[^/]+)", "policy.delete")
    @locked
    def policy_delete(self, req: Request) -> Response:
        name = req.params["name"].strip().lower()
        if name in ("default", "root"):
            raise self._bad(f"cannot delete {go_quote(name)} policy")
        self.policies.pop(name, None)
        return self._no_content()

    @route("LIST", r"/v1/sys/policies/acl/?", "policy.list")
    @route("GET", r"/v1/sys/policy", "policy.list")
    @locked
    def policy_list(self, req: Request) -> Response:
        keys = sorted({*self.policies, "root"})
        if req.method == "GET":
            return self._ok(
                {"keys": keys, "policies": keys}, mount_type="system", extra={"keys": keys, "policies": keys}
            )
        return self._ok({"keys": keys}, mount_type="system")
