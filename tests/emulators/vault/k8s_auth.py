"""Vault's Kubernetes auth method: roles (path_role.go) and login (path_login.go), issuing service tokens.

Sources: shared/api-specs/vault/NOTES.md §1 (login, roles, the error texts §1.3) and the source it cites:
vault-plugin-auth-kubernetes path_login.go/path_role.go, hashicorp/cap jwt.go (login error texts).
"""

from __future__ import annotations

import uuid
from typing import Any

import jwt

from tests.emulators.core import HttpError, Request, Response, route
from tests.emulators.vault.tokens import SYSTEM_DEFAULT_TTL, Token, TokenStore, sanitize_policies
from tests.emulators.vault.wire import as_list, go_quote, locked, parse_duration, random_token

ALLOWED_JWT_ALGS = {"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"}
JWT_LEEWAY = 60  # go-jose jwt.DefaultLeeway, used by cap/jwt for exp/nbf/iat
NO_AUDIENCE_WARNING = (
    "This role does not specify an audience. In a future version of Vault, specifying an audience will be required."
)


def glob_match(pattern: str, value: str) -> bool:
    """strutil.GlobbedStringsMatch: `*` as a leading and/or trailing wildcard."""
    if pattern == "*":
        return True
    if len(pattern) > 1 and pattern.startswith("*") and pattern.endswith("*"):
        return pattern[1:-1] in value
    if pattern.startswith("*"):
        return value.endswith(pattern[1:])
    if pattern.endswith("*"):
        return value.startswith(pattern[:-1])
    return pattern == value


