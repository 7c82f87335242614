"""`python -m jobs.keyvault_sync.role_assignments`: per-secret role assignments on the seed vault, generated
from the allowlist (the chart's values or the job's own file), as `az` commands; bad input exits 2."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from jobs.keyvault_sync.allowlist import parse_allowlist
from jobs.keyvault_sync.role_assignments import PROG, main, seed_assignments
from tests.helm.chart import FULL

VAULT = (
    "/subscriptions/3e9c4f5d-6a7b-4c8d-9e9f-0a1b2c3d4e5f/resourceGroups/rg-seed"
    "/providers/Microsoft.KeyVault/vaults/kv-seed-prod"
)
PRINCIPAL = "0f1e2d3c-4b5a-4968-8776-655443322110"
REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The module as documented: `python -m ...` in a fresh interpreter."""
    argv = [sys.executable, "-m", "jobs.keyvault_sync.role_assignments", *args]
    return subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=60, check=False)


def parsed(stdout: str) -> list[dict[str, str]]:
    commands = []
    for line in stdout.splitlines():
        words = shlex.split(line)
        assert words[:4] == ["az", "role", "assignment", "create"], line
        commands.append(dict(zip(words[4::2], words[5::2], strict=True)))
    return commands


def test_the_full_example_values_give_reader_on_the_vault_and_secrets_user_per_source_secret() -> None:
    done = run("--values-file", str(FULL), "--vault-id", VAULT, "--assignee-object-id", PRINCIPAL)
    assert done.returncode == 0, done.stderr
    commands = parsed(done.stdout)
    assert [(c["--role"], c["--scope"]) for c in commands] == [
        ("Key Vault Reader", VAULT),
        ("Key Vault Secrets User", f"{VAULT}/secrets/github-app-private-key"),
        ("Key Vault Secrets User", f"{VAULT}/secrets/2024"),  # quoted in the values: a name, not a number
        ("Key Vault Secrets User", f"{VAULT}/secrets/artifactory-token"),  # the source, never the target name
    ]
    assert all(c["--assignee-object-id"] == PRINCIPAL for c in commands)
    assert all(c["--assignee-principal-type"] == "ServicePrincipal" for c in commands)  # no Graph lookup
    assert "registry-token" not in done.stdout  # a target name lives in the cluster vault


def test_the_allowlist_file_as_the_job_reads_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One grant per seed secret: `Db-Password` is `db-password` to Key Vault. A trailing / on the id is dropped."""
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- db-password\n- source: Db-Password\n  target: db-copy\n- api-token\n")
    args = ["--allowlist-file", str(allowlist), "--vault-id", VAULT + "/", "--assignee-object-id", PRINCIPAL]
    assert main(args) == 0
    scopes = [c["--scope"] for c in parsed(capsys.readouterr().out)]
    assert scopes == [VAULT, f"{VAULT}/secrets/db-password", f"{VAULT}/secrets/api-token"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vault-id", "kv-seed-prod"], "--vault-id: expected /subscriptions/<uuid>/resourceGroups/"),
        (["--vault-id", VAULT + "/secrets/x"], "--vault-id: expected"),
        (["--assignee-object-id", "keyvault-sync"], "--assignee-object-id: expected a UUID, got 'keyvault-sync'"),
        (["--allowlist-file", "/nonexistent"], "--allowlist-file or --values-file: expected exactly one of the two"),
    ],
)
def test_bad_input_is_one_line_naming_the_flag_and_exit_2(args: list[str], message: str) -> None:
    base = {"--values-file": str(FULL), "--vault-id": VAULT, "--assignee-object-id": PRINCIPAL}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    done = run(*[word for pair in base.items() for word in pair])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"{PROG}: {message}") and done.stderr.count("\n") == 1, done.stderr


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"jobs": {"keyvaultSync": {"settings": {"allowlist": ["ok", 2024]}}}},
            "allowlist[1]: expected names as strings",
        ),
        ({"jobs": {"keyvaultSync": {"settings": {"allowlist": []}}}}, "expected a non-empty list at jobs.keyvaultSync"),
        ({"jobs": {}}, "expected a non-empty list at jobs.keyvaultSync.settings.allowlist"),
        (
            {"jobs": {"keyvaultSync": {"settings": {"allowlist": ["bad_name"]}}}},
            "invalid Key Vault secret name 'bad_name'",
        ),
    ],
)
def test_values_the_chart_would_refuse_are_refused(tmp_path: Path, values: object, message: str) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(yaml.safe_dump(values))
    done = run("--values-file", str(path), "--vault-id", VAULT, "--assignee-object-id", PRINCIPAL)
    assert done.returncode == 2 and done.stdout == "" and message in done.stderr, done.stderr


NAMES = st.from_regex(r"[0-9A-Za-z-]{1,12}", fullmatch=True)
ENTRIES = st.lists(st.one_of(NAMES, st.tuples(NAMES, NAMES)), min_size=1, max_size=12)


@given(ENTRIES)
def test_one_grant_per_distinct_source_and_nothing_else(entries: list[str | tuple[str, str]]) -> None:
    """Whatever the allowlist: exactly the vault (Reader) and each source secret, case-insensitively once."""
    lines, targets_seen = [], set()
    for entry in entries:
        source, target = (entry, entry) if isinstance(entry, str) else entry
        if target.lower() in targets_seen:
            continue  # the parser refuses a second entry for one target
        targets_seen.add(target.lower())
        lines.append(f"- {{source: '{source}', target: '{target}'}}")
    allowlist = parse_allowlist("\n".join(lines))
    grants = seed_assignments(allowlist, VAULT)
    assert grants[0].role == "Key Vault Reader" and grants[0].scope == VAULT
    secrets = [g.scope.removeprefix(f"{VAULT}/secrets/") for g in grants[1:]]
    assert all(g.role == "Key Vault Secrets User" for g in grants[1:])
    assert sorted(s.lower() for s in secrets) == sorted({e.source.lower() for e in allowlist.entries})
