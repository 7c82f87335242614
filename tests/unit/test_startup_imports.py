"""`--help`, `--version` and a configuration error (exit 2) of every console script import none of the SDKs or
HTTP clients (tests/startup.py HEAVY): the clients are imported where a run uses them (BENCHMARKS.md,
start-up). Wall times are budgets on a shared machine (tests/bench/bench_startup.py); this is the check that
holds anywhere."""

from __future__ import annotations

import os

import pytest

from tests.docgen import JOBS
from tests.startup import BIN, HEAVY, heavy_of, run_importing

# Enough of an environment for the interpreter, and no setting: every job then stops at exit 2.
BARE_ENV = {"PATH": os.defpath, "HOME": "/nonexistent", "LANG": "C.UTF-8"}


@pytest.mark.parametrize("flag", ["--help", "--version"])
@pytest.mark.parametrize("job", sorted(JOBS))
def test_help_and_version_import_no_sdk(job: str, flag: str) -> None:
    proc, modules = run_importing([str(BIN / job), flag])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert JOBS[job] in modules, f"{JOBS[job]} not among the imports: the importtime listing was not read"
    assert heavy_of(modules) == [], f"{job} {flag} imports {heavy_of(modules)}"


@pytest.mark.parametrize("job", sorted(JOBS))
def test_a_configuration_error_imports_no_sdk(job: str) -> None:
    proc, modules = run_importing([str(BIN / job)], env=BARE_ENV)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "configuration error" in proc.stderr
    assert heavy_of(modules) == [], f"{job} with no settings imports {heavy_of(modules)}"


@pytest.mark.parametrize("package", HEAVY)
def test_the_check_sees_each_package_when_it_is_imported(package: str) -> None:
    proc, modules = run_importing(["-c", f"import {package}"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert package in heavy_of(modules)
