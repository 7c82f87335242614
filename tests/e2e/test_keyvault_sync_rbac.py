"""keyvault-sync under Key Vault's data-plane RBAC (tests/emulators/keyvault/rbac.py): the README's role
assignments are exactly what the job needs, and a wrong one is a clear exit 1 with nothing half-written.

"Half-written" means: a target secret whose value and tags disagree (a value from one seed version under
another version's tags), or a run that goes on writing after the vault refused a write for want of a role
(each later write would be refused the same way, or -- with a custom role that grants some writes and not
others -- leave some secrets updated and others not for a reason the report would bury). Every write the job
makes is one atomic request (a PUT carries value and tags together, a PATCH only properties), and the cluster
vault's first ForbiddenByRbac stops the run's writes. The seed vault's read grants are per secret (README
"Azure"), so a refused seed read fails that entry alone, before any write for it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

from jobs.keyvault_sync.allowlist import load_allowlist
from jobs.keyvault_sync.plan import OWNER_TAG, OWNER_VALUE
from jobs.keyvault_sync.role_assignments import seed_assignments
from tests.conftest import Control
from tests.e2e.test_keyvault_sync import allowlist, new_value, report, results, settle, sync
from tests.emulators.keyvault.rbac import DATA_ACTIONS, ROLES
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

SOURCE, TARGET = "keyvault_source", "keyvault_target"
README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| keyvault-sync \| \*\*(?P<role>[^*]+)\*\* \| (?P<scope>[^|]+) \| (?P<why>[^|]+) \|$")
PREFIX = "Microsoft.KeyVault/vaults/"


Grant = tuple[str, str]  # (built-in role, scope): "/" is the vault, "/secrets/<name>" one secret


def readme_rows() -> list[tuple[str, str, bool, set[str]]]:
    """(vault service, role, per secret?, data actions the README says the job uses there) from its table."""
    rows = []
    for line in README.read_text().splitlines():
        m = ROW.match(line)
        if m:
            service = SOURCE if "seed" in m["scope"] else TARGET
            actions = {PREFIX + a for a in re.findall(r"`(secrets/[^`]+)`", m["why"])}
            rows.append((service, m["role"], "/secrets/<name>" in m["scope"], actions))
    assert {row[0] for row in rows} == {SOURCE, TARGET}, "README: expected keyvault-sync rows for both vaults"
    return rows


def readme_grants(names: list[str]) -> dict[str, list[Grant]]:
    """What the README's table assigns for an allowlist of `names`: a per-secret row once per secret."""
    grants: dict[str, list[Grant]] = {SOURCE: [], TARGET: []}
    for service, role, per_secret, _ in readme_rows():
        grants[service] += [(role, f"/secrets/{n}") for n in names] if per_secret else [(role, "/")]
    return grants


def readme_actions() -> dict[str, set[str]]:
    out: dict[str, set[str]] = {SOURCE: set(), TARGET: set()}
    for service, _, _, actions in readme_rows():
        out[service] |= actions
    return out


def command_grants(path: str) -> dict[str, list[Grant]]:
    """What the README's commands assign: the cluster vault's `az` line, and the seed vault's lines as
    `python -m jobs.keyvault_sync.role_assignments` prints them for this allowlist."""
    found = re.findall(
        r'--assignee <keyvault-sync principal id> --role "([^"]+)" --scope <(seed|cluster) vault id>',
        README.read_text(),
    )
    vault_id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/seed"
    seed = [(a.role, a.scope.removeprefix(vault_id) or "/") for a in seed_assignments(load_allowlist(path), vault_id)]
    seed += [(role, "/") for role, scope in found if scope == "seed"]
    return {SOURCE: seed, TARGET: [(role, "/") for role, scope in found if scope == "cluster"]}


def assign(platform: Platform, control: Control, grants: dict[str, list[Grant]]) -> None:
    principal = platform.baseline.principal_id(platform.baseline.jobs_identity)
    for service in (SOURCE, TARGET):
        granted = [{"principalId": principal, "role": r, "scope": sc} for r, sc in grants.get(service, [])]
        control.configure(service, role_assignments=granted)


def vault_wide(roles: dict[str, str]) -> dict[str, list[Grant]]:
    return {service: [(role, "/")] for service, role in roles.items()}


def data_actions_used(control: Control, service: str) -> set[str]:
    return {DATA_ACTIONS[e["op"]] for e in control.requests(service)["log"] if e["op"] in DATA_ACTIONS}


