"""Coder's records (users, API keys) and the per-request lookups every route shares: the authenticated caller
and the `{user}` path parameter.

Sources: shared/api-specs/coder/NOTES.md (quoted [NOTES §n]); `{user}` unknown or unreadable: 400 `"user" must
be an existing uuid or username.` + `queried user="x"` (coderd/httpmw/userparam.go ExtractUserContext); a member
cannot read other users; site-wide user:read per coderd/rbac/roles.go @007f4fc1.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.emulators.coder.rbac import key_permits
from tests.emulators.coder.wire import fail
from tests.emulators.core import Emulator, Request

NOT_FOUND = "Resource not found or you do not have access to this resource"
USER_PARAM_ERROR = '"user" must be an existing uuid or username.'
FORBIDDEN_DETAIL = (
    "You don't have permission to view this content. If you believe this is a mistake, please contact your "
    "administrator or try signing in with different credentials."
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # never-used keys [NOTES §1 key format]
GO_ZERO = datetime(1, 1, 1, tzinfo=UTC)  # users.last_seen_at default
SITE_ROLES = {"owner": "Owner", "template-admin": "Template Admin", "user-admin": "User Admin", "auditor": "Auditor"}
USER_READERS = frozenset({"owner", "auditor", "template-admin", "user-admin"})  # site-wide user:read, roles.go


def random_alnum(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


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


class CoderBase(Emulator):
    """State shared by the route mixins (re-seeded by CoderEmulator.reset) and the per-request lookups."""

    settings: dict[str, Any]
    users: dict[str, User]
    keys: dict[str, Key]
    org_id: str

    def now(self) -> datetime:
        return self.platform.clock.now()  # microsecond precision, like the Postgres columns

    def _caller(self, req: Request) -> User:
        return self.users[req.params["@caller"]]

    def _key_permits(self, req: Request, resource: str, action: str, object_id: str = "") -> bool:
        """The scope and allow-list half of an authorization (rbac.py); the role half is each route's own."""
        key = self.keys.get(req.params.get("@key", ""))
        return key is not None and key_permits(key.scopes, key.allow_list, resource, action, object_id)

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
