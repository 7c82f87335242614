"""Coder /api/v2: session-token auth, users and site roles, API tokens, as a 2026 server answers them.

Sources (quoted as [NOTES §n] = shared/api-specs/coder/NOTES.md; [README] = its README): coderd source read at
the commits named there, and, for facts NOTES leaves open:
- RBAC: coderd/rbac/roles.go @007f4fc1. Only `owner` holds api_key permissions beyond the caller's own keys;
  `auditor`, `template-admin` and `user-admin` may read users but NOT other users' API keys, so their token
  lists silently drop those keys ([NOTES §2] AuthorizeFilter, no 403). `GET /users/{u}/roles` needs
  user:read_personal (self, owner, user-admin) else 404 (coderd/users.go userRoles).
- `{user}` unknown or unreadable: 400 `"user" must be an existing uuid or username.` + `queried user="x"`
  (coderd/httpmw/userparam.go ExtractUserContext). A member cannot read other users.
- Scope catalogue: coderd/rbac/scopes_catalog.go externalLowLevel/externalComposite (the `task:*` entries
  are dropped: `task` is not an RBAC resource in the swagger @00bbef6b, and the catalogue filters invalid pairs).
- Allow-list parsing: codersdk/allowlist.go @1fe2126b (errors surface while decoding the body).
- Unknown route: 404 `Route not found.` (httpapi.RouteNotFound).
Scopes and allow lists bound every authorization, on top of the roles (rbac.py, with its sources): e.g.
`GET /users/{u}` needs user:read on that user (coder PR #23348 added the `user:read` scope so that scoped
tokens can read users; a token without it gets the 404 below), token routes need api_key:<action>.
`GET /deployment/ssh` needs authentication only. Not modelled: session keys (`POST /users/{user}/keys`),
PATCH of tokens (unmerged upstream), organizations endpoints, custom roles.

Settings (`configure`, reset restores), a stock server's by default: `max_token_lifetime` (876600h),
`max_admin_token_lifetime` (168h), `default_token_lifetime` (168h), `api_key_retention` (7d; 0 = never purge)
— each in SECONDS (int/float) or a Go duration string ("2160h"); `sliding_refresh` (null: as `version` does,
see `sliding_by_version`: v2.34.0 slides API tokens; true/false to force); `version` (v2.34.0);
`api_rate_limit` (512 per minute, <= 0 off), `rate_limit_key` ("user+path", Coder's; "user"),
`rate_limit_time_scale` (1.0; ratelimit.py); `allow_list_form` ("object":
`{"type","id"}` entries as the current codersdk/allowlist.go marshals them; "string": `"type:id"`, the release
line whose `APIAllowListTarget.MarshalJSON` "encodes as a JSON string" and whose UnmarshalJSON takes only a
string). `configure` returns seconds.

Seed on every reset (token values fixed for the platform's life): `admin` (site owner) with token `bootstrap`
= `bootstrap_token`, and `auditor` (site auditor) with token `auditor` = `auditor_token`; both 365 days long,
over the owner cap on purpose (the cap binds at mint time only, like a token minted before the cap changed).
Layout: wire.py (Go formats, httpapi.Write and errors), decode.py (request bodies), state.py
(records, caller and `{user}` lookup), users.py and tokens.py (the route mixins); this module is
the emulator: settings, seed, session-token authentication, buildinfo and the scope catalogue.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from tests.emulators.coder.decode import RBAC_RESOURCES, DecodeError, decode_body
from tests.emulators.coder.ratelimit import SlidingWindow, go_minutes
from tests.emulators.coder.state import (
    EPOCH,
    FORBIDDEN_DETAIL,
    GO_ZERO,
    NOT_FOUND,
    SITE_ROLES,
    USER_PARAM_ERROR,
    USER_READERS,
    Key,
    User,
    random_alnum,
    secret_hash,
)
from tests.emulators.coder.tokens import EXTERNAL_SCOPES, TOKEN_FIELDS, TokenRoutes, random_name
from tests.emulators.coder.users import USER_FIELDS, UserRoutes
from tests.emulators.coder.wire import (
    NS,
    fail,
    go_duration,
    go_json,
    go_time_string,
    parse_duration_setting,
    rfc3339,
    write,
)
from tests.emulators.core import HttpError, Request, Response, route

__all__ = [  # the names this module offered before the split, still importable from here
    "DEFAULTS",
    "EPOCH",
    "EXTERNAL_SCOPES",
    "FORBIDDEN_DETAIL",
    "GO_ZERO",
    "HOUR",
    "NOT_FOUND",
    "NS",
    "RBAC_RESOURCES",
    "SEED_LIFETIME",
    "SIGNED_OUT",
    "SITE_ROLES",
    "TOKEN_FIELDS",
    "USER_FIELDS",
    "USER_PARAM_ERROR",
    "USER_READERS",
    "CoderEmulator",
    "DecodeError",
    "Key",
    "User",
    "decode_body",
    "fail",
    "go_duration",
    "go_json",
    "go_time_string",
    "parse_duration_setting",
    "random_name",
    "rfc3339",
    "write",
]

SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
HOUR = timedelta(hours=1)
DEFAULTS: dict[str, Any] = {
    "max_token_lifetime": 876600 * 3600 * NS,
    "max_admin_token_lifetime": 168 * 3600 * NS,
    "default_token_lifetime": 168 * 3600 * NS,
    "sliding_refresh": None,  # None: as the claimed version does (sliding_by_version)
    "version": "v2.34.0",
    "allow_list_form": "object",
    "api_key_retention": 7 * 24 * 3600 * NS,  # --api-keys-retention (retention.api_keys), 0 = never purge
    "api_rate_limit": 512,  # --api-rate-limit per minute, <= 0 = off
    "rate_limit_key": "user+path",  # Coder's httprate keys; "user" = one budget per user (harsher)
    "rate_limit_time_scale": 1.0,
}
# coderd/database/dbpurge/dbpurge.go runs every 10 minutes; DeleteExpiredAPIKeys removes keys that expired more
# than retention.api_keys ago (TestDeleteExpiredAPIKeys: 7 days, 0 disables).
PURGE_EVERY = timedelta(minutes=10)
BYPASS_HEADER = "X-Coder-Bypass-Ratelimit"  # codersdk.BypassRatelimitHeader


def sliding_by_version(version: str) -> bool:
    """API tokens slide on use (coderd/httpmw/apikey.go) until coder PR #26376 (merged 2026-06-15) skipped the
    refresh for login type `token`. v2.34.0 (release docs PR #25996) predates it and no 2.34 backport was found
    (only #26442, to release/2.29); release/2.35 was cut after it [inferred], so v2.35 and later keep it fixed."""
    try:
        major, minor = (int(x) for x in version.lstrip("v").split(".")[:2])
    except ValueError:
        return True
    return (major, minor) < (2, 35)


SEED_LIFETIME = timedelta(days=365)


def _id(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"coder-wi-jobs-emulator/coder/{seed}"))


def _seconds(ns: int) -> int | float:
    return ns // NS if ns % NS == 0 else ns / NS


class CoderEmulator(UserRoutes, TokenRoutes):
    service = "coder"

    def __init__(self, platform: Any) -> None:
        # Stable for the platform's life: the env file's token files hold them (reset re-seeds the same values).
        self.bootstrap_token = platform.remember_secret(f"{random_alnum(10)}-{random_alnum(22)}")
        self.auditor_token = platform.remember_secret(f"{random_alnum(10)}-{random_alnum(22)}")
        self.org_id = _id("org/default")
        super().__init__(platform)

    # ---- state --------------------------------------------------------------------------------------

    def reset(self) -> None:
        self.settings = dict(DEFAULTS)
        self.users = {}
        self.keys = {}
        now = self.now()
        self._last_purge = now
        self._limiter = self._new_limiter()
        seeds = (
            ("admin", "owner", "bootstrap", self.bootstrap_token),
            ("auditor", "auditor", "auditor", self.auditor_token),
        )
        for name, role, token_name, token in seeds:
            user = User(_id(f"user/{name}"), name, f"{name}@coder.emulator.test", "", now, "active", "password", [role])
            user.updated_at = now
            self.users[user.id] = user
            key_id, secret = token.split("-")
            lifetime = int(
                SEED_LIFETIME.total_seconds()
            )  # longer than the owner cap: minted before it, as in real life
            self.keys[key_id] = Key(
                key_id, secret_hash(secret), user.id, token_name, now, now + SEED_LIFETIME, lifetime
            )

    def _new_limiter(self) -> SlidingWindow | None:
        limit = int(self.settings["api_rate_limit"])
        return SlidingWindow(limit, 60.0, float(self.settings["rate_limit_time_scale"])) if limit > 0 else None

    def sliding(self) -> bool:
        chosen = self.settings["sliding_refresh"]
        return sliding_by_version(self.settings["version"]) if chosen is None else bool(chosen)

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"coder settings are {sorted(DEFAULTS)}; got unknown {unknown}")
        parsed = dict(self.settings)
        for key, value in settings.items():
            if key == "sliding_refresh":
                if value is not None and not isinstance(value, bool):
                    raise ValueError("sliding_refresh must be true, false or null (as the version does)")
                parsed[key] = value
            elif key == "api_rate_limit":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError("api_rate_limit must be requests per minute (an integer; <= 0 is off)")
                parsed[key] = value
            elif key == "rate_limit_key":
                if value not in ("user+path", "user"):
                    raise ValueError('rate_limit_key must be "user+path" (Coder\'s) or "user"')
                parsed[key] = value
            elif key == "rate_limit_time_scale":
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ValueError("rate_limit_time_scale must be a number above 0")
                parsed[key] = float(value)
            elif key == "api_key_retention" and value in (0, "0", "0s"):
                parsed[key] = 0
            elif key == "version":
                if not isinstance(value, str) or not value.startswith("v"):
                    raise ValueError('version must be a string like "v2.34.0"')
                parsed[key] = value
            elif key == "allow_list_form":
                if value not in ("object", "string"):
                    raise ValueError('allow_list_form must be "object" or "string"')
                parsed[key] = value
            else:
                parsed[key] = parse_duration_setting(key, value)
        self.settings = parsed
        self._limiter = self._new_limiter()
        return {k: (_seconds(v) if k.endswith(("lifetime", "retention")) else v) for k, v in self.settings.items()}

    # ---- dialect --------------------------------------------------------------------------------------

    def error(self, status: int, code: str, message: str) -> Response:
        return write(status, {"message": message})

    def not_found(self, req: Request) -> Response:
        return write(404, {"message": "Route not found."})

    def method_not_allowed(self, req: Request) -> Response:
        return write(405, {"message": f"Method {req.method} is not allowed on {req.path}."})

    def authenticate(self, req: Request) -> None:
        if req.op in ("buildinfo", "auth.scopes"):
            return
        token = _token_from(req)
        with self.lock:
            self._purge_due()
            key = self._check_key(req, token)
            now = self.now()
            if now - key.last_used > HOUR:  # last_used moves at most once an hour [NOTES §1 sliding expiry]
                key.last_used = now
            lifetime = timedelta(seconds=key.lifetime_seconds)
            refresh = self.sliding() or key.login_type != "token"  # PR #26376 exempts tokens
            if refresh and key.expires_at - now <= lifetime - HOUR:
                key.expires_at = now + lifetime
            user = self.users[key.user_id]
            if user.status == "dormant":  # ActivateDormantUser on first authenticated use
                user.status, user.updated_at = "active", now
            if user.status != "active":
                msg = f'User is not active (status = "{user.status}"). Contact an admin to reactivate your account.'
                raise fail(401, msg)
            if now - user.last_seen_at > HOUR:
                user.last_seen_at = now
            req.params["@caller"] = user.id  # the route groups are the only per-request slot Request offers
            req.params["@key"] = key.id  # its scopes and allow list bound every authorization (rbac.py)

    def _purge_due(self) -> None:
        """dbpurge, lazily: at most every PURGE_EVERY of emulated time, delete keys expired longer than the
        retention ago (their names become free again: the 409 on a reused name ends with the row)."""
        now, retention = self.now(), int(self.settings["api_key_retention"])
        if retention <= 0 or now - self._last_purge < PURGE_EVERY:
            return
        self._last_purge = now
        cutoff = now - timedelta(microseconds=retention // 1000)
        for key_id in [k.id for k in self.keys.values() if k.expires_at < cutoff]:
            del self.keys[key_id]

    def admit(self, req: Request) -> None:
        """coderd/httpmw/ratelimit.go over go-chi/httprate (ratelimit.py): per user (else IP) and, as Coder
        composes its keys, per request path; an Owner may bypass with X-Coder-Bypass-Ratelimit."""
        if self._limiter is None:
            return
        caller = self.users.get(req.params.get("@caller", ""))
        bypass = go_bool_header(req.headers.get(BYPASS_HEADER))
        if caller is not None and bypass:
            if "owner" in caller.roles:
                return
            raise HttpError(
                428, f'"{BYPASS_HEADER}" provided but user is not owner\n', content_type="text/plain; charset=utf-8"
            )
        who = f"user:{caller.id}" if caller is not None else "ip:127.0.0.1"
        verdict = self._limiter.check(who if self.settings["rate_limit_key"] == "user" else f"{who}|{req.path}")
        req.response_headers.update(verdict.headers)
        if not verdict.allowed:
            limit = self.settings["api_rate_limit"]
            message = f"You've been rate limited for sending more than {limit} requests in {go_minutes(60)}."
            raise HttpError(
                429, go_json({"message": message}), dict(verdict.headers), "application/json; charset=utf-8"
            )

    def _check_key(self, req: Request, token: str | None) -> Key:
        if not token:
            raise _unauthorized(req, 'Cookie "coder_session_token" or query parameter must be provided.')
        parts = token.split("-")
        if len(parts) != 2:
            raise _unauthorized(
                req, f"Invalid API key format: incorrect amount of API key parts, expected 2 got {len(parts)}"
            )
        if len(parts[0]) != 10:
            raise _unauthorized(
                req, f"Invalid API key format: invalid API key ID length, expected 10 got {len(parts[0])}"
            )
        if len(parts[1]) != 22:
            raise _unauthorized(
                req, f"Invalid API key format: invalid API key secret length, expected 22 got {len(parts[1])}"
            )
        key = self.keys.get(parts[0])
        if key is None:
            raise _unauthorized(req, "API key is invalid.")
        if not hmac.compare_digest(key.hashed_secret, secret_hash(parts[1])):
            raise _unauthorized(req, "API key secret is invalid.")
        if key.expires_at < self.now():
            raise _unauthorized(req, f'API key expired at "{go_time_string(key.expires_at)}".', expired=True)
        return key

    # ---- unauthenticated --------------------------------------------------------------------------------

    @route("GET", r"/api/v2/buildinfo", "buildinfo")
    def buildinfo(self, req: Request) -> Response:
        version = self.settings["version"]
        return write(
            200,
            {
                "external_url": f"https://github.com/coder/coder/releases/tag/{version}",
                "version": version,
                "dashboard_url": req.base_url,
                "telemetry": False,
                "workspace_proxy": False,
                "agent_api_version": "2.0",
                "provisioner_api_version": "1.0",
                "upgrade_message": "",
                "deployment_id": _id("deployment"),
                "webpush_public_key": "",
                "oauth2_provider": False,
            },
        )

    @route("GET", r"/api/v2/deployment/ssh", "deployment.ssh")
    def ssh_config(self, req: Request) -> Response:
        """coderd/deployment.go `sshConfig`: authentication only, no Authorize call, so every valid key may call
        it whatever its scopes (the `coder config-ssh` call). codersdk.SSHConfigResponse with the defaults."""
        return write(200, {"hostname_prefix": "coder.", "hostname_suffix": "", "ssh_config_options": {}})

    @route("GET", r"/api/v2/auth/scopes", "auth.scopes")
    def scopes(self, req: Request) -> Response:
        return write(200, {"external": sorted(EXTERNAL_SCOPES - {"all", "application_connect"})})


def go_bool_header(value: str | None) -> bool:
    """strconv.ParseBool, errors read as false (ratelimit.go: `ok, _ := strconv.ParseBool(...)`)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def _token_from(req: Request) -> str | None:
    """APITokenFromRequest order: cookie, ?coder_session_token, header, Bearer, ?access_token [NOTES §1]."""
    try:
        cookie = SimpleCookie(req.headers.get("Cookie") or "").get("coder_session_token")
    except CookieError:
        cookie = None
    if cookie is not None and cookie.value:
        return cookie.value
    for candidate in (req.q("coder_session_token"), req.headers.get("Coder-Session-Token")):
        if candidate:
            return str(candidate)
    scheme, _, value = (req.headers.get("Authorization") or "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return req.q("access_token") or None


def _unauthorized(req: Request, detail: str, expired: bool = False) -> HttpError:
    description = "The access token has expired" if expired else "The access token is invalid"
    challenge = (
        f'Bearer realm="coder", error="invalid_token", error_description="{description}", '
        f'resource_metadata="{req.base_url}/.well-known/oauth-protected-resource"'
    )
    err = fail(401, SIGNED_OUT, detail)
    err.response.headers["WWW-Authenticate"] = challenge
    return err
