"""keyvault-sync's apply at scale (jobs/keyvault_sync/apply.py), the console script against the Key Vault
emulators: writes in parallel with the report in the plan's order, a run budget that defers what it cannot
start (exit 0, the next run finishes), and the first-refusal rule with several workers in flight.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient

from tests.conftest import Control
from tests.e2e.test_keyvault_sync import (
    SEEDED,
    allowlist,
    new_value,
    report,
    results,
    settle,
    sync,
    writes,
)
from tests.e2e.test_keyvault_sync_rbac import assign, vault_wide
from tests.e2e.test_output_schema import VALIDATOR
from tests.emulators.platform import Platform
from tests.pushgateway import SUCCESS, Pushgateway

pytestmark = pytest.mark.e2e

SOURCE, TARGET = "keyvault_source", "keyvault_target"


def seed(source: SecretClient, count: int, prefix: str = "app") -> dict[str, str]:
    values = {f"{prefix}-{i:02d}": new_value(f"{prefix}-{i:02d}") for i in range(count)}
    for name, value in values.items():
        source.set_secret(name, value)
    return values


def no_value_in(*texts: str) -> None:
    leaked = [v for v in SEEDED if any(v in text for text in texts)]
    assert leaked == [], f"{len(leaked)} seeded value(s) leaked into job output"


def answered(control: Control, op: str) -> list[str]:
    """Secret names of the target's `op` requests, in the order the vault answered them."""
    return [e["path"].split("?")[0].split("/")[2] for e in control.requests(TARGET, op)["log"]]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_slow_write_holds_back_no_other_and_the_report_keeps_the_plan_order(
    tmp_path: Path,
    env: dict[str, str],
    control: Control,
    vaults: tuple[SecretClient, SecretClient],
    workers: int,
) -> None:
    source, target = vaults
    values = seed(source, 12)
    names = list(values)
    path = allowlist(tmp_path, *names)
    settle(control)
    control.clear_requests()
    control.fault(TARGET, "secret.set", status=None, count=1, delay=2.0, match=f"/{names[1]}")  # the 2nd action
    proc = sync(env, "--allowlist-file", path, "--write-concurrency", str(workers))
    assert proc.returncode == 0, proc.stderr
    assert [o["target"] for o in report(proc)["outcomes"]] == names  # the plan's order, whatever finished first
    assert set(results(report(proc)).values()) == {"copy.ok"}
    order = answered(control, "secret.set")
    assert sorted(order) == names and order[0] == names[0]  # the first action runs alone
    if workers == 1:
        assert order == names  # one at a time: the slow write holds every later one back
    else:
        assert order.index(names[1]) >= workers  # the other workers went on while it was slow
    assert all(target.get_secret(name).value == value for name, value in values.items())
    no_value_in(proc.stdout, proc.stderr)


