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
Not modelled: scopes and allow lists narrowing what a token may do (stored and returned, not enforced),
session keys (`POST /users/{user}/keys`), PATCH of tokens (unmerged upstream), organizations endpoints.

Settings (`configure`, reset restores): `max_token_lifetime` (876600h), `max_admin_token_lifetime` (168h),
`default_token_lifetime` (168h) — each in SECONDS (int/float) or a Go duration string ("2160h");
`sliding_refresh` (false: fixed expiry as after coder PR #26376); `version`. `configure` returns seconds.

Seed on every reset (token values fixed for the platform's life): `admin` (site owner) with token `bootstrap`
= `bootstrap_token`, and `auditor` (site auditor) with token `auditor` = `auditor_token`; both 365 days long,
over the owner cap on purpose (the cap binds at mint time only, like a token minted before the cap changed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.cookies import CookieError, SimpleCookie
from typing import Any

from tests.emulators.core import Emulator, HttpError, Request, Response, route

NS = 1_000_000_000
# codersdk.RBACResource @00bbef6b without `*` (swagger-subset.json): the allow-list's valid types.
RBAC_RESOURCES = frozenset(
    """ai_gateway_key ai_model_price ai_provider ai_seat aibridge_interception api_key assign_org_role assign_role
    audit_log boundary_log boundary_usage chat chat_automation chat_model_config chat_project chat_project_memory
    connection_log crypto_key debug_info deployment_config deployment_stats file group group_member idpsync_settings
    inbox_notification license mcp_server_config notification_message notification_preference notification_template
    oauth2_app oauth2_app_code_token oauth2_app_secret organization organization_member organization_skill
    prebuilt_workspace provisioner_daemon provisioner_jobs replicas system tailnet_coordinator template usage_event
    user user_secret user_skill webpush_subscription workspace workspace_agent_devcontainers
    workspace_agent_resource_monitor workspace_build_orchestration workspace_dormant workspace_proxy""".split()  # noqa: SIM905
)
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


def go_json(value: Any) -> bytes:
    """encoding/json with SetEscapeHTML(true), as json.Encoder writes it: compact, newline-terminated."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for raw, esc in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, esc)
    return (text + "\n").encode()


def _fraction(dt: datetime) -> str:
    return f".{dt.microsecond:06d}".rstrip("0") if dt.microsecond else ""


def rfc3339(dt: datetime) -> str:
    """time.Time.MarshalJSON (RFC 3339, trailing zeros of the fraction trimmed) [NOTES §6.12]."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S") + _fraction(dt) + "Z"


def go_time_string(dt: datetime) -> str:
    """time.Time.String() of a UTC time: `2026-01-02 03:04:05.123456 +0000 UTC`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + _fraction(dt) + " +0000 UTC"


def _decimal(value: int, unit: int) -> str:
    whole, part = divmod(value, unit)
    digits = str(part).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}" if digits else str(whole)


def go_duration(ns: int) -> str:
    """time.Duration.String(): 2160h0m0s, 1h30m0s, 1.5s, 250ms, 0s."""
    sign, u = ("-" if ns < 0 else ""), abs(ns)
    if u == 0:
        return "0s"
    if u < 1000:
        return f"{sign}{u}ns"
    if u < NS:
        return sign + (_decimal(u, 1000) + "µs" if u < 1_000_000 else _decimal(u, 1_000_000) + "ms")
    hours, rest = divmod(u, 3600 * NS)
    minutes, rest = divmod(rest, 60 * NS)
    seconds = _decimal(rest, NS) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    return f"{sign}{minutes}m{seconds}" if minutes else sign + seconds


_GO_UNITS = {"ns": 1, "us": 1000, "µs": 1000, "ms": 1_000_000, "s": NS, "m": 60 * NS, "h": 3600 * NS}
_GO_DURATION = re.compile(r"(?:(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h))+")


def parse_duration_setting(key: str, value: Any) -> int:
    """A lifetime setting as seconds (int/float) or a Go duration string ("2160h"); returns nanoseconds."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{key} must be seconds (a number) or a Go duration string like 2160h")
    if isinstance(value, str):
        if not _GO_DURATION.fullmatch(value):
            raise ValueError(f"{key}: {value!r} is not a Go duration like 2160h0m0s")
        ns = sum(int(float(n) * _GO_UNITS[u]) for n, u in re.findall(r"(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)", value))
    else:
        ns = int(value * NS)
    if ns <= 0:
        raise ValueError(f"{key} must be positive")
    return ns


class DecodeError(Exception):
    """The text encoding/json (or a type's UnmarshalJSON) would return; Coder puts it in `detail`."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def _allow_entry(raw: Any) -> tuple[str, str]:
    """codersdk.APIAllowListTarget.UnmarshalJSON (object or `type:id` string)."""
    if isinstance(raw, dict) and all(isinstance(raw.get(k, ""), str) for k in ("type", "id")):
        rtype, rid = raw.get("type", ""), raw.get("id", "")
        if rtype or rid:
            if not rtype or not rid:
                raise DecodeError("allow_list entry must include both type and id")
            return _allow_values(rtype, rid)
    if raw is not None and not isinstance(raw, str):
        raise DecodeError("invalid allow_list entry: expected object with type/id or string")
    legacy = raw or ""
    parts = legacy.strip().split(":", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise DecodeError(f'invalid allow_list entry "{legacy}": want <type>:<id>')
    return _allow_values(parts[0], parts[1])


def _allow_values(rtype: str, rid: str) -> tuple[str, str]:
    rtype, rid = rtype.strip(), rid.strip()
    if not rtype or not rid:
        raise DecodeError("allow_list entry must include non-empty type and id")
    if rtype != "*" and rtype not in RBAC_RESOURCES:
        raise DecodeError(f'unknown resource type "{rtype}"')
    if rid != "*":
        try:
            uuid.UUID(rid)
        except ValueError:
            raise DecodeError(f'invalid {rtype} ID (must be UUID): "{rid}"') from None
    return rtype, rid


def decode_body(body: bytes, struct: str, fields: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """json.Decoder.Decode into a Go struct: type errors name the field; unknown keys are ignored;
    keys match case-insensitively; `null` leaves the zero value."""
    if not body.strip():
        raise DecodeError("EOF")
    try:
        data = json.loads(body)
    except ValueError as exc:
        char = body.decode(errors="replace")[exc.pos : exc.pos + 1] if isinstance(exc, json.JSONDecodeError) else ""
        raise DecodeError(f"invalid character {char!r} looking for beginning of value") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_json_kind(data).split()[0]} into Go value of type codersdk.{struct}"
        )
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key if raw_key in fields else raw_key.lower()
        if key not in fields or value is None:
            continue
        kind, go_type = fields[key]
        out[key] = _decode_field(
            value, kind, f"json: cannot unmarshal {{}} into Go struct field {struct}.{key} of type {go_type}"
        )
    return out


def _decode_field(value: Any, kind: str, template: str) -> Any:
    def bad(v: Any) -> DecodeError:
        return DecodeError(template.format(_json_kind(v)))

    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int64" and isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    if kind in ("strings", "uuids", "allow_list") and isinstance(value, list):
        if kind == "allow_list":
            return [_allow_entry(item) for item in value]
        for item in value:
            if not isinstance(item, str):
                raise bad(item)
            if kind == "uuids":
                try:
                    uuid.UUID(item)
                except ValueError:
                    raise DecodeError(f"invalid UUID length: {len(item)}") from None
        return list(value)
    raise bad(value)


SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
NOT_FOUND = "Resource not found or you do not have access to this resource"
USER_PARAM_ERROR = '"user" must be an existing uuid or username.'
FORBIDDEN_DETAIL = (
    "You don't have permission to view this content. If you believe this is a mistake, please contact your "
    "administrator or try signing in with different credentials."
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # never-used keys [NOTES §1 key format]
GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)  # users.last_seen_at default
HOUR = timedelta(hours=1)
SITE_ROLES = {"owner": "Owner", "template-admin": "Template Admin", "user-admin": "User Admin", "auditor": "Auditor"}
USER_READERS = frozenset({"owner", "auditor", "template-admin", "user-admin"})  # site-wide user:read, roles.go
DEFAULTS: dict[str, Any] = {
    "max_token_lifetime": 876600 * 3600 * NS,
    "max_admin_token_lifetime": 168 * 3600 * NS,
    "default_token_lifetime": 168 * 3600 * NS,
    "sliding_refresh": False,
    "version": "v2.34.0",
}
SEED_LIFETIME = timedelta(days=365)


def _id(seed: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"coder-wi-jobs-emulator/coder/{seed}"))


def _alnum(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def _seconds(ns: int) -> int | float:
    return ns // NS if ns % NS == 0 else ns / NS


def _sha(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def write(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    """httpapi.Write: `application/json; charset=utf-8`, HTML-escaped, one value plus newline."""
    return Response(status, go_json(body), dict(headers or {}), "application/json; charset=utf-8")


def fail(status: int, message: str, detail: str = "", validations: list[dict[str, str]] | None = None) -> HttpError:
    body: dict[str, Any] = {"message": message}
    if detail:
        body["detail"] = detail  # omitempty [README 4]
    if validations:
        body["validations"] = validations
    resp = write(status, body)
    return HttpError(status, resp.body, content_type=resp.content_type)


@dataclass
class User:
    id: str
    username: str
    email: str
    name: str
    created_at: datetime
    status: str
    login_type: str
    roles: list[str]
    is_service_account: bool = False
    updated_at: datetime = EPOCH
    last_seen_at: datetime = GO_ZERO


@dataclass
class Key:
    id: str
    hashed_secret: bytes
    user_id: str
    token_name: str
    created_at: datetime
    expires_at: datetime
    lifetime_seconds: int
    scopes: list[str] = field(default_factory=lambda: ["coder:all"])
    allow_list: list[tuple[str, str]] = field(default_factory=lambda: [("*", "*")])
    last_used: datetime = EPOCH
    login_type: str = "token"


class CoderEmulator(Emulator):
    service = "coder"

    def __init__(self, platform: Any) -> None:
        # Stable for the platform's life: the env file's token files hold them (reset re-seeds the same values).
        self.bootstrap_token = platform.remember_secret(f"{_alnum(10)}-{_alnum(22)}")
        self.auditor_token = platform.remember_secret(f"{_alnum(10)}-{_alnum(22)}")
        self.org_id = _id("org/default")
        super().__init__(platform)

    # ---- state --------------------------------------------------------------------------------------

    def now(self) -> datetime:
        return self.platform.clock.now()  # microsecond precision, like the Postgres columns

    def reset(self) -> None:
        self.settings: dict[str, Any] = dict(DEFAULTS)
        self.users: dict[str, User] = {}
        self.keys: dict[str, Key] = {}
        now = self.now()
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
            self.keys[key_id] = Key(key_id, _sha(secret), user.id, token_name, now, now + SEED_LIFETIME, lifetime)

    def configure(self, settings: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(settings) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"coder settings are {sorted(DEFAULTS)}; got unknown {unknown}")
        parsed = dict(self.settings)
        for key, value in settings.items():
            if key == "sliding_refresh":
                if not isinstance(value, bool):
                    raise ValueError("sliding_refresh must be true or false")
                parsed[key] = value
            elif key == "version":
                if not isinstance(value, str) or not value.startswith("v"):
                    raise ValueError('version must be a string like "v2.34.0"')
                parsed[key] = value
            else:
                parsed[key] = parse_duration_setting(key, value)
        self.settings = parsed
        return {k: (_seconds(v) if k.endswith("lifetime") else v) for k, v in self.settings.items()}

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
            key = self._check_key(req, token)
            now = self.now()
            if now - key.last_used > HOUR:  # last_used moves at most once an hour [NOTES §1 sliding expiry]
                key.last_used = now
            lifetime = timedelta(seconds=key.lifetime_seconds)
            refresh = self.settings["sliding_refresh"] or key.login_type != "token"  # PR #26376 exempts tokens
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
        if not hmac.compare_digest(key.hashed_secret, _sha(parts[1])):
            raise _unauthorized(req, "API key secret is invalid.")
        if key.expires_at < self.now():
            raise _unauthorized(req, f'API key expired at "{go_time_string(key.expires_at)}".', expired=True)
        return key

    # ---- helpers ------------------------------------------------------------------------------------

    def _caller(self, req: Request) -> User:
        return self.users[req.params["@caller"]]

    def _target(self, req: Request) -> User:
        """ExtractUserParam: `me`, a UUID or a username the caller may read; else 400."""
        caller, query = self._caller(req), req.params["user"]
        if query == "me":
            return caller
        try:
            found = self.users.get(str(uuid.UUID(query)))
        except ValueError:
            found = next((u for u in self.users.values() if u.username.lower() == query.lower()), None)
        if found is None or not (found.id == caller.id or USER_READERS & set(caller.roles)):
            raise fail(400, USER_PARAM_ERROR, f'queried user="{query}"')
        return found

    @staticmethod
    def _may_use_keys_of(caller: User, owner_id: str) -> bool:
        """api_key read/create/update/delete: your own keys, or any key with site `owner` (roles.go)."""
        return caller.id == owner_id or "owner" in caller.roles

    def _cap_ns(self, user: User) -> int:
        """getMaxTokenLifetime: the *target* user's roles pick the cap [NOTES §2, §6.2]."""
        return int(self.settings["max_admin_token_lifetime" if "owner" in user.roles else "max_token_lifetime"])

    def _user_json(self, u: User) -> dict[str, Any]:
        return {
            "id": u.id,
            "username": u.username,
            "name": u.name,
            "email": u.email,
            "avatar_url": "",
            "created_at": rfc3339(u.created_at),
            "updated_at": rfc3339(u.updated_at),
            "last_seen_at": rfc3339(u.last_seen_at),
            "status": u.status,
            "login_type": u.login_type,
            "is_service_account": u.is_service_account,
            "has_ai_seat": False,
            "theme_preference": "",
            "organization_ids": [self.org_id],
            "roles": [{"name": r, "display_name": SITE_ROLES[r]} for r in u.roles],  # site roles only [§6.9]
        }

    @staticmethod
    def _key_json(k: Key) -> dict[str, Any]:
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
            "allow_list": [{"type": t, "id": i} for t, i in k.allow_list],
        }

    def _readable_key(self, req: Request, key_id: str) -> Key:
        key = self.keys.get(key_id)
        if key is None or not self._may_use_keys_of(self._caller(req), key.user_id):
            raise fail(404, NOT_FOUND)
        return key

    # ---- users: list, create, roles -------------------------------------------------------------------------

    def _list_users(self, req: Request) -> Response:
        """`q` filters (role:, status:, service_account:, login_type:, free text), limit/offset/after_id;
        only users the caller may read; ordered by username; `count` before paging."""
        caller = self._caller(req)
        matches = _user_filter(req.q("q") or "")
        users = [
            u
            for u in sorted(self.users.values(), key=lambda u: u.username.lower())
            if (u.id == caller.id or USER_READERS & set(caller.roles)) and matches(u)
        ]
        count = len(users)
        after = req.q("after_id")
        if after:
            ids = [u.id for u in users]
            users = users[ids.index(after) + 1 :] if after in ids else []
        offset, limit = _int_param(req, "offset"), _int_param(req, "limit")
        users = users[offset : offset + limit if limit else None]
        return write(200, {"users": [self._user_json(u) for u in users], "count": count})

    def _create_user(self, req: Request) -> Response:
        """coderd/users.go postUser, plus the 2026 service-account rules [NOTES §2 users, §6.11]."""
        try:
            body = decode_body(req.body, "CreateUserRequestWithOrgs", USER_FIELDS)
        except DecodeError as exc:
            raise fail(400, "Request body must be valid JSON.", str(exc)) from None
        username, email = body.get("username", ""), body.get("email", "")
        service = bool(body.get("service_account"))
        _validate_user_fields(username, email, service)
        login = body.get("login_type") or ("none" if service else "password")
        password = body.get("password", "")
        if service and (email or password or login != "none"):
            # [inferred] wording; the rule itself is from terraform-provider-coderd #356/#357
            raise fail(400, 'Service accounts must not have an email or a password and use login type "none".')
        if login != "password" and password:
            raise fail(400, f'Password cannot be set for non-password ("{login}") authentication.')
        if login not in ("password", "none", "github", "oidc"):
            raise fail(400, f'Unsupported login type "{login}" for manually creating new users.')
        orgs = body.get("organization_ids") or []
        if not orgs:
            raise fail(
                400,
                "No organization specified to place the user as a member of. It is required to specify at least "
                "one organization id to place the user in.",
                "required at least 1 value for the array 'organization_ids'",
                [{"field": "organization_ids", "detail": "Missing values, this cannot be empty"}],
            )
        if any(u.username.lower() == username.lower() or (email and u.email == email) for u in self.users.values()):
            raise fail(409, "User already exists.")
        for org in orgs:
            if org not in (self.org_id, str(uuid.UUID(int=0))):  # uuid.Nil means the default org
                raise fail(404, f'Organization does not exist with the provided id "{org}".')
        if login == "password" and len(password) < 8:  # [inferred] userpassword.Validate's length floor
            raise fail(
                400,
                "Password not strong enough!",
                validations=[{"field": "password", "detail": "password must be at least 8 characters"}],
            )
        caller = self._caller(req)
        if not {"owner", "user-admin"} & set(caller.roles):
            raise fail(403, "You are not authorized to create users.")
        roles = [r for r in dict.fromkeys(body.get("roles") or []) if r != "member"]
        self._check_assignable(caller, roles)
        status = body.get("user_status") or "dormant"  # new users start dormant [NOTES §6.11]
        if status not in ("active", "dormant", "suspended"):
            raise fail(400, f'Invalid user status "{status}".')
        now = self.now()
        user = User(str(uuid.uuid4()), username, email, body.get("name", ""), now, status, login, roles, service, now)
        self.users[user.id] = user
        return write(201, self._user_json(user))

    def _check_assignable(self, caller: User, changed: list[str]) -> None:
        """dbauthz canAssignRoles: unknown names are 400; owner may assign anything, user-admin anything but
        owner (rbac.CanAssignRole); everyone else lacks assign_role (403)."""
        for role in changed:
            if role not in SITE_ROLES:
                raise fail(400, f'"{role}" is not a supported role')
        if changed and not {"owner", "user-admin"} & set(caller.roles):
            raise fail(403, "Forbidden.", FORBIDDEN_DETAIL)
        if "owner" in changed and "owner" not in caller.roles:
            raise fail(400, 'not authorized to assign role "owner"')

    def _put_roles(self, req: Request) -> Response:
        caller, target = self._caller(req), self._target(req)
        if caller.id == target.id:
            raise fail(400, "You cannot change your own roles.")
        try:
            body = decode_body(req.body, "UpdateRoles", {"roles": ("strings", "[]string")})
        except DecodeError as exc:
            raise fail(400, "Request body must be valid JSON.", str(exc)) from None
        wanted = [r for r in dict.fromkeys(body.get("roles") or []) if r != "member"]  # member is implied
        changed = sorted(set(wanted) ^ set(target.roles))
        self._check_assignable(caller, changed)
        target.roles, target.updated_at = wanted, self.now()
        return write(200, self._user_json(target))

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

    @route("GET", r"/api/v2/auth/scopes", "auth.scopes")
    def scopes(self, req: Request) -> Response:
        return write(200, {"external": sorted(EXTERNAL_SCOPES - {"all", "application_connect"})})

    # ---- users --------------------------------------------------------------------------------------------

    @route("GET", r"/api/v2/users", "users.list")
    def list_users(self, req: Request) -> Response:
        with self.lock:
            return self._list_users(req)

    @route("POST", r"/api/v2/users", "users.create")
    def create_user(self, req: Request) -> Response:
        with self.lock:
            return self._create_user(req)

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)", "users.get")
    def get_user(self, req: Request) -> Response:
        with self.lock:
            return write(200, self._user_json(self._target(req)))

    @route("DELETE", r"/api/v2/users/(?P<user>[^/]+)", "users.delete")
    def delete_user(self, req: Request) -> Response:
        with self.lock:
            caller, target = self._caller(req), self._target(req)
            if caller.id == target.id:
                raise fail(403, "You cannot delete yourself!")
            if not {"owner", "user-admin"} & set(caller.roles):
                raise fail(403, "Forbidden.", FORBIDDEN_DETAIL)
            del self.users[target.id]
            for key_id in [k.id for k in self.keys.values() if k.user_id == target.id]:
                del self.keys[key_id]  # a trigger deletes a deleted user's API keys
            return write(200, {"message": "User has been deleted!"})

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/roles", "users.roles.get")
    def get_roles(self, req: Request) -> Response:
        with self.lock:
            caller, target = self._caller(req), self._target(req)
            if caller.id != target.id and not {"owner", "user-admin"} & set(caller.roles):
                raise fail(404, NOT_FOUND)  # needs user:read_personal
            org_roles = ["organization-service-account"] if target.is_service_account else []
            return write(200, {"roles": list(target.roles), "organization_roles": {self.org_id: org_roles}})

    @route("PUT", r"/api/v2/users/(?P<user>[^/]+)/roles", "users.roles.put")
    def put_roles(self, req: Request) -> Response:
        with self.lock:
            return self._put_roles(req)

    # ---- tokens -------------------------------------------------------------------------------------------

    @route("GET", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens", "tokens.list")
    def list_tokens(self, req: Request) -> Response:
        with self.lock:
            caller, target, now = self._caller(req), self._target(req), self.now()
            include_all = _go_bool(req.q("include_all"))
            include_expired = _go_bool(req.q("include_expired"))
            keys = [
                k
                for k in sorted(self.keys.values(), key=lambda k: (k.created_at, k.id))
                if k.login_type == "token"
                and (include_all or k.user_id == target.id)
                and self._may_use_keys_of(caller, k.user_id)  # unreadable keys vanish, no 403 [NOTES §6.8]
                and (include_expired or k.expires_at > now)
            ]
            items = [{**self._key_json(k), "username": self.users[k.user_id].username} for k in keys]
            return write(200, items or None)  # a Go nil slice encodes as `null` [README 2]

    @route("POST", r"/api/v2/users/(?P<user>[^/]+)/keys/tokens", "tokens.create")
    def create_token(self, req: Request) -> Response:
        with self.lock:
            target = self._target(req)
            try:
                body = decode_body(req.body, "CreateTokenRequest", TOKEN_FIELDS)
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
            if not self._may_use_keys_of(self._caller(req), target.id):
                raise fail(500, "Failed to create API key.", "insert API key: unauthorized: rbac: forbidden")
            if any(k.user_id == target.id and k.token_name == name for k in self.keys.values()):
                raise fail(  # the name stays taken by expired, unpurged rows [NOTES §6.4]
                    409,
                    f'A token with name "{name}" already exists.',
                    validations=[{"field": "name", "detail": "This value is already in use and should be unique."}],
                )
            key_id, secret, now = _alnum(10), _alnum(22), self.now()
            expires = now + timedelta(microseconds=lifetime // 1000)
            self.keys[key_id] = Key(key_id, _sha(secret), target.id, name, now, expires, lifetime // NS, scopes, allow)
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
            del self.keys[self._readable_key(req, req.params["keyid"]).id]
            return Response(204)

    @route("PUT", r"/api/v2/users/(?P<user>[^/]+)/keys/(?P<keyid>[^/]+)/expire", "keys.expire")
    def expire_key(self, req: Request) -> Response:
        with self.lock:
            self._target(req)
            self._readable_key(req, req.params["keyid"]).expires_at = self.now()  # row kept for audit
            return Response(204)


TOKEN_FIELDS = {
    "lifetime": ("int64", "time.Duration"),
    "scope": ("string", "codersdk.APIKeyScope"),
    "scopes": ("strings", "codersdk.APIKeyScope"),
    "token_name": ("string", "string"),
    "allow_list": ("allow_list", "[]codersdk.APIAllowListTarget"),
}


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


def _go_bool(value: str | None) -> bool:
    """strconv.ParseBool, errors ignored (the handler does `includeAll, _ = strconv.ParseBool(...)`)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


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


USER_FIELDS = {
    "username": ("string", "string"),
    "email": ("string", "string"),
    "name": ("string", "string"),
    "password": ("string", "string"),
    "login_type": ("string", "codersdk.LoginType"),
    "organization_ids": ("uuids", "[]uuid.UUID"),
    "roles": ("strings", "[]string"),
    "user_status": ("string", "codersdk.UserStatus"),
    "service_account": ("bool", "bool"),
}
_NAME = re.compile(r"[a-zA-Z0-9]+(?:-[a-zA-Z0-9]+)*")  # codersdk.NameValid
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _validate_user_fields(username: str, email: str, service: bool) -> None:
    """httpapi.Read's struct-tag validation: 400 `Validation failed.` with one entry per failing field."""
    problems: list[tuple[str, str, str]] = []
    if not username:
        problems.append(("username", "required", username))
    elif len(username) > 32 or not _NAME.fullmatch(username):
        problems.append(("username", "username", username))
    if not service and not email:
        problems.append(("email", "required", email))
    elif email and not _EMAIL.fullmatch(email):
        problems.append(("email", "email", email))
    if problems:
        raise fail(
            400,
            "Validation failed.",
            validations=[
                {"field": f, "detail": f'Validation failed for tag "{t}" with value: "{v}"'} for f, t, v in problems
            ],
        )


def _int_param(req: Request, name: str) -> int:
    raw = req.q(name) or "0"
    if not raw.isdigit():
        raise fail(
            400,
            "Query parameters have invalid values.",
            validations=[{"field": name, "detail": f'Query param "{name}" must be a valid positive integer'}],
        )
    return int(raw)


def _user_filter(query: str) -> Any:
    """searchquery.Users: `key:value` terms (comma lists), free words match username/email."""
    terms: dict[str, list[str]] = {}
    words: list[str] = []
    for token in query.split():
        key, sep, value = token.partition(":")
        if sep:
            terms.setdefault(key.lower(), []).extend(v for v in value.split(",") if v)
        else:
            words.append(token.lower())
    unknown = sorted(set(terms) - {"role", "status", "service_account", "login_type", "search"})
    if unknown:
        raise fail(
            400,
            "Invalid user search query.",
            validations=[{"field": k, "detail": f'Query param "{k}" is not a valid query param'} for k in unknown],
        )
    words += [w.lower() for w in terms.get("search", [])]
    roles, statuses = set(terms.get("role", [])), set(terms.get("status", []))
    logins, service = set(terms.get("login_type", [])), terms.get("service_account")

    def matches(u: User) -> bool:
        return (
            (not roles or "member" in roles or bool(roles & set(u.roles)))  # everyone is a member
            and (not statuses or u.status in statuses)
            and (not logins or u.login_type in logins)
            and (service is None or u.is_service_account == _go_bool(service[-1]))
            and all(w in u.username.lower() or w in u.email.lower() for w in words)
        )

    return matches
