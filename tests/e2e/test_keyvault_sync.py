"""keyvault-sync end to end: the console script against the seed and cluster Key Vault emulators, seeded and
checked through azure-keyvault-secrets like an SRE would. Numbers refer to the issue's "Done means" list.

Every job's stdout and stderr goes through `sync()`, which keeps it in CAPTURED; the last test asserts that no
seeded value appears in any of it (item 10).
"""

from __future__ import annotations

import json
import secrets
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.keyvault.secrets import SecretClient

from jobs.keyvault_sync.plan import OWNER_TAG, OWNER_VALUE, SOURCE_UPDATED_TAG, SOURCE_VERSION_TAG
from tests.conftest import Control, run_job
from tests.pushgateway import Pushgateway

pytestmark = pytest.mark.e2e

SOURCE, TARGET = "keyvault_source", "keyvault_target"
WRITES = ("secret.set", "secret.update", "secret.delete", "deleted.recover", "deleted.purge")
CAPTURED: list[str] = []  # every stdout/stderr of every run in this module
SEEDED: list[str] = []  # every value written into either vault


def new_value(label: str) -> str:
    value = f"{label}-{secrets.token_urlsafe(18)}"
    SEEDED.append(value)
    return value


def allowlist(tmp_path: Path, *entries: str | tuple[str, str], name: str = "allowlist.yaml") -> str:
    lines = [f"- {e}" if isinstance(e, str) else f"- {{source: {e[0]}, target: {e[1]}}}" for e in entries]
    path = tmp_path / name
    path.write_text("# the curated allowlist\n" + "\n".join(lines) + "\n")
    return str(path)


def sync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    proc = run_job("keyvault-sync", "--output", "json", "--log-format", "json", *args, env=env)
    CAPTURED.extend([proc.stdout, proc.stderr])
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def report(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"exit {proc.returncode}, stdout is not JSON:\n{proc.stdout}\n{proc.stderr}")
    return document


def results(doc: dict[str, Any]) -> dict[str, str]:
    return {o["target"]: f"{o['kind']}.{o['result']}" for o in doc["outcomes"]}


def findings(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["severity"], f["rule"], f["subject"]) for f in doc["findings"]}


def writes(control: Control, service: str = TARGET) -> int:
    return sum(control.count(service, op) for op in WRITES)


def rotate_later(control: Control) -> None:
    """Let the next seed version be created in a later second than the previous one, as a real rotation is.
    (Versions created within one second tie on `created`, and the job then reads the value to learn which is
    current.) The emulated clock moves; no test waits in real time."""
    control.advance(2)


def settle(control: Control) -> None:
    """Let the seed's clock move past the last seed change before the next run, as it has in production
    between an SRE's change and the next scheduled run: a copy made in the same second as the change it copies
    cannot record SOURCE_UPDATED_TAG (detect.py), and the next run would check that secret's versions once more."""
    control.advance(3)


def seed_many(source: SecretClient, count: int) -> dict[str, str]:
    values = {}
    expiry = datetime.now(UTC).replace(microsecond=0) + timedelta(days=90)
    for i in range(count):
        name = f"app-secret-{i:02d}"
        values[name] = new_value(name)
        extra: dict[str, Any] = {"expires_on": expiry, "not_before": expiry - timedelta(days=365)} if i % 3 == 0 else {}
        source.set_secret(
            name, values[name], content_type="text/plain" if i % 2 else None, tags={"team": f"t{i % 4}"}, **extra
        )
    return values


# ---- 1 and 11: copy everything, then nothing; dry-run writes nothing -------------------------------------------