def test_a_budget_too_small_defers_the_rest_exits_0_and_the_next_run_finishes(
    tmp_path: Path,
    env: dict[str, str],
    control: Control,
    vaults: tuple[SecretClient, SecretClient],
    pushgateway: Pushgateway,
) -> None:
    source, target = vaults
    values = seed(source, 30)
    path = allowlist(tmp_path, *values)
    settle(control)
    control.clear_requests()
    # 1 new version/s after a burst of 5, and 10 s of which 5 s are the reserve: at most 5 + 5 of 30 copies (and
    # 5 s for the lists first, so a loaded machine still copies some)
    slow = ("--keyvault-creates-per-second", "1", "--max-run-seconds", "10")
    first = sync({**env, **pushgateway.env}, "--allowlist-file", path, *slow, "--pushgateway-url", pushgateway.url)
    assert first.returncode == 0, first.stderr  # deferral alone is not a failure
    doc = report(first)
    assert [o["target"] for o in doc["outcomes"]] == list(values)
    done = results(doc)
    deferred = [name for name, r in done.items() if r == "copy.deferred"]
    copied = [name for name, r in done.items() if r == "copy.ok"]
    assert len(deferred) + len(copied) == 30 and 0 < len(copied) <= 10, done
    spent = "run budget spent: the next run continues"
    assert all(o["detail"] == spent for o in doc["outcomes"] if o["result"] == "deferred")
    assert [(f["severity"], f["rule"]) for f in doc["findings"]] == [("warning", "deferred")]
    assert [e.message for e in VALIDATOR.iter_errors(doc)] == []  # deferrals fit docs/output.schema.json
    assert control.count(TARGET, "secret.set") == len(copied)  # nothing deferred was started
    assert {p.name for p in target.list_properties_of_secrets()} == set(copied)
    summary = json.loads(first.stderr.splitlines()[-1])
    assert summary["event"] == "run.summary" and summary["results"]["copy.deferred"] == len(deferred)
    body = pushgateway.metrics()  # all the Pushgateway serves: checked for secret values below
    samples = pushgateway.samples("keyvault-sync")
    assert samples[("cwj_keyvault_sync_deferred_actions", (("kind", "copy"),))] == len(deferred)
    assert samples[("cwj_actions", (("kind", "copy"), ("result", "deferred")))] == len(deferred)
    assert samples[("cwj_last_run_exit_code", ())] == 0  # a deferral is not a failure: the success group too
    assert ("cwj_last_success_timestamp_seconds", ()) in pushgateway.samples("keyvault-sync", group=SUCCESS)

    settle(control)
    second = sync(env, "--allowlist-file", path)  # the defaults: the whole rest fits
    assert second.returncode == 0, second.stderr
    assert results(report(second)) == dict.fromkeys(deferred, "copy.ok")
    assert all(target.get_secret(name).value == value for name, value in values.items())
    settle(control)
    control.clear_requests()
    assert report(sync(env, "--allowlist-file", path))["outcomes"] == [] and writes(control) == 0
    no_value_in(first.stdout, first.stderr, body, second.stdout, second.stderr)


def test_after_a_refusal_no_new_write_starts_and_those_in_flight_report_their_own_answer(
    tmp_path: Path,
    env: dict[str, str],
    platform: Platform,
    control: Control,
    vaults: tuple[SecretClient, SecretClient],
) -> None:
    """A custom-role-like assignment: the target vault may be listed (Reader on the vault) and only app-00 set
    (Secrets Officer on that one secret). The first action runs alone and succeeds; then the workers start,
    and the first 403 ForbiddenByRbac stops every write not yet sent: at most one refusal per worker."""
    source, target = vaults
    values = seed(source, 30)
    names = list(values)
    workers = 3
    principal = platform.baseline.principal_id(platform.baseline.jobs_identity)
    control.configure(SOURCE, role_assignments=[{"principalId": principal, "role": "Key Vault Secrets User"}])
    control.configure(
        TARGET,
        role_assignments=[
            {"principalId": principal, "role": "Key Vault Reader"},
            {"principalId": principal, "role": "Key Vault Secrets Officer", "scope": f"/secrets/{names[0]}"},
        ],
    )
    settle(control)
    control.clear_requests()
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, *names), "--write-concurrency", str(workers))
    assert proc.returncode == 1
    outcomes = report(proc)["outcomes"]
    assert [o["target"] for o in outcomes] == names
    assert outcomes[0]["result"] == "ok"
    skipped = [o for o in outcomes[1:] if o["detail"].startswith("not attempted: target vault: set ")]
    refused = [o for o in outcomes[1:] if o["detail"].startswith("target vault: set ")]
    assert all("403 Forbidden/ForbiddenByRbac" in o["detail"] for o in skipped + refused)
    assert all(o["result"] == "failed" for o in outcomes[1:]) and len(refused) + len(skipped) == len(names) - 1
    assert 1 <= len(refused) <= workers  # only the writes already in flight, each reporting its own 403
    sets = control.requests(TARGET, "secret.set")["log"]
    assert [e["status"] for e in sets].count(403) == len(refused) and len(sets) == 1 + len(refused)
    assign(platform, control, vault_wide({TARGET: "Key Vault Secrets Officer"}))
    assert {p.name for p in target.list_properties_of_secrets()} == {names[0]}
    no_value_in(proc.stdout, proc.stderr)
