"""Key Vault's data-plane Azure RBAC for secrets: which data action each operation needs, which built-in role
grants it, and the 403 a vault answers when no role assignment of the caller grants it.

Sources:
- [doc] "Azure built-in roles for Security" (learn.microsoft.com/azure/role-based-access-control/built-in-roles/
  security), role definitions: Key Vault Secrets User = dataActions `secrets/getSecret/action` and
  `secrets/readMetadata/action`; Key Vault Secrets Officer = `secrets/*` (plus control-plane reads);
  Key Vault Reader = `*/readMetadata/action` style metadata reads (secrets: `secrets/readMetadata/action`);
  Key Vault Administrator = `vaults/*`.
- [doc] "Azure resource provider operations" (Microsoft.KeyVault data actions): `secrets/readMetadata/action`
  "List or view the properties of a secret, but not its value", `secrets/getSecret/action`,
  `secrets/setSecret/action`, `secrets/update/action`, `secrets/delete`, `secrets/recover/action`,
  `secrets/purge/action`.
- [field] the 403 body (NOTES.md §2.3; piyushsachdeva/Terraform_AKS#2, hashicorp/terraform-provider-azurerm
  issues): code `Forbidden`, innererror `ForbiddenByRbac`, message lines "Caller is not authorized to perform
  action on resource." ... "Caller: appid=..;oid=..;iss=.." "Action: '<data action>'" "Resource: '<ARM id>'"
  "Assignment: (not found)" "DenyAssignmentId: null" "DecisionReason: 'DeniedWithNoValidRBAC' " "Vault: <name>;
  location=<region>", each ended by \\r\\n.

Scopes: an assignment is on the vault ("/") or on one secret ("/secrets/<name>", as a per-secret assignment
is); a secret-scope assignment covers only operations on that secret, so listing the vault needs a vault-scope
one. Role assignment propagation delays are not modelled.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any

from tests.emulators.keyvault import rules

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"  # only words the 403's Resource line
_S = "Microsoft.KeyVault/vaults/secrets"
DATA_ACTIONS: dict[str, str] = {
    "secret.list": f"{_S}/readMetadata/action",
    "secret.versions": f"{_S}/readMetadata/action",
    "deleted.list": f"{_S}/readMetadata/action",
    "deleted.get": f"{_S}/readMetadata/action",
    "secret.get": f"{_S}/getSecret/action",
    "secret.set": f"{_S}/setSecret/action",
    "secret.update": f"{_S}/update/action",
    "secret.delete": f"{_S}/delete",
    "deleted.recover": f"{_S}/recover/action",
    "deleted.purge": f"{_S}/purge/action",
}
# Only the secrets part of each built-in role's dataActions (the roles also cover keys/certificates or nothing).
ROLES: dict[str, tuple[str, ...]] = {
    "Key Vault Secrets User": (f"{_S}/getSecret/action", f"{_S}/readMetadata/action"),
    "Key Vault Secrets Officer": (f"{_S}/*",),
    "Key Vault Reader": (f"{_S}/readMetadata/action",),
    "Key Vault Administrator": ("Microsoft.KeyVault/vaults/*",),
}


@dataclass(frozen=True)
class Assignment:
    principal_id: str
    role: str
    scope: str = "/"  # "/" = the vault, "/secrets/<name>" = one secret

    def grants(self, action: str, secret: str | None) -> bool:
        if self.scope != "/" and (secret is None or self.scope.lower() != f"/secrets/{secret}".lower()):
            return False
        return any(fnmatch.fnmatchcase(action, pattern) for pattern in ROLES[self.role])


def parse_assignments(raw: Any) -> tuple[Assignment, ...]:
    if not isinstance(raw, list):
        raise ValueError("role_assignments: expected a list of {principalId, role, scope}")
    out = []
    for item in raw:
        if not isinstance(item, dict) or set(item) - {"principalId", "role", "scope"}:
            raise ValueError("role_assignments: each item is {principalId, role, scope?}")
        role, scope = item.get("role"), item.get("scope", "/")
        if role not in ROLES:
            raise ValueError(f"role_assignments: role must be one of {sorted(ROLES)}, got {role!r}")
        if not isinstance(scope, str) or not (scope == "/" or scope.startswith("/secrets/")):
            raise ValueError('role_assignments: scope must be "/" or "/secrets/<name>"')
        out.append(Assignment(str(item.get("principalId")), role, scope))
    return tuple(out)


def check(
    assignments: tuple[Assignment, ...], op: str, secret: str | None, claims: dict[str, Any], vault: str, tenant: str
) -> None:
    """Raise Key Vault's 403 ForbiddenByRbac unless an assignment of the caller (`oid`) grants the action."""
    action = DATA_ACTIONS.get(op)
    if action is None:
        return  # not a secrets operation (the challenge, an unknown route): nothing to authorize
    oid = str(claims.get("oid") or "")
    if any(a.principal_id == oid and a.grants(action, secret) for a in assignments):
        return
    resource = f"/subscriptions/{SUBSCRIPTION}/resourcegroups/rg-emulator/providers/microsoft.keyvault/vaults/{vault}"
    if secret is not None:
        resource += f"/secrets/{secret}"
    message = "\r\n".join(
        [
            "Caller is not authorized to perform action on resource.",
            "If role assignments, deny assignments or role definitions were changed recently, please observe "
            "propagation time.",
            f"Caller: appid={claims.get('appid')};oid={oid};iss=https://sts.windows.net/{tenant}/",
            f"Action: '{action}'",
            f"Resource: '{resource}'",
            "Assignment: (not found)",
            "DenyAssignmentId: null",
            "DecisionReason: 'DeniedWithNoValidRBAC' ",
            f"Vault: {vault};location=emulator",
            "",
        ]
    )
    raise rules.fail(403, "Forbidden", message, "ForbiddenByRbac")
