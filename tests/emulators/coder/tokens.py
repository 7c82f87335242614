"""Coder's API tokens: create (lifetime caps, scopes, allow lists), list, get by name or id, delete, expire.

Sources: shared/api-specs/coder/NOTES.md (quoted [NOTES §n]) and coderd source at the commits named there:
- RBAC: coderd/rbac/roles.go @007f4fc1. Only `owner` holds api_key permissions beyond the caller's own keys;
  `auditor`, `template-admin` and `user-admin` may read users but NOT other users' API keys, so their token
  lists silently drop those keys ([NOTES §2] AuthorizeFilter, no 403).
- Scope catalogue: coderd/rbac/scopes_catalog.go externalLowLevel/externalComposite (the `task:*` entries
  are dropped: `task` is not an RBAC resource in the swagger @00bbef6b, and the catalogue filters invalid pairs).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from tests.emulators.coder.decode import DecodeError, decode_body
from tests.emulators.coder.state import NOT_FOUND, CoderBase, Key, User, random_alnum, secret_hash
from tests.emulators.coder.wire import NS, fail, go_bool, go_duration, rfc3339, write
from tests.emulators.core import Request, Response, route

# rbac.IsExternalScope: the legacy aliases, the built-ins, the curated composites and low-level pairs.
EXTERNAL_SCOPES = frozenset(
    """all application_connect coder:all coder:application_connect coder:workspaces.create coder:workspaces.operate
    coder:workspaces.delete coder:workspaces.access coder:templates.build coder:templates.author
    coder:apikeys.manage_self workspace:read workspace:create workspace:update workspace:delete workspace:ssh
    workspace:start workspace:stop workspace:application_connect workspace:* template:read template:create
    template:update template:delete template:use template:* api_key:read api_key:create api_key:update
    api_key:delete api_key:* file:read file:create file:* user:read user:read_personal user:update_personal
    user_secret:read user_secret:create user_secret:update user_secret:delete user_secret:*""".split()  # noqa: SIM905
)
# moby namesgenerator (a sample of its lists); GetRandomName(1) appends one digit.
_LEFT = "admiring adoring affectionate agitated amazing angry awesome blissful bold brave busy".split()  # noqa: SIM905
_RIGHT = "albattani allen almeida archimedes babbage banach bardeen bartik bassi beaver bell".split()  # noqa: SIM905


def random_name() -> str:
    return f"{secrets.choice(_LEFT)}_{secrets.choice(_RIGHT)}{secrets.randbelow(10)}"


TOKEN_FIELDS = {
    "lifetime": ("int64", "time.Duration"),
    "scope": ("string", "codersdk.APIKeyScope"),
    "scopes": ("strings", "codersdk.APIKeyScope"),
    "token_name": ("string", "string"),
    "allow_list": ("allow_list", "[]codersdk.APIAllowListTarget"),
}


class TokenRoutes(CoderBase):
    """The /users/{user}/keys mixin."""

    @staticmethod
    def _may_use_keys_of(caller: User, owner_id: str) -> bool:
        """api_key read/create/update/delete: your own keys, or any key with site `owner` (roles.go)."""
        return caller.id == owner_id or "owner" in caller.roles

    def _cap_ns(self, user: User) -> int:
        """getMaxTokenLifetime: the *target* user's roles pick the cap [NOTES §2, §6.2]."""
        return int(self.settings["max_admin_token_lifetime" if "owner" in user.roles else "max_token_lifetime"])

    def _key_json(self, k: Key) -> dict[str, Any]:
        scope = "application_connect" if "coder:application_connect" in k.scopes else ""
        return {
            "id": k.id,
            "user_id": k.user_id,
            "last_used": rfc3339(k.last_used),
            "expires_at": rfc3339(k.expires_at),
            "created_at": rfc3339(k.created_at),
            "updated_at": rfc3339(k.created_at),
            "login_type": k.login_type,
            "scope": scope or ("all" if "coder:all" in k.scopes else ""),  # legacy field [NOTES §2, §6.13]
            "scopes": list(k.scopes),
            "token_name": k.token_name,
            "lifetime_seconds": k.lifetime_seconds,
            "allow_list": self._allow_list_json(k.allow_list),
        }

    def _allow_list_json(self, entries: list[tuple[str, str]]) -> list[Any]:
        """codersdk/allowlist.go `APIAllowListTarget.MarshalJSON`: the object `{type, id}` on the current line,
        the string `"type:id"` on the release line whose MarshalJSON "encodes as a JSON string" (setting
        `allow_list_form`)."""
        if self.settings["allow_list_form"] == "string":
            return [f"{t}:{i}" for t, i in entries]
        return [{"type": t, "id": i} for t, i in entries]

    def _readable_key(self, req: Request, key_id: str, action: str = "read") -> Key:
        """dbauthz on GetAPIKeyByID / DeleteAPIKeyByID: not authorized reads as 404 (httpapi.Is404Error)."""
        key = self.keys.get(key_id)
        if key is None or not self._may_use_keys_of(self._caller(req), key.user_id):
            raise fail(404, NOT_FOUND)
        if not self._key_permits(req, "api_key", action, key.id):
            raise fail(404, NOT_FOUND)
        return key

    # ---- tokens -------------------------------------------------------------------------------------------

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens", "tokens.list")
    def list_tokens(self, req: Request) -> Response:
        with self.lock:
            caller, target, now = self._caller(req), self._target(req), self.now()
            include_all = go_bool(req.q("include_all"))
            include_expired = go_bool(req.q("include_expired"))
            keys = [
                k
                for k in sorted(self.keys.values(), key=lambda k: (k.created_at, k.id))
                if k.login_type == "token"
                and (include_all or k.user_id == target.id)
                and self._may_use_keys_of(caller, k.user_id)  # unreadable keys vanish, no 403 [NOTES §6.8]
                and self._key_permits(req, "api_key", "read", k.id)  # AuthorizeFilter, scope included
                and (include_expired or k.expires_at > now)
            ]
            items = [{**self._key_json(k), "username": self.users[k.user_id].username} for k in keys]
            return write(200, items or None)  # a Go nil slice encodes as `null` [README 2]

    @route("POST", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens", "tokens.create")
    def create_token(self, req: Request) -> Response:
        with self.lock:
            target = self._target(req)
            try:
                body = decode_body(req.body, "CreateTokenRequest", TOKEN_FIELDS, self.settings["allow_list_form"])
            except DecodeError as exc:
                raise fail(400, "Request body must be valid JSON.", str(exc)) from None
            scopes = _normalise_scopes(body.get("scope") or "", body.get("scopes") or [])
            name = body.get("token_name") or random_name()
            allow = _normalise_allow_list(body.get("allow_list") or [])
            lifetime = int(body.get("lifetime") or 0)
            if lifetime != 0:
                self._validate_lifetime(target, lifetime)
            else:
                lifetime = int(self.settings["default_token_lifetime"])
            if not self._may_use_keys_of(self._caller(req), target.id) or not self._key_permits(
                req, "api_key", "create"
            ):
                raise fail(500, "Failed to create API key.", "insert API key: unauthorized: rbac: forbidden")
            if any(k.user_id == target.id and k.token_name == name for k in self.keys.values()):
                raise fail(  # the name stays taken by expired, unpurged rows [NOTES §6.4]
                    409,
                    f'A token with name "{name}" already exists.',
                    validations=[{"field": "name", "detail": "This value is already in use and should be unique."}],
                )
            key_id, secret, now = random_alnum(10), random_alnum(22), self.now()
            expires = now + timedelta(microseconds=lifetime // 1000)
            self.keys[key_id] = Key(
                key_id, secret_hash(secret), target.id, name, now, expires, lifetime // NS, scopes, allow
            )
            return write(201, {"key": self.platform.remember_secret(f"{key_id}-{secret}")})

    def _validate_lifetime(self, target: User, lifetime_ns: int) -> None:
        if lifetime_ns <= 0:
            raise fail(
                400, "Failed to validate create API key request.", "lifetime must be positive number greater than 0"
            )
        cap = self._cap_ns(target)
        if lifetime_ns > cap:  # `>`: equal to the cap is allowed [NOTES §6.2]
            raise fail(
                400, "Failed to validate create API key request.", f"lifetime must be less than {go_duration(cap)}"
            )

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens/tokenconfig", "tokens.config")
    def token_config(self, req: Request) -> Response:
        with self.lock:
            return write(200, {"max_token_lifetime": self._cap_ns(self._target(req))})

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens/(?P<name>(?!tokenconfig$)[^/]+)", "tokens.get_by_name")
    def token_by_name(self, req: Request) -> Response:
        with self.lock:
            caller, target = self._caller(req), self._target(req)
            key = next(
                (k for k in self.keys.values() if k.user_id == target.id and k.token_name == req.params["name"]), None
            )
            if key is None or not self._may_use_keys_of(caller, key.user_id):
                raise fail(404, NOT_FOUND)
            if not self._key_permits(req, "api_key", "read", key.id):
                raise fail(404, NOT_FOUND)
            return write(200, self._key_json(key))

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/keys/(?P<keyid>(?!tokens$)[^/]+)", "keys.get")
    def key_by_id(self, req: Request) -> Response:
        with self.lock:
            self._target(req)  # the middleware still resolves {user}; the lookup itself ignores it [NOTES §6.5]
            return write(200, self._key_json(self._readable_key(req, req.params["keyid"])))

    @route("DELETE", r"/api/v2/users/(?P<user>[^/]+)/keys/(?P<keyid>(?!tokens$)[^/]+)", "keys.delete")
    def delete_key(self, req: Request) -> Response:
        with self.lock:
            self._target(req)
            del self.keys[self._readable_key(req, req.params["keyid"], "delete").id]
            return Response(204)

    @route("PUT", r"/api/v2/users/(?P<user>[^/]+)/keys/(?P<keyid>[^/]+)/expire", "keys.expire")
    def expire_key(self, req: Request) -> Response:
        with self.lock:
            self._target(req)
            self._readable_key(req, req.params["keyid"], "update").expires_at = self.now()  # row kept for audit
            return Response(204)


def _normalise_scopes(scope: str, scopes: list[str]) -> list[str]:
    """normalizeTokenScopes + canonical names, de-duplicated [NOTES §1 key format, §3]."""
    requested = scopes or ([scope] if scope else ["coder:all"])
    out: list[str] = []
    for name in requested:
        if name not in EXTERNAL_SCOPES:
            raise fail(400, "Failed to create API key.", f'invalid or unsupported API key scope: "{name}"')
        canonical = {"all": "coder:all", "application_connect": "coder:application_connect"}.get(name, name)
        if canonical not in out:
            out.append(canonical)
    return out


def _normalise_allow_list(entries: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Empty means everything; `*:*` absorbs the rest; `type:*` absorbs that type's ids [NOTES §3]."""
    if not entries or ("*", "*") in entries:
        return [("*", "*")]
    out = [e for i, e in enumerate(entries) if e not in entries[:i]]
    return [(t, i) for t, i in out if i == "*" or (t, "*") not in out]
