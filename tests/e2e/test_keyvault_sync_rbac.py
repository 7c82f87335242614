"""keyvault-sync under Key Vault's data-plane RBAC (tests/emulators/keyvault/rbac.py): the README's role
assignments are exactly what the job needs, and a wrong one is a clear exit 1 with nothing half-written.

"Half-written" means: a target secret whose value and tags disagree (a value from one seed version under
another version's tags), or a run that goes on writing after the vault refused a write for want of a role
(each later write would be refused the same way, or -- with a custom role that grants some writes and not
others -- leave some secrets updated and others not for a reason the report would bury). Every write the job
makes is one atomic request (a PUT carries value and tags together, a PATCH only properties), and the first
ForbiddenByRbac stops the run's writes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

from jobs.keyvault_sync.plan import OWNER_TAG, OWNER_VALUE
from lib.clients.azure_auth import azure_credential
from tests.conftest import Control
from tests.e2e.test_keyvault_sync import allowlist, new_value, report, results, settle, sync
from tests.emulators.keyvault.rbac import DATA_ACTIONS, ROLES
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

SOURCE, TARGET = "keyvault_source", "keyvault_target"
README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| keyvault-sync \| \*\*(?P<role>[^*]+)\*\* \| (?P<scope>[^|]+) \| (?P<why>[^|]+) \|$")
PREFIX = "Microsoft.KeyVault/vaults/"


def readme_roles() -> dict[str, tuple[str, set[str]]]:
    """{vault service: (role, data actions the README says the job uses there)} from the README's table."""
    out = {}
    for line in README.read_text().splitlines():
        m = ROW.match(line)
        if m:
            service = SOURCE if "seed vault" in m["scope"] else TARGET
            out[service] = (m["role"], {PREFIX + a for a in re.findall(r"`(secrets/[^`]+)`", m["why"])})
    assert set(out) == {SOURCE, TARGET}, "README: expected one keyvault-sync row per vault"
    return out


def readme_commands() -> dict[str, str]:
    """The `az role assignment create` lines for keyvault-sync: {vault service: role}."""
    found = re.findall(
        r'--assignee <keyvault-sync principal id> --role "([^"]+)" --scope <(seed|cluster) vault id>',
        README.read_text(),
    )
    return {SOURCE if scope == "seed" else TARGET: role for role, scope in found}


def assign(platform: Platform, control: Control, roles: dict[str, str]) -> None:
    principal = platform.baseline.principal_id(platform.baseline.jobs_identity)
    for service in (SOURCE, TARGET):
        granted = [{"principalId": principal, "role": roles[service], "scope": "/"}] if service in roles else []
        control.configure(service, role_assignments=granted)


def data_actions_used(control: Control, service: str) -> set[str]:
    return {DATA_ACTIONS[e["op"]] for e in control.requests(service)["log"] if e["op"] in DATA_ACTIONS}


def clients(platform: Platform) -> tuple[SecretClient, SecretClient]:
    credential = azure_credential(os.environ)
    return (
        SecretClient(platform.kv_source.url, credential, verify_challenge_resource=False),
        SecretClient(platform.kv_target.url, credential, verify_challenge_resource=False),
    )


def test_the_readme_roles_are_exactly_what_every_path_of_the_job_needs(
    tmp_path: Path, env: dict[str, str], platform: Platform, control: Control
) -> None:
    documented = readme_roles()
    assert readme_commands() == {s: role for s, (role, _) in documented.items()}  # the table and the commands agree
    source, target = clients(platform)
    for name in ("copied", "recovered", "adopted", "changed"):
        source.set_secret(name, new_value(name))
    equal = new_value("adopted-equal")
    source.set_secret("adopted", equal)
    target.set_secret("adopted", equal)  # not ours, same value: adopted by tagging
    target.set_secret("orphan", new_value("orphan"), tags={OWNER_TAG: OWNER_VALUE})  # ours, not allowlisted
    path = allowlist(tmp_path, "copied", "recovered", "adopted", "changed")
    settle(control)
    readme = {service: role for service, (role, _) in documented.items()}

    assign(platform, control, readme)
    control.clear_requests()
    first = sync(env, "--allowlist-file", path, "--prune")
    assert first.returncode == 0, first.stderr
    used = {service: data_actions_used(control, service) for service in (SOURCE, TARGET)}
    assign(platform, control, {SOURCE: "Key Vault Secrets Officer", TARGET: "Key Vault Secrets Officer"})
    target.begin_delete_secret("recovered").result()
    source.update_secret_properties("changed", tags={"rotated": "no", "owner": "sre"})
    settle(control)
    assign(platform, control, readme)
    control.clear_requests()  # the test's own changes above are not the job's
    second = sync(env, "--allowlist-file", path, "--prune")
    assert second.returncode == 0, second.stderr
    kinds = {**results(report(first)), **results(report(second))}
    assert {k.split(".")[0] for k in kinds.values()} >= {"copy", "adopt", "prune", "recover-copy", "update"}, kinds

    for service, (role, actions) in documented.items():
        both = used[service] | data_actions_used(control, service)
        assert both == actions, f"{service}: the README lists {sorted(actions)}, the job used {sorted(both)}"
        assert all(any(re.fullmatch(p.replace("*", ".*"), a) for p in ROLES[role]) for a in both)
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
) -> None:
    source, target = clients(platform)
    names = [f"app-{i}" for i in range(5)]
    for name in names:
        source.set_secret(name, new_value(name))
    assign(platform, control, roles)
    control.clear_requests()
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, *names))
    assert proc.returncode == 1
    outcomes: list[dict[str, Any]] = report(proc)["outcomes"]
    first, *rest = outcomes
    assert first["result"] == "failed"
    assert f"{vault} vault:" in first["detail"] and "403 Forbidden/ForbiddenByRbac" in first["detail"]
    assert f"lacks the data action {PREFIX}{action}" in first["detail"], first["detail"]
    assert all(o["result"] == "failed" and o["detail"].startswith("not attempted: ") for o in rest)
    assert len(rest) == len(names) - 1
    refused = [e for e in control.requests()["log"] if e["status"] == 403]
    assert len(refused) == 1  # one refusal, then no further write was tried
    assign(platform, control, {TARGET: "Key Vault Secrets Officer"})
    assert list(target.list_properties_of_secrets()) == []  # nothing written