def test_fifty_secrets_copied_with_their_properties_then_a_quiet_second_run(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    values = seed_many(source, 50)
    path = allowlist(tmp_path, *values)
    settle(control)
    control.clear_requests()

    dry = sync(env, "--allowlist-file", path, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [a["kind"] for a in report(dry)["actions"]] == ["copy"] * 50
    assert writes(control) == 0 and control.count(SOURCE, "secret.get") == 0  # 11: dry-run writes nothing

    first = sync(env, "--allowlist-file", path)
    assert first.returncode == 0, first.stderr
    assert set(results(report(first)).values()) == {"copy.ok"}
    assert control.count(TARGET, "secret.set") == 50
    assert control.count(SOURCE, "secret.get") == 50

    for name, value in values.items():
        want, got = source.get_secret(name), target.get_secret(name)
        assert got.value == value
        assert got.properties.content_type == want.properties.content_type
        assert got.properties.tags == {
            **(want.properties.tags or {}),
            OWNER_TAG: OWNER_VALUE,
            SOURCE_VERSION_TAG: want.properties.version,
            SOURCE_UPDATED_TAG: str(int(want.properties.updated_on.timestamp())),  # type: ignore[union-attr]
        }
        assert got.properties.enabled is True
        assert got.properties.expires_on == want.properties.expires_on
        assert got.properties.not_before == want.properties.not_before

    control.clear_requests()
    second = sync(env, "--allowlist-file", path)
    assert second.returncode == 0, second.stderr
    assert report(second)["outcomes"] == []
    assert writes(control) == 0
    assert control.count(SOURCE, "secret.get") == 0 and control.count(TARGET, "secret.get") == 0
    # the no-op bound: both vaults' list pages (25 per page) and the deleted list, no versions list
    assert control.count(SOURCE) - control.count(SOURCE, "challenge") == control.count(SOURCE, "secret.list") == 2
    assert control.count(TARGET, "secret.list") == 2 and control.count(SOURCE, "secret.versions") == 0


# ---- 2: only new seed versions are read and written ------------------------------------------------------------


def test_three_new_seed_versions_mean_three_reads_and_three_writes(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    values = seed_many(source, 10)
    path = allowlist(tmp_path, *values)
    settle(control)
    assert sync(env, "--allowlist-file", path).returncode == 0
    rotate_later(control)
    rotated = ["app-secret-01", "app-secret-04", "app-secret-07"]
    for name in rotated:
        values[name] = new_value(name)
        source.set_secret(name, values[name], tags={"team": "rotated"})
    settle(control)
    control.clear_requests()

    proc = sync(env, "--allowlist-file", path)
    assert proc.returncode == 0, proc.stderr
    assert results(report(proc)) == dict.fromkeys(rotated, "copy.ok")
    assert control.count(SOURCE, "secret.get") == 3
    assert control.count(SOURCE, "secret.versions") == 3  # the per-secret check, only where the lists differ
    assert control.count(TARGET, "secret.set") == 3
    assert writes(control) == 3
    for name in rotated:
        assert target.get_secret(name).value == values[name]
    control.clear_requests()
    assert report(sync(env, "--allowlist-file", path))["outcomes"] == []
    assert control.count(SOURCE, "secret.get") == 0 and writes(control) == 0


# ---- 3: soft-deleted target ------------------------------------------------------------------------------------


def test_a_soft_deleted_target_is_recovered_and_updated_in_one_run(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    source.set_secret("db-password", new_value("db"))
    source.set_secret("api-key", new_value("api"))
    path = allowlist(tmp_path, "db-password", "api-key")
    assert sync(env, "--allowlist-file", path).returncode == 0
    target.begin_delete_secret("db-password").result()
    target.begin_delete_secret("api-key").result()
    rotate_later(control)
    rotated = new_value("db2")
    source.set_secret("db-password", rotated)
    # real Key Vault is eventually consistent after a recover: reads 404, writes 409 ObjectIsBeingRecovered
    control.configure(TARGET, recover_read_delay_seconds=1, recover_write_delay_seconds=2)
    control.clear_requests()

    proc = sync(env, "--allowlist-file", path)
    assert proc.returncode == 0, proc.stderr
    assert results(report(proc)) == {"db-password": "recover-copy.ok", "api-key": "recover-copy.ok"}
    assert control.count(TARGET, "deleted.recover") == 2
    statuses = [e["status"] for e in control.requests(TARGET, "secret.set")["log"]]
    assert statuses.count(200) == 1, statuses  # api-key came back already current: no new version
    assert 409 in statuses and statuses[-1] == 200, statuses  # ObjectIsBeingRecovered was retried, not fatal
    assert target.get_secret("db-password").value == rotated


# ---- 4 and 5: missing and disabled seed secrets ------------------------------------------------------------------


def test_a_missing_seed_secret_fails_the_run_and_every_other_entry_is_synced(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    for name in ("first", "last"):
        source.set_secret(name, new_value(name))
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, "first", "never-seeded", "last"))
    assert proc.returncode == 1
    doc = report(proc)
    assert ("error", "source-missing", "never-seeded") in findings(doc)
    assert results(doc) == {"first": "copy.ok", "last": "copy.ok"}
    assert {p.name for p in target.list_properties_of_secrets()} == {"first", "last"}


def test_a_disabled_seed_secret_is_skipped_with_a_warning(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, _ = vaults
    source.set_secret("paused", new_value("paused"), enabled=False)
    source.set_secret("live", new_value("live"))
    control.clear_requests()
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, "paused", "live"))
    assert proc.returncode == 0, proc.stderr
    doc = report(proc)
    assert findings(doc) == {("warning", "source-disabled", "paused")}
    assert results(doc) == {"live": "copy.ok"}
    assert control.count(SOURCE, "secret.get") == 1  # never tried to read the disabled one (it would 403)


# ---- 6: secrets this job did not write ------------------------------------------------------------------------


def test_unmanaged_targets_are_adopted_only_when_equal_or_with_adopt(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    same, seeded, theirs = new_value("same"), new_value("seeded"), new_value("theirs")
    source.set_secret("same", same, content_type="text/plain")
    source.set_secret("differs", seeded)
    target.set_secret("same", same, tags={"owner": "hand-made"})
    target.set_secret("differs", theirs)
    path = allowlist(tmp_path, "same", "differs")
    settle(control)

    dry = sync(env, "--allowlist-file", path, "--dry-run")
    assert [(a["kind"], a["target"]) for a in report(dry)["actions"]] == [("adopt", "same"), ("adopt", "differs")]

    control.clear_requests()
    refused = sync(env, "--allowlist-file", path)
    assert refused.returncode == 1
    doc = report(refused)
    assert ("error", "unmanaged-conflict", "differs") in findings(doc)
    assert results(doc) == {"same": "adopt.ok", "differs": "adopt.skipped"}
    assert target.get_secret("differs").value == theirs
    assert control.count(TARGET, "secret.set") == 0 and control.count(TARGET, "secret.update") == 1
    adopted = list(target.list_properties_of_secret_versions("same"))
    assert len(adopted) == 1  # tagged, no new version
    assert adopted[0].tags and adopted[0].tags[OWNER_TAG] == OWNER_VALUE
    assert adopted[0].content_type == "text/plain"

    overwritten = sync(env, "--allowlist-file", path, "--adopt")
    assert overwritten.returncode == 0, overwritten.stderr
    assert results(report(overwritten)) == {"differs": "adopt.ok"}
    assert target.get_secret("differs").value == seeded
    assert sync(env, "--allowlist-file", path).returncode == 0  # ours now: the plain run is quiet again


# ---- 7: prune -----------------------------------------------------------------------------------------------


def test_prune_removes_only_our_secrets_that_left_the_allowlist(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    for name in ("keep", "drop-1", "drop-2"):
        source.set_secret(name, new_value(name))
    target.set_secret("hand-made", new_value("hand"))
    settle(control)
    assert sync(env, "--allowlist-file", allowlist(tmp_path, "keep", "drop-1", "drop-2")).returncode == 0
    shorter = allowlist(tmp_path, "keep", name="shorter.yaml")
    control.clear_requests()

    without = sync(env, "--allowlist-file", shorter)
    assert without.returncode == 0, without.stderr
    assert findings(report(without)) == {("info", "orphan", "drop-1"), ("info", "orphan", "drop-2")}
    assert writes(control) == 0

    pruned = sync(env, "--allowlist-file", shorter, "--prune")
    assert pruned.returncode == 0, pruned.stderr
    assert results(report(pruned)) == {"drop-1": "prune.ok", "drop-2": "prune.ok"}
    assert {p.name for p in target.list_properties_of_secrets()} == {"keep", "hand-made"}
    assert {d.name for d in target.list_deleted_secrets()} == {"drop-1", "drop-2"}  # soft-deleted, recoverable


# ---- 8: malformed allowlists --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("- fine\n- [oops\n", "bad.yaml:3: expected valid YAML"),
        ("- fine\n- not_valid\n", "bad.yaml:2: invalid Key Vault secret name 'not_valid'"),
        ("- a\n- source: b\n  target: a\n", "bad.yaml:2: two sources onto one target"),
        ("- a\n- b\n- a\n", "bad.yaml:3: duplicate entry for 'a'"),
    ],
)
def test_a_malformed_allowlist_exits_2_naming_the_line_before_any_request(
    tmp_path: Path, env: dict[str, str], control: Control, text: str, where: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    control.clear_requests()
    proc = sync(env, "--allowlist-file", str(path))
    assert proc.returncode == 2
    assert proc.stdout == ""
    line, summary = proc.stderr.strip().splitlines()  # one line naming the setting, then run.summary
    assert "--allowlist-file (CWJ_ALLOWLIST_FILE)" in line and where in line, line
    assert '"event": "run.summary"' in summary and '"exit_code": 2' in summary
    assert control.count(SOURCE) == control.count(TARGET) == control.count("entra") == 0


# ---- 9: throttling, transient errors, forbidden ------------------------------------------------------------------


def test_throttling_and_transient_errors_on_either_vault_converge(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, target = vaults
    values = seed_many(source, 4)
    control.fault(SOURCE, "secret.list", status=429, retry_after="1", count=1)
    control.fault(SOURCE, "secret.get", status=503, count=2)
    control.fault(TARGET, "secret.list", status=500, count=1)
    control.fault(TARGET, "secret.set", status=429, retry_after="1", count=2)
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, *values))
    assert proc.returncode == 0, proc.stderr
    assert set(results(report(proc)).values()) == {"copy.ok"}
    assert all(target.get_secret(name).value == value for name, value in values.items())
    retries = [json.loads(line) for line in proc.stderr.splitlines() if '"event": "retry"' in line]
    assert {r["client"] for r in retries} == {"keyvault"}  # the one retry shape every client logs
    assert sorted(r["status"] for r in retries) == [429, 429, 429, 500, 503, 503]
    assert {r["wait_s"] for r in retries if r["status"] == 429} == {1.0}  # Retry-After honoured


def test_a_name_added_to_the_allowlist_without_its_role_assignment_is_not_read(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    """README "Azure": the seed grants are per secret, so a name someone slipped into the allowlist ConfigMap
    gets Azure's RBAC 403 on its read (api-specs NOTES, Key Vault errors: code Forbidden, innererror
    ForbiddenByRbac, the getSecret action named), while the granted ones still copy. The run fails on it,
    names what the identity lacks, and writes nothing for it."""
    source, target = vaults
    granted, slipped = new_value("granted"), new_value("slipped-in")
    source.set_secret("granted", granted)
    source.set_secret("slipped-in", slipped)
    message = (
        "Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role "
        "definitions were changed recently, please observe propagation time.\r\nCaller: appid=6a7b8c9d;oid=0f1e2d3c"
        "\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nResource: "
        "'/subscriptions/3e9c4f5d/resourcegroups/rg-seed/providers/microsoft.keyvault/vaults/kv-seed/secrets/slipped-in'"
        "\r\nAssignment: (not found)\r\n"
    )
    body = json.dumps({"error": {"code": "Forbidden", "message": message, "innererror": {"code": "ForbiddenByRbac"}}})
    control.fault(SOURCE, "secret.get", status=403, count=None, match="/secrets/slipped-in", body=body)
    proc = sync(env, "--allowlist-file", allowlist(tmp_path, "slipped-in", "granted"))  # first: it stops nothing
    assert proc.returncode == 1
    outcomes = {o["target"]: o for o in report(proc)["outcomes"]}
    assert outcomes["granted"]["result"] == "ok" and target.get_secret("granted").value == granted
    failed = outcomes["slipped-in"]
    assert failed["result"] == "failed"
    assert "403 Forbidden/ForbiddenByRbac" in failed["detail"]
    assert "lacks the data action Microsoft.KeyVault/vaults/secrets/getSecret/action" in failed["detail"]
    assert failed["detail"].endswith(
        "it needs Key Vault Reader on this vault and Key Vault Secrets User on each allowlisted secret"
    )
    assert "slipped-in" not in {p.name for p in target.list_properties_of_secrets()}


def test_forbidden_on_the_target_is_a_clear_exit_1(
    tmp_path: Path, env: dict[str, str], control: Control, vaults: tuple[SecretClient, SecretClient]
) -> None:
    source, _ = vaults
    source.set_secret("one", new_value("one"))
    path = allowlist(tmp_path, "one")
    control.fault(TARGET, "secret.list", status=403, count=None, message="Caller is not authorized to perform action")
    proc = sync(env, "--allowlist-file", path)
    assert proc.returncode == 1
    last = [line for line in proc.stderr.splitlines() if line.startswith("keyvault-sync: failed")]
    assert last == [
        "keyvault-sync: failed: KeyVaultError: target vault: list secrets -> 403 Forbidden: Caller is not authorized "
        "to perform action (the job's identity needs the Key Vault Secrets Officer role on this vault)"
    ]

    control.clear_faults()
    control.fault(TARGET, "secret.set", status=403, count=None)
    proc = sync(env, "--allowlist-file", path)
    assert proc.returncode == 1
    (outcome,) = report(proc)["outcomes"]
    assert outcome["result"] == "failed" and "set one -> 403 Forbidden" in outcome["detail"]


def test_the_challenge_resource_is_verified_unless_the_test_only_setting_turns_it_off(
    tmp_path: Path, env: dict[str, str], control: Control
) -> None:
    """Production default: the SDK refuses a vault whose challenge names a domain the URL is not under
    (NOTES.md §2.4), so the job never sends a token to a look-alike host; only the emulators need it off."""
    production = {k: v for k, v in env.items() if k != "CWJ_KEYVAULT_VERIFY_CHALLENGE_RESOURCE"}
    proc = sync(production, "--allowlist-file", allowlist(tmp_path, "anything"))
    assert proc.returncode == 1
    assert "keyvault-sync: failed: KeyVaultError: seed vault: list secrets -> https://127.0.0.1:" in proc.stderr
    assert "an authentication challenge for a domain it is not under; check the vault URL" in proc.stderr
    assert control.count("entra") == 0  # refused before any token was requested


# ---- metrics ---------------------------------------------------------------------------------------------------


def test_metrics_are_pushed_with_names_only(
    tmp_path: Path, env: dict[str, str], vaults: tuple[SecretClient, SecretClient], pushgateway: Pushgateway
) -> None:
    source, _ = vaults
    source.set_secret("pushed", new_value("pushed"))
    listed = allowlist(tmp_path, "pushed", "absent")
    proc = sync({**env, **pushgateway.env}, "--allowlist-file", listed, "--pushgateway-url", pushgateway.url)
    assert proc.returncode == 1  # "absent" is not seeded
    CAPTURED.append(pushgateway.metrics())  # all the Pushgateway serves: checked for secret values below
    samples = pushgateway.samples("keyvault-sync")
    assert pushgateway.groups("keyvault-sync") == {("default", "")}  # a failed run: the run group only
    assert samples[("cwj_keyvault_sync_entries", (("state", "copy"),))] == 1
    assert samples[("cwj_keyvault_sync_entries", (("state", "source-missing"),))] == 1
    assert samples[("cwj_actions", (("kind", "copy"), ("result", "ok")))] == 1
    assert ("cwj_last_success_timestamp_seconds", ()) not in samples and samples[("cwj_last_run_exit_code", ())] == 1


# ---- 10: no value anywhere --------------------------------------------------------------------------------------


def test_no_seeded_value_appears_in_any_captured_output(
    tmp_path: Path, env: dict[str, str], vaults: tuple[SecretClient, SecretClient]
) -> None:
    """Runs last in this module; adds a debug-level run over adoption, overwrite and failure paths so the
    check never passes vacuously, then searches everything every test captured."""
    source, target = vaults
    source.set_secret("loud", new_value("loud"))
    target.set_secret("loud", new_value("other"))
    path = allowlist(tmp_path, "loud", "gone")
    for args in ([], ["--adopt"], ["--dry-run"]):
        sync(env, "--allowlist-file", path, "--log-level", "debug", *args)
        sync(env, "--allowlist-file", path, "--log-format", "console", "--output", "text", *args)
    assert len(CAPTURED) >= 6 and len(SEEDED) >= 2
    output = "\n".join(CAPTURED)
    leaked = [v for v in SEEDED if v in output]
    assert leaked == [], f"{len(leaked)} seeded value(s) leaked into job output"
