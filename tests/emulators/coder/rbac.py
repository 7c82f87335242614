"""What an API key's scopes and allow list let it do: Coder checks both on every authorized call, on top of the
user's roles. A scope narrows, never widens: a request passes only if the role, the scope AND the allow list
all permit it.

Sources (coder/coder):
- Scope expansion, coderd/rbac/scopes.go `ExpandScope`: the built-ins `coder:all` (`*` on `*`) and
  `coder:application_connect` (workspace application_connect); the composites `compositePerms` (all site-level):
    coder:workspaces.create  template read,use; workspace start,stop,create,update,read; organization_member read
    coder:workspaces.operate template read; workspace start,stop,read,update; organization_member read
    coder:workspaces.delete  template read,use; workspace read,delete; organization_member read
    coder:workspaces.access  template read; organization_member read; workspace read,ssh,application_connect
    coder:templates.build    template read; file create,read; provisioner_jobs read
    coder:templates.author   template read,create,update,delete,view_insights; file create,read
    coder:apikeys.manage_self api_key read,create,update,delete
  and any other `<resource>:<action>` (or `<resource>:*`) as that single permission (`expandLowLevel`). The
  legacy names `all` / `application_connect` are canonicalised at create (coderd/apikey.go
  `normalizeTokenScopes`), so stored keys hold `coder:*` names only.
- Allow list, coderd/rbac/allowlist.go and policy.rego: an object passes when an entry matches its type (or
  `*`) and its id (or `*`); an object without an id (a create) passes only a `*` id. The key's stored list is
  intersected with the scope's (`IntersectAllowLists`); every scope here expands with `*:*`, so the stored list
  decides.
- Actions per resource, coderd/rbac/policy/policy.go: user read/create/update/delete/read_personal/
  update_personal; api_key read/create/update/delete; assign_role assign/delete.
"""

from __future__ import annotations

from collections.abc import Iterable

Permission = tuple[str, str]  # (resource type, action); "*" wildcards either

BUILTIN: dict[str, frozenset[Permission]] = {
    "coder:all": frozenset({("*", "*")}),
    "coder:application_connect": frozenset({("workspace", "application_connect")}),
}
COMPOSITE: dict[str, frozenset[Permission]] = {
    name: frozenset((res, act) for res, acts in perms.items() for act in acts)
    for name, perms in {
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
    }.items()
}


def expand(scopes: Iterable[str]) -> frozenset[Permission]:
    """Every (resource, action) the scopes grant; a name that expands to nothing grants nothing."""
    out: set[Permission] = set()
    for name in scopes:
        if name in BUILTIN:
            out |= BUILTIN[name]
        elif name in COMPOSITE:
            out |= COMPOSITE[name]
        else:
            resource, sep, action = name.partition(":")
            if sep and resource and action:
                out.add((resource, action))
    return frozenset(out)


def scope_permits(scopes: Iterable[str], resource: str, action: str) -> bool:
    return any(r in ("*", resource) and a in ("*", action) for r, a in expand(scopes))


def allow_list_permits(allow_list: Iterable[tuple[str, str]], resource: str, object_id: str) -> bool:
    return any(t in ("*", resource) and (i == "*" or (object_id and i == object_id)) for t, i in allow_list)


def key_permits(
    scopes: Iterable[str], allow_list: Iterable[tuple[str, str]], resource: str, action: str, object_id: str
) -> bool:
    return scope_permits(scopes, resource, action) and allow_list_permits(allow_list, resource, object_id)
