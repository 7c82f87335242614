"""Which calls a Coder API key may make, from its own record: Coder checks a key's scopes and allow list on every
authorized request, on top of its user's roles, so a job that checks a token must pick a call the token's scopes
permit, or it would "fail" a good token (and a revoking job would then revoke it).

Coder's scope expansion (coderd/rbac/scopes.go `ExpandScope`; the composites are `compositePerms`):
`coder:all` = everything; `coder:application_connect` = workspace application_connect; each `coder:*`
composite = a fixed set of site-level resource:action pairs (below); any other `<resource>:<action>` (or
`<resource>:*`) = that permission. The allow list (coderd/rbac/allowlist.go, policy.rego) admits an object when
an entry matches its type (or `*`) and its id (or `*`). Old servers before scopes send only the legacy `scope`
(`all` | `application_connect`), which means the same as its `coder:` name.

The calls the jobs make with a token they check: `GET /users/me` (user read on the key's own user: what
`coder whoami` does; coder PR #23348 made `user:read` requestable for exactly this) and `GET /deployment/ssh`
(coderd/deployment.go `sshConfig`: authentication only, no Authorize call, so any valid key may make it).
"""

from __future__ import annotations

from collections.abc import Iterable

_COMPOSITES: dict[str, dict[str, tuple[str, ...]]] = {
    "coder:workspaces.create": {
        "template": ("read", "use"),
        "workspace": ("start", "stop", "create", "update", "read"),
        "organization_member": ("read",),
    },
    "coder:workspaces.operate": {
        "template": ("read",),
        "workspace": ("start", "stop", "read", "update"),
        "organization_member": ("read",),
    },
    "coder:workspaces.delete": {
        "template": ("read", "use"),
        "workspace": ("read", "delete"),
        "organization_member": ("read",),
    },
    "coder:workspaces.access": {
        "template": ("read",),
        "organization_member": ("read",),
        "workspace": ("read", "ssh", "application_connect"),
    },
    "coder:templates.build": {"template": ("read",), "file": ("create", "read"), "provisioner_jobs": ("read",)},
    "coder:templates.author": {
        "template": ("read", "create", "update", "delete", "view_insights"),
        "file": ("create", "read"),
    },
    "coder:apikeys.manage_self": {"api_key": ("read", "create", "update", "delete")},
}
_ALIASES = {"all": "coder:all", "application_connect": "coder:application_connect"}


def permissions(scopes: Iterable[str]) -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for raw in scopes:
        name = _ALIASES.get(raw, raw)
        if name == "coder:all":
            out.add(("*", "*"))
        elif name == "coder:application_connect":
            out.add(("workspace", "application_connect"))
        elif name in _COMPOSITES:
            out |= {(res, act) for res, acts in _COMPOSITES[name].items() for act in acts}
        else:
            resource, sep, action = name.partition(":")
            if sep and resource and action:
                out.add((resource, action))
    return frozenset(out)


def permits(scopes: Iterable[str], allow_list: Iterable[str], resource: str, action: str, object_id: str = "") -> bool:
    """Would Coder let a key with these scopes and allow list (`type:id` entries) do `action` on the object?
    No scopes and no allow list (a server before either) restrict nothing."""
    names = list(scopes) or ["coder:all"]
    granted = any(r in ("*", resource) and a in ("*", action) for r, a in permissions(names))
    entries = [tuple(e.split(":", 1)) for e in allow_list]
    allowed = not entries or any(
        t in ("*", resource) and (i == "*" or (bool(object_id) and i == object_id)) for t, i in entries
    )
    return granted and allowed


def can_whoami(scopes: Iterable[str], allow_list: Iterable[str], user_id: str) -> bool:
    """May this key call GET /users/me (read its own user)?"""
    return permits(scopes, allow_list, "user", "read", user_id)
