"""Vault's token store: the Token record, looking up the caller's token, and the self-service endpoints
(lookup-self, renew-self, revoke-self) plus child-token creation.

Sources: shared/api-specs/vault/NOTES.md §1.2 (TTLs), §3 (tokens, the auth block). One correction to
NOTES §3.3: HashiCorp Vault >= 1.16 answers a missing/expired/revoked token with two errors, "permission
denied" and "invalid token" (docs tokens.mdx "Error Responses", PR hashicorp/vault#26687, Vault's test
TestCore_HandleRequest_TokenErrInvalidToken); the bare form NOTES quotes is OpenBao's source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.vault.wire import (
    VaultDialect,
    as_list,
    go_multierror,
    locked,
    parse_duration,
    random_token,
    rfc3339,
)

SYSTEM_DEFAULT_TTL = 768 * 3600  # 768h: the system default/max lease TTL (NOTES §1.2)


def sanitize_policies(names: list[str], add_default: bool) -> list[str]:
    """policyutil.SanitizePolicies: lower-case, de-duplicated, sorted; `root` swallows the rest."""
    out = {n.strip().lower() for n in names if n.strip()}
    if "root" in out:
        return ["root"]
    if add_default:
        out.add("default")
    return sorted(out)


@dataclass
class Token:
    id: str
    policies: list[str]
    display_name: str
    path: str
    created: float
    ttl: int  # creation TTL in seconds; 0 = never expires (root)
    max_expires: float | None
    meta: dict[str, str] | None = None
    renewable: bool = True
    orphan: bool = True
    entity_id: str = ""
    accessor: str = field(default_factory=lambda: random_token(""))
    expires: float | None = None
    last_renewal: float | None = None

    def __post_init__(self) -> None:
        if self.ttl and self.expires is None:
            self.expires = self.created + self.ttl


class TokenStore(VaultDialect):
    """The token mixin: `tokens` is keyed by the token value (re-seeded by VaultEmulator.reset)."""

    tokens: dict[str, Token]

    def _bearer(self, req: Request) -> str:
        token = req.headers.get("X-Vault-Token") or ""
        auth = req.headers.get("Authorization") or ""
        return token or (auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else "")

    def caller(self, req: Request) -> Token:
        """The request's live token, or the 403 Vault gives a missing / unknown / expired / revoked one."""
        presented = self._bearer(req)
        if not presented:
            raise HttpError(403, {"errors": [go_multierror("permission denied")]})
        token = self.tokens.get(presented)
        if token and token.expires is not None and self.platform.clock.timestamp() >= token.expires:
            del self.tokens[presented]
            token = None
        if token is None:
            raise HttpError(403, {"errors": [go_multierror("permission denied", "invalid token")]})
        return token

    def _auth_block(self, token: Token) -> dict[str, Any]:
        remaining = 0 if token.expires is None else max(0, round(token.expires - self.platform.clock.timestamp()))
        return {
            "client_token": token.id,
            "accessor": token.accessor,
            "policies": token.policies,
            "token_policies": token.policies,
            "metadata": token.meta,
            "lease_duration": remaining,
            "renewable": token.renewable,
            "entity_id": token.entity_id,
            "token_type": "service",
            "orphan": token.orphan,
            "mfa_requirement": None,
            "num_uses": 0,
        }

    # ---- token store ----------------------------------------------------------------------------------

    @route("GET", r"/v1/auth/token/lookup-self", "token.lookup-self")
    @locked
    def lookup_self(self, req: Request) -> Response:
        token, now = self.caller(req), self.platform.clock.timestamp()
        data = {
            "accessor": token.accessor,
            "creation_time": int(token.created),
            "creation_ttl": token.ttl,
            "display_name": token.display_name,
            "entity_id": token.entity_id,
            "expire_time": None if token.expires is None else rfc3339(token.expires),
            "explicit_max_ttl": 0,
            "id": token.id,
            "issue_time": rfc3339(token.created),
            "meta": token.meta,
            "num_uses": 0,
            "orphan": token.orphan,
            "path": token.path,
            "policies": token.policies,
            "renewable": token.renewable,
            "ttl": 0 if token.expires is None else max(0, int(token.expires - now)),
            "type": "service",
        }
        if token.last_renewal is not None:
            data["last_renewal"] = rfc3339(token.last_renewal)
            data["last_renewal_time"] = int(token.last_renewal)
        return self._ok(data, mount_type="token")

    @route("POST", r"/v1/auth/token/revoke-self", "token.revoke-self")
    @route("PUT", r"/v1/auth/token/revoke-self", "token.revoke-self")
    @locked
    def revoke_self(self, req: Request) -> Response:
        self.tokens.pop(self.caller(req).id, None)
        return self._no_content()

    @route("POST", r"/v1/auth/token/renew-self", "token.renew-self")
    @route("PUT", r"/v1/auth/token/renew-self", "token.renew-self")
    @locked
    def renew_self(self, req: Request) -> Response:
        token, now = self.caller(req), self.platform.clock.timestamp()
        if not token.renewable or token.expires is None:
            raise self._bad("lease is not renewable")
        increment = self._body(req).get("increment")
        try:
            wanted = parse_duration(increment) if increment not in (None, "", 0) else token.ttl
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        cap = token.max_expires - now if token.max_expires is not None else wanted
        token.expires, token.last_renewal = now + max(0, min(wanted, cap)), now
        return self._ok(None, auth=self._auth_block(token), mount_type="token")

    @route("POST", r"/v1/auth/token/create", "token.create")
    @route("PUT", r"/v1/auth/token/create", "token.create")
    @locked
    def token_create(self, req: Request) -> Response:
        """A child token (for tests and an SRE's scoped VAULT_TOKEN): policies, ttl, meta, no_default_policy."""
        parent, body, now = self.caller(req), self._body(req), self.platform.clock.timestamp()
        wanted = as_list(body.get("policies")) or [p for p in parent.policies if p != "default"]
        policies = sanitize_policies(wanted, not body.get("no_default_policy"))
        if "root" not in parent.policies and not set(policies) - {"default"} <= set(parent.policies):
            raise self._bad("child policies must be subset of parent")
        try:
            ttl = 0 if policies == ["root"] else parse_duration(body.get("ttl") or SYSTEM_DEFAULT_TTL)
        except ValueError as exc:
            raise self._bad(str(exc)) from None
        name = str(body.get("display_name") or "")
        token = Token(
            self.platform.remember_secret(random_token()),
            policies,
            f"token-{name}" if name else "token",
            "auth/token/create",
            now,
            ttl,
            now + SYSTEM_DEFAULT_TTL if ttl else None,
            meta={str(k): str(v) for k, v in (body.get("meta") or {}).items()} or None,
            renewable=bool(body.get("renewable", True)) and ttl > 0,
            orphan=False,
        )
        self.tokens[token.id] = token
        return self._ok(None, auth=self._auth_block(token), mount_type="token")