def test_the_readme_roles_are_exactly_what_every_path_of_the_job_needs(
    tmp_path: Path, env: dict[str, str], platform: Platform, control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    for name in ("copied", "recovered", "adopted", "changed"):
        source.set_secret(name, new_value(name))
    equal = new_value("adopted-equal")
    source.set_secret("adopted", equal)
    target.set_secret("adopted", equal)  # not ours, same value: adopted by tagging
    target.set_secret("orphan", new_value("orphan"), tags={OWNER_TAG: OWNER_VALUE})  # ours, not allowlisted
    names = ["copied", "recovered", "adopted", "changed"]
    path = allowlist(tmp_path, *names)
    settle(control)
    readme = readme_grants(names)
    assert sorted(command_grants(path)[SOURCE]) == sorted(readme[SOURCE])  # the table and the commands agree
    assert command_grants(path)[TARGET] == readme[TARGET]

    assign(platform, control, readme)
    control.clear_requests()
    first = sync(env, "--allowlist-file", path, "--prune")
    assert first.returncode == 0, first.stderr
    used = {service: data_actions_used(control, service) for service in (SOURCE, TARGET)}
    assign(platform, control, vault_wide({SOURCE: "Key Vault Secrets Officer", TARGET: "Key Vault Secrets Officer"}))
    target.begin_delete_secret("recovered").result()
    source.update_secret_properties("changed", tags={"rotated": "no", "owner": "sre"})
    settle(control)
    assign(platform, control, readme)
    control.clear_requests()  # the test's own changes above are not the job's
    second = sync(env, "--allowlist-file", path, "--prune")
    assert second.returncode == 0, second.stderr
    kinds = {**results(report(first)), **results(report(second))}
    assert {k.split(".")[0] for k in kinds.values()} >= {"copy", "adopt", "prune", "recover-copy", "update"}, kinds

    for service, actions in readme_actions().items():
        both = used[service] | data_actions_used(control, service)
        assert both == actions, f"{service}: the README lists {sorted(actions)}, the job used {sorted(both)}"
        roles = {role for role, _ in readme[service]}
        assert all(any(re.fullmatch(p.replace("*", ".*"), a) for r in roles for p in ROLES[r]) for a in both)
    # ...and no smaller built-in role would do: Secrets User cannot set, Reader cannot read a value
    assert not {PREFIX + "secrets/setSecret/action"} <= set(ROLES["Key Vault Secrets User"])
    assert PREFIX + "secrets/getSecret/action" not in ROLES["Key Vault Reader"]


@pytest.mark.parametrize(
    ("roles", "vault", "action"),
    [
        ({SOURCE: "Key Vault Secrets User", TARGET: "Key Vault Secrets User"}, "target", "secrets/setSecret/action"),
        ({SOURCE: "Key Vault Reader", TARGET: "Key Vault Secrets Officer"}, "seed", "secrets/getSecret/action"),
    ],
    ids=["target-read-only", "seed-metadata-only"],
)
def test_a_missing_data_action_exits_1_naming_it_with_nothing_half_written(
    tmp_path: Path,
    env: dict[str, str],
    platform: Platform,
    control: Control,
    roles: dict[str, str],
    vault: str,
    action: str,
    vaults: tuple[SecretClient, SecretClient],
) -> None:
    source, target = vaults
    names = [f"app-{i}" for i in range(5)]
    for name in names:
        source.set_secret(name, new_value(name))
    assign(platform, control, vault_wide(roles))
    control.clear_requests()
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, *names))
    assert proc.returncode == 1
    outcomes: list[dict[str, Any]] = report(proc)["outcomes"]
    first, *rest = outcomes
    assert first["result"] == "failed"
    assert f"{vault} vault:" in first["detail"] and "403 Forbidden/ForbiddenByRbac" in first["detail"]
    assert f"lacks the data action {PREFIX}{action}" in first["detail"], first["detail"]
    refused = [e for e in control.requests()["log"] if e["status"] == 403]
    if vault == "target":  # the cluster vault's role is vault-wide: one refusal, then no further write is tried
        assert all(o["result"] == "failed" and o["detail"].startswith("not attempted: ") for o in rest)
        assert len(rest) == len(names) - 1 and len(refused) == 1
    else:  # the seed's grants are per secret: each entry is refused on its own read, none reaches a write
        assert all(o["result"] == "failed" and f"lacks the data action {PREFIX}{action}" in o["detail"] for o in rest)
        assert len(refused) == len(names) and {e["op"] for e in refused} == {"secret.get"}
        assert control.count(TARGET, "secret.set") == 0
    assign(platform, control, vault_wide({TARGET: "Key Vault Secrets Officer"}))
    assert list(target.list_properties_of_secrets()) == []  # nothing written
