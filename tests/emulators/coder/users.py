"""Coder's users endpoints: list (search query, paging), create (incl. 2026 service accounts), get, delete,
and site roles.

Sources: shared/api-specs/coder/NOTES.md (quoted [NOTES §n]) and coderd source at the commits named there:
coderd/users.go (postUser, userRoles: `GET /users/{u}/roles` needs user:read_personal, else 404), dbauthz
canAssignRoles and rbac.CanAssignRole (coderd/rbac/roles.go @007f4fc1), searchquery.Users.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from tests.emulators.coder.decode import DecodeError, decode_body
from tests.emulators.coder.state import (
    FORBIDDEN_DETAIL,
    NOT_FOUND,
    SITE_ROLES,
    USER_READERS,
    CoderBase,
    User,
)
from tests.emulators.coder.wire import fail, go_bool, rfc3339, write
from tests.emulators.core import Request, Response, route

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


class UserRoutes(CoderBase):
    """The /users mixin."""

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

    # ---- users: list, create, roles -------------------------------------------------------------------------

    def _list_users(self, req: Request) -> Response:
        """`q` filters (role:, status:, service_account:, login_type:, free text), limit/offset/after_id;
        only users the caller may read; ordered by username; `count` before paging."""
        caller = self._caller(req)
        matches = _user_filter(req.q("q") or "")
        users = [
            u
            for u in sorted(self.users.values(), key=lambda u: u.username.lower())
            if (u.id == caller.id or USER_READERS & set(caller.roles))
            and self._key_permits(req, "user", "read", u.id)  # AuthorizeFilter: others vanish
            and matches(u)
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
        if not self._key_permits(req, "user", "create"):
            raise fail(403, "Forbidden.", FORBIDDEN_DETAIL)
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
        if changed and not self._key_permits(req, "assign_role", "assign"):
            raise fail(403, "Forbidden.", FORBIDDEN_DETAIL)
        target.roles, target.updated_at = wanted, self.now()
        return write(200, self._user_json(target))

    # ---- routes -------------------------------------------------------------------------------------------

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
            target = self._target(req)
            if not self._key_permits(req, "user", "read", target.id):
                raise fail(404, NOT_FOUND)  # a scoped token without user:read (PR #23348's own example)
            return write(200, self._user_json(target))

    @route("DELETE", r"/api/v2/users/(?P<user>[^/]+)", "users.delete")
    def delete_user(self, req: Request) -> Response:
        with self.lock:
            caller, target = self._caller(req), self._target(req)
            if caller.id == target.id:
                raise fail(403, "You cannot delete yourself!")
            if not {"owner", "user-admin"} & set(caller.roles) or not self._key_permits(
                req, "user", "delete", target.id
            ):
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
            if not self._key_permits(req, "user", "read_personal", target.id):
                raise fail(404, NOT_FOUND)
            org_roles = ["organization-service-account"] if target.is_service_account else []
            return write(200, {"roles": list(target.roles), "organization_roles": {self.org_id: org_roles}})

    @route("PUT", r"/api/v2/users/(?P<user>[^/]+)/roles", "users.roles.put")
    def put_roles(self, req: Request) -> Response:
        with self.lock:
            return self._put_roles(req)


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
            and (service is None or u.is_service_account == go_bool(service[-1]))
            and all(w in u.username.lower() or w in u.email.lower() for w in words)
        )

    return matches
