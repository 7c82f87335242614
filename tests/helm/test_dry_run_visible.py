"""A chart left on dryRun is visible (issue 22, point 3): NOTES.txt names every job whose effective dryRun is on
(the default or the job's own), with the command that turns it off, and says nothing when none is."""

from __future__ import annotations

from pathlib import Path

from tests.helm.chart import CHART, FULL
from tests.helm.helm_binary import run_helm


def notes(home: Path, *extra: str) -> str:
    done = run_helm("install", "rel", str(CHART), "-n", "jobs", "-f", str(FULL), "--dry-run", *extra, home=home)
    assert done.returncode == 0, done.stderr
    return done.stdout.split("NOTES:\n", 1)[1]


def test_notes_warn_for_every_job_left_on_dry_run(home: Path) -> None:
    text = notes(home, "--set", "jobDefaults.dryRun=true", "--set", "jobs.keyvaultSync.dryRun=false")
    warning = next(line for line in text.splitlines() if line.startswith("WARNING: DRY-RUN IS ON for: "))
    named = warning.removeprefix("WARNING: DRY-RUN IS ON for: ").split(", ")
    assert named == ["coder-token-mint", "fic-reconcile", "token-expiry-check"]  # keyvault-sync's own false wins
    assert "--set jobDefaults.dryRun=false" in text and "cwj_dry_run" in text


def test_a_single_job_on_dry_run_is_named_even_when_the_default_is_off(home: Path) -> None:
    text = notes(home, "--set", "jobs.ficReconcile.dryRun=true")
    assert "WARNING: DRY-RUN IS ON for: fic-reconcile\n" in text


def test_no_warning_when_no_job_dry_runs(home: Path) -> None:
    assert "DRY-RUN" not in notes(home)