class KubernetesAuth(TokenStore):
    """The auth/kubernetes mixin: `roles` is keyed by the lower-cased role name."""

    roles: dict[str, dict[str, Any]]

    def _store_role(self, name: str, fields: dict[str, Any], existing: dict[str, Any] | None = None) -> list[str]:
        """path_role.go pathRoleCreateUpdate: validation texts and the missing-audience warning."""
        role = dict(existing or {"audience": "", "token_policies": [], "token_ttl": 0, "token_max_ttl": 0})
        aliases = {"policies": "token_policies", "ttl": "token_ttl", "max_ttl": "token_max_ttl"}
        for name_given, value in fields.items():
            key = aliases.get(name_given, name_given)
            if name_given in aliases and key in fields:
                continue  # the token_* name wins over its deprecated alias
            if key in ("bound_service_account_names", "bound_service_account_namespaces", "token_policies"):
                role[key] = as_list(value)
            elif key in ("token_ttl", "token_max_ttl", "token_period"):
                try:
                    role[key] = parse_duration(value)
                except ValueError as exc:
                    raise self._bad(f"error converting input {value} for field {go_quote(key)}: {exc}") from None
            elif key in ("audience", "alias_name_source", "token_type", "token_no_default_policy"):
                role[key] = value
        if role.get("token_max_ttl") and role["token_ttl"] > role["token_max_ttl"]:
            raise self._bad("token ttl should not be greater than token max ttl")
        names, namespaces = role.get("bound_service_account_names") or [], role.get("bound_service_account_namespaces")
        if not names:
            raise self._bad(f"{go_quote('bound_service_account_names')} can not be empty")
        if not namespaces:
            raise self._bad(
                f"{go_quote('bound_service_account_namespaces')} can not be empty if "
                f"{go_quote('bound_service_account_namespace_selector')} is not set"
            )
        if (len(names) > 1 and "*" in names) or (len(namespaces) > 1 and "*" in namespaces):
            raise self._bad('can not mix "*" with values')
        self.roles[name.lower()] = role
        if not str(role.get("audience") or "").strip():
            return [NO_AUDIENCE_WARNING]
        return []

    @route("POST", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.write")
    @route("PUT", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.write")
    @locked
    def role_write(self, req: Request) -> Response:
        name = req.params["name"]
        warnings = self._store_role(name, self._body(req), self.roles.get(name.lower()))
        return self._ok(None, warnings=warnings, mount_type="kubernetes") if warnings else self._no_content()

    @route("GET", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.read")
    @locked
    def role_read(self, req: Request) -> Response:
        role = self.roles.get(req.params["name"].lower())
        if role is None:
            return self._missing()
        data = {
            "bound_service_account_names": role["bound_service_account_names"],
            "bound_service_account_namespaces": role["bound_service_account_namespaces"],
            "bound_service_account_namespace_selector": "",
            "audience": role.get("audience") or "",
            "alias_name_source": role.get("alias_name_source") or "serviceaccount_uid",
            "token_policies": role["token_policies"],
            "token_ttl": role["token_ttl"],
            "token_max_ttl": role["token_max_ttl"],
            "token_period": role.get("token_period", 0),
            "token_type": role.get("token_type") or "default",
            "token_no_default_policy": bool(role.get("token_no_default_policy")),
            "token_bound_cidrs": [],
            "token_explicit_max_ttl": 0,
            "token_num_uses": 0,
        }
        return self._ok(data, mount_type="kubernetes")

    @route("DELETE", r"/v1/auth/kubernetes/role/(?P<name>[^/]+)", "k8s.role.delete")
    @locked
    def role_delete(self, req: Request) -> Response:
        self.roles.pop(req.params["name"].lower(), None)
        return self._no_content()

    @route("LIST", r"/v1/auth/kubernetes/role/?", "k8s.role.list")
    @locked
    def role_list(self, req: Request) -> Response:
        return self._ok({"keys": sorted(self.roles)}, mount_type="kubernetes") if self.roles else self._missing()

    @route("POST", r"/v1/auth/kubernetes/login", "k8s.login")
    @route("PUT", r"/v1/auth/kubernetes/login", "k8s.login")
    @locked
    def login(self, req: Request) -> Response:
        """path_login.go, in its order; a rejected login is a bare (unwrapped) message (NOTES §1.3)."""
        body = self._body(req)
        role_name, token = str(body.get("role") or ""), str(body.get("jwt") or "")
        if not role_name:
            raise self._bad("missing role")
        if not token:
            raise self._bad("missing jwt")
        role = self.roles.get(role_name.lower())
        if role is None:
            raise self._bad(f"invalid role name {go_quote(role_name)}")
        claims = self._validated_claims(token, role)
        sa_name, sa_ns, sa_uid = _service_account(claims)
        names = role["bound_service_account_names"]
        if not (len(names) == 1 and names[0] == "*") and not any(glob_match(n, sa_name) for n in names):
            raise HttpError(403, {"errors": ["service account name not authorized"]})
        namespaces = role["bound_service_account_namespaces"]
        if not (namespaces[0] == "*" or any(glob_match(n, sa_ns) for n in namespaces)):
            raise HttpError(403, {"errors": ["namespace not authorized"]})
        try:  # the TokenReview: the cluster signed it, and it has not expired
            self.platform.cluster_key.verify(token, None, self.platform.clock.timestamp())
        except jwt.InvalidTokenError:
            raise HttpError(403, {"errors": ["permission denied"]}) from None
        issued = self._issue_login_token(role_name, role, sa_name, sa_ns, sa_uid)
        return self._ok(None, auth=self._auth_block(issued), mount_type="kubernetes")

    def _validated_claims(self, token: str, role: dict[str, Any]) -> dict[str, Any]:
        """hashicorp/cap jwt.validateAll without a key set: parse, alg, audience, time claims with leeway."""
        try:
            header = jwt.get_unverified_header(token)
            claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise HttpError(403, {"errors": ["permission denied"]}) from None  # "error verifying token signature"
        if header.get("alg") not in ALLOWED_JWT_ALGS:
            raise HttpError(403, {"errors": ["permission denied"]})  # go-jose refuses HS256/none while parsing
        audience = str(role.get("audience") or "").strip()
        aud = claims.get("aud")
        if audience and audience not in (aud if isinstance(aud, list) else [aud]):
            message = "invalid audience (aud) claim: audience claim does not match any expected audience"
            raise HttpError(403, {"errors": [message]})
        self._check_times(claims)
        return claims

    def _check_times(self, claims: dict[str, Any]) -> None:
        now = self.platform.clock.timestamp()
        iat, exp, nbf = (int(claims.get(k) or 0) for k in ("iat", "exp", "nbf"))
        if not (iat or exp or nbf):
            return
        exp = exp or max(iat, nbf) + 150
        nbf = nbf or (iat or exp - 150)
        if now + JWT_LEEWAY < nbf:
            raise HttpError(403, {"errors": ["invalid not before (nbf) claim: token not yet valid"]})
        if now - JWT_LEEWAY > exp:
            raise HttpError(403, {"errors": ["invalid expiration time (exp) claim: token is expired"]})
        if iat and now + JWT_LEEWAY < iat:
            raise HttpError(403, {"errors": ["invalid issued at (iat) claim: token issued in the future"]})

    def _issue_login_token(self, role_name: str, role: dict[str, Any], name: str, ns: str, uid: str) -> Token:
        now = self.platform.clock.timestamp()
        ttl = role.get("token_period") or role["token_ttl"] or SYSTEM_DEFAULT_TTL
        max_ttl = role["token_max_ttl"] or SYSTEM_DEFAULT_TTL
        token = Token(
            self.platform.remember_secret(random_token()),
            sanitize_policies(role["token_policies"], not role.get("token_no_default_policy")),
            f"kubernetes-{ns}-{name}",
            "auth/kubernetes/login",
            now,
            min(ttl, max_ttl),
            now + max_ttl,
            meta={
                "role": role_name,
                "service_account_name": name,
                "service_account_namespace": ns,
                "service_account_secret_name": "",
                "service_account_uid": uid,
            },
            entity_id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"vault-entity/{uid}")),
        )
        self.tokens[token.id] = token
        return token


def _service_account(claims: dict[str, Any]) -> tuple[str, str, str]:
    """Projected-token claims (`kubernetes.io`), falling back to the legacy flat claims (path_login.go)."""
    nested = claims.get("kubernetes.io")
    if isinstance(nested, dict):
        sa = nested.get("serviceaccount") or {}
        return str(sa.get("name") or ""), str(nested.get("namespace") or ""), str(sa.get("uid") or "")
    prefix = "kubernetes.io/serviceaccount/"
    return (
        str(claims.get(prefix + "service-account.name") or ""),
        str(claims.get(prefix + "namespace") or ""),
        str(claims.get(prefix + "service-account.uid") or ""),
    )
