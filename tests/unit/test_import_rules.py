"""The import rules (`[tool.importlinter]` in pyproject.toml, run by `make lint`) hold on the tree as it is,
and each one fails, naming its contract, when a copy of the tree gets the import it forbids."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = {
    c["id"]: c["name"]
    for c in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}


def _python_only(folder: str, names: list[str]) -> set[str]:
    skip = {"__pycache__", ".hypothesis", ".pytest_cache"}
    return {n for n in names if n in skip or (not n.endswith(".py") and not os.path.isdir(os.path.join(folder, n)))}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    for package in ("jobs", "lib", "tests"):
        shutil.copytree(REPO / package, tmp_path / package, ignore=_python_only)
    shutil.copy2(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH first: the copy, not the editable install of the repository, is what gets analysed.
    env = {**os.environ, "PYTHONPATH": str(tree)}
    command = [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")]
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=120, check=False)


def add_import(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(path.read_text() + f"\n{line}  # the forbidden import this test adds\n")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("jobs/fic_reconcile/plan.py", "import jobs.keyvault_sync.plan", "jobs-independent"),
        ("lib/model.py", "import jobs", "lib-below-jobs"),
        ("lib/clients/coder.py", "import tests.specs", "lib-below-jobs"),
        ("lib/clients/vault.py", "from lib import harness", "clients-below-harness"),
        ("lib/render.py", "from lib.clients import coder", "core-without-clients"),
        # the loop fic_plan <-> fic_findings once had (findings now takes its types from model.py)
        ("jobs/fic_reconcile/findings.py", "from jobs.fic_reconcile import plan", "no-cycles"),
        ("tests/emulators/coder/emulator.py", "import lib.clients.coder", "emulators-standalone"),
    ],
)
def test_a_forbidden_import_breaks_its_contract(tree: Path, module: str, line: str, contract: str) -> None:
    add_import(tree, module, line)
    done = lint_imports(tree)
    assert done.returncode != 0, done.stdout
    assert f"{CONTRACTS[contract]} BROKEN" in done.stdout, done.stdout
    assert "Contracts: 1 broken" in done.stdout or ", 1 broken." in done.stdout, done.stdout
