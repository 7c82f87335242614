"""keyvault-sync's fault matrix: Entra ID (the token after each vault's challenge), the seed Key Vault and the
cluster (target) Key Vault.

The world before each case: the seed holds `alpha` and `bravo` (allowlisted); the target holds `retired`,
written by this job and since dropped from the allowlist. The job runs with `--prune`, so a converged run
copies two secrets and soft-deletes `retired`. A failure names the vault and the call; a failure in what the
job observed deletes nothing; and no case ever purges (the job has no purge call at all).
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

import pytest
from azure.keyvault.secrets import SecretClient

from jobs.keyvault_sync.plan import OWNER_TAG, OWNER_VALUE
from tests.conftest import Control
from tests.faults.common import (
    DELAY_PAST_TIMEOUT,
    Case,
    Converged,
    Deferred,
    Fails,
    case,
    case_env,
    check_outcome,
    fault,
    run_case,
)

pytestmark = pytest.mark.e2e

SEED, TARGET = "keyvault_source", "keyvault_target"
T = DELAY_PAST_TIMEOUT
MALFORMED = '{"value": [{"id": "https://'
PAGE = 25  # the SDK asks for 25 a page (lib/clients/keyvault.py PAGE_SIZE, the service's maximum)

CASES = [
    # ---- Entra ID: the token the SDK fetches after each vault's 401 challenge (not a list) --------------------
    case("entra-refused", Fails(("Entra ID", "token")), env={"AZURE_AUTHORITY_HOST": "closed"}),
    case("entra-timeout", Converged(("entra", "token")), fault("entra", "token", delay=T)),
    case("entra-500-once", Converged(("entra", "token")), fault("entra", "token", status=500)),
    case("entra-503-always", Fails(("Entra ID", "token", "503")), fault("entra", "token", status=503, count=None)),
    case("entra-429-retry-after", Converged(("entra", "token")), fault("entra", "token", status=429, retry_after=1)),
    case(
        "entra-401",
        Fails(("Entra ID", "token", "401"), ("entra", "token", 1)),
        fault("entra", "token", status=401, code="invalid_client", count=None),
    ),
    case(
        "entra-403",
        Fails(("Entra ID", "token", "403"), ("entra", "token", 1)),
        fault("entra", "token", status=403, code="unauthorized_client", count=None),
    ),
    case("entra-malformed-json", Fails(("Entra ID", "token")), fault("entra", "token", body='{"access_token": ')),
    # ---- the seed vault: list secrets (observe), get a value (apply); a versions list only where the lists
    # cannot decide, which this scenario (no target yet) never needs ---------------------------------------
    case("seed-refused", Fails(("seed vault", "list secrets")), env={"CWJ_SOURCE_VAULT_URL": "closed"}),
    case("seed-timeout", Converged((SEED, "secret.get")), fault(SEED, "secret.get", delay=T)),
    case("seed-500-once", Converged((SEED, "secret.list")), fault(SEED, "secret.list", status=500)),
    case(
        "seed-503-always",
        Fails(("seed vault", "get alpha", "503")),
        fault(SEED, "secret.get", status=503, count=None),
        observing=False,
    ),
    case("seed-429-retry-after", Converged((SEED, "secret.get")), fault(SEED, "secret.get", status=429, retry_after=1)),
    case(
        "seed-401",
        Fails(("seed vault", "list secrets", "401")),
        fault(SEED, "secret.list", status=401, code="Unauthorized", count=None),
    ),
    case(
        "seed-403-on-value-read",
        Fails(("seed vault", "get alpha", "403")),
        fault(SEED, "secret.get", status=403, code="Forbidden", count=None, match="/alpha"),
        observing=False,  # both lists were complete: pruning `retired` is allowed
    ),
    case("seed-malformed-json", Fails(("seed vault", "list secrets")), fault(SEED, "secret.list", body=MALFORMED)),
    case(
        "seed-list-page-2-fails",
        Fails(("seed vault", "list secrets", "500")),
        fault(SEED, "secret.list", status=500, skip=1, count=None),
    ),
    # ---- the target vault: list secrets, list deleted (observe), set and delete (apply) ----------------------
    case("target-refused", Fails(("target vault", "list secrets")), env={"CWJ_TARGET_VAULT_URL": "closed"}),
    case("target-timeout", Converged((TARGET, "deleted.list")), fault(TARGET, "deleted.list", delay=T)),
    case("target-500-once", Converged((TARGET, "secret.set")), fault(TARGET, "secret.set", status=500)),
    case(
        "target-503-always",
        Fails(("target vault", "list secrets", "503")),
        fault(TARGET, "secret.list", status=503, count=None),
    ),
    case(
        "target-429-retry-after",
        Converged((TARGET, "secret.delete")),
        fault(TARGET, "secret.delete", status=429, retry_after=1),
    ),
    # Throttling that outlasts the run budget: those writes are deferred, not failed; the next run converges.
    case(
        "target-429-sustained-past-the-budget",
        Deferred(writes=2),
        fault(TARGET, "secret.set", status=429, retry_after=1, count=None),
        args=("--max-run-seconds", "8"),
        observing=False,
    ),
    case(
        "target-429-retry-after-past-the-budget",
        Deferred(writes=2),
        fault(TARGET, "secret.set", status=429, retry_after=3600, count=None),
        args=("--max-run-seconds", "12"),
        observing=False,
        within=20,
    ),
    case(
        "target-401",
        Fails(("target vault", "list deleted secrets", "401")),
        fault(TARGET, "deleted.list", status=401, code="Unauthorized", count=None),
    ),
    case(
        "target-403-on-delete",
        Fails(("target vault", "delete retired", "403"), (TARGET, "secret.delete", 1)),
        fault(TARGET, "secret.delete", status=403, code="Forbidden", count=None),
        observing=False,
    ),
    case(
        "target-malformed-json",
        Fails(("target vault", "list deleted secrets")),
        fault(TARGET, "deleted.list", body=MALFORMED),
    ),
    case(
        "target-list-page-2-fails",
        Fails(("target vault", "list secrets", "500")),
        fault(TARGET, "secret.list", status=500, skip=1, count=None),
    ),
]


def _seed(vaults: tuple[SecretClient, SecretClient], control: Control, fillers: str | None) -> dict[str, str]:
    seed, target = vaults
    values = {name: f"{name}-{secrets.token_urlsafe(16)}" for name in ("alpha", "bravo")}
    for name, value in values.items():
        seed.set_secret(name, value)
    target.set_secret("retired", f"retired-{secrets.token_urlsafe(16)}", tags={OWNER_TAG: OWNER_VALUE})
    if fillers is not None:  # enough secrets that the vault's list takes two pages
        vault = seed if fillers == SEED else target
        for i in range(PAGE):
            vault.set_secret(f"filler-{i:02d}", f"filler-{secrets.token_urlsafe(12)}")
    control.clear_requests()
    return values


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_keyvault_sync_under_fault(
    c: Case, control: Control, env: dict[str, str], tmp_path: Path, vaults: tuple[SecretClient, SecretClient]
) -> None:
    paged = c.faults[0].service if c.id.endswith("page-2-fails") else None
    values = _seed(vaults, control, paged)
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- alpha\n- bravo\n")
    proc = run_case(
        "keyvault-sync", c, control, case_env(c, env), "--allowlist-file", str(allowlist), "--prune", "--output", "json"
    )
    check_outcome(c, proc, control)
    control.clear_faults()
    if isinstance(c.expect, Deferred):  # nothing lost: the next run, without the fault, finishes the work
        again = run_case("keyvault-sync", replace(c, faults=()), control, case_env(c, env), "--allowlist-file",
                         str(allowlist), "--prune")  # fmt: skip
        assert again.returncode == 0, again.stderr[-3000:]
    _, target = vaults
    present = {p.name for p in target.list_properties_of_secrets()}
    assert control.count(TARGET, "deleted.purge") == 0, "keyvault-sync purged a secret"
    if isinstance(c.expect, Converged | Deferred):
        assert present == {"alpha", "bravo"}
        assert {name: target.get_secret(name).value for name in values} == values
        assert {d.name for d in target.list_deleted_secrets()} == {"retired"}
    elif c.observing:
        assert control.count(TARGET, "secret.delete") == 0, "deleted on the strength of an incomplete observation"
        assert "retired" in present
