"""Print the `az role assignment create` commands that give keyvault-sync's identity exactly the seed secrets on
its allowlist: Key Vault Secrets User per secret (scope <vault id>/secrets/<name>) and Key Vault Reader on the
vault (names and metadata for the job's list calls, never a value). With these, and no vault-wide Secrets User,
adding a name to the allowlist ConfigMap does not let the job (or anyone running as its ServiceAccount) read
that secret: the read answers 403 until someone with rights on the seed vault adds its assignment.

    python -m jobs.keyvault_sync.role_assignments --values-file my-values.yaml \\
        --vault-id /subscriptions/<sub>/resourceGroups/<rg>/providers/Microsoft.KeyVault/vaults/<seed vault> \\
        --assignee-object-id <principal id of keyvault-sync's managed identity>

--allowlist-file takes the allowlist as the job reads it (CWJ_ALLOWLIST_FILE) instead of a chart values file.
Pure: reads the file, prints; calls nothing. Bad input: one line naming the flag, exit 2.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from jobs.keyvault_sync.allowlist import Allowlist, AllowlistError, load_allowlist, parse_allowlist
from jobs.keyvault_sync.roles import SEED_SECRET_ROLE, SEED_VAULT_ROLE

PROG = "python -m jobs.keyvault_sync.role_assignments"
VAULT_ID = re.compile(
    r"/subscriptions/[0-9a-fA-F-]{36}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.KeyVault/vaults/[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]",
    re.IGNORECASE,
)
OBJECT_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
VALUES_PATH = "jobs.keyvaultSync.settings.allowlist"


class UsageError(ValueError):
    """One line: the flag and what was expected."""


@dataclass(frozen=True)
class Assignment:
    role: str
    scope: str


def seed_assignments(allowlist: Allowlist, vault_id: str) -> tuple[Assignment, ...]:
    """Reader on the vault, then Secrets User on each distinct source secret in allowlist order. Sources only:
    a target name is a cluster-vault secret. Key Vault compares names case-insensitively, so `Db` and `db`
    are one secret and get one assignment."""
    seen: set[str] = set()
    per_secret = []
    for entry in allowlist.entries:
        if entry.source.lower() not in seen:
            seen.add(entry.source.lower())
            per_secret.append(Assignment(SEED_SECRET_ROLE, f"{vault_id}/secrets/{entry.source}"))
    return (Assignment(SEED_VAULT_ROLE, vault_id), *per_secret)


def az_command(assignment: Assignment, assignee_object_id: str) -> str:
    """--assignee-object-id with the principal type: az then needs no Microsoft Graph lookup."""
    return shlex.join([
        "az", "role", "assignment", "create", "--assignee-object-id", assignee_object_id,
        "--assignee-principal-type", "ServicePrincipal", "--role", assignment.role, "--scope", assignment.scope,
    ])  # fmt: skip


def allowlist_from_values(path: str) -> Allowlist:
    """The chart's jobs.keyvaultSync.settings.allowlist, validated by the job's own parser. Entries must be
    strings, as the chart's schema demands (an unquoted 2024 is the number 2024, not the name "2024")."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise UsageError(f"--values-file: expected a readable YAML file, cannot read {path!r}: {exc}") from None
    node = values
    for key in VALUES_PATH.split("."):
        node = node.get(key) if isinstance(node, dict) else None
    if not isinstance(node, list) or not node:
        raise UsageError(f"--values-file: expected a non-empty list at {VALUES_PATH} in {path!r}")
    for index, item in enumerate(node):
        fields = item.values() if isinstance(item, dict) else [item]
        if not all(isinstance(f, str) for f in fields):
            raise UsageError(f"--values-file: {VALUES_PATH}[{index}]: expected names as strings, got {item!r}")
    try:
        return parse_allowlist(yaml.safe_dump(node), f"{path}:{VALUES_PATH}")
    except AllowlistError as exc:
        raise UsageError(f"--values-file: {exc}") from None


def read_allowlist(args: argparse.Namespace) -> Allowlist:
    if (args.allowlist_file is None) == (args.values_file is None):
        raise UsageError("--allowlist-file or --values-file: expected exactly one of the two")
    if args.values_file is not None:
        return allowlist_from_values(args.values_file)
    try:
        return load_allowlist(args.allowlist_file)
    except AllowlistError as exc:
        raise UsageError(f"--allowlist-file: {exc}") from None


def checked(flag: str, value: str, rule: re.Pattern[str], expected: str) -> str:
    if not rule.fullmatch(value):
        raise UsageError(f"{flag}: expected {expected}, got {value!r}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--allowlist-file", help="the allowlist as the job reads it (CWJ_ALLOWLIST_FILE)")
    p.add_argument("--values-file", help=f"a chart values file; its {VALUES_PATH} is read")
    p.add_argument("--vault-id", required=True, help="resource id of the seed vault (az keyvault show --query id)")
    p.add_argument(
        "--assignee-object-id", required=True, help="principal (object) id of keyvault-sync's managed identity"
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        allowlist = read_allowlist(args)
        vault_id = checked(
            "--vault-id", args.vault_id.rstrip("/"), VAULT_ID,
            "/subscriptions/<uuid>/resourceGroups/<group>/providers/Microsoft.KeyVault/vaults/<name>",
        )  # fmt: skip
        assignee = checked("--assignee-object-id", args.assignee_object_id, OBJECT_ID, "a UUID")
    except UsageError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    print("\n".join(az_command(a, assignee) for a in seed_assignments(allowlist, vault_id)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
