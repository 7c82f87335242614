"""One lock for every environment: uv.lock pins every package, direct and transitive, with hashes; the
development venv is exactly the lock, and the image's requirements are the lock's runtime subset. Each check
runs uv offline, so it fails when pyproject.toml and the lock disagree, never because a registry moved."""

from __future__ import annotations

import importlib.metadata
import shutil
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import lock

PYPROJECT = tomllib.loads((lock.REPO / "pyproject.toml").read_text())
LOCKED = {canonicalize_name(p["name"]): p for p in tomllib.loads(lock.LOCK.read_text())["package"]}
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])


def _direct() -> dict[str, list[str]]:
    groups = {"runtime": PYPROJECT["project"]["dependencies"], **PYPROJECT["dependency-groups"]}
    return {name: list(reqs) for name, reqs in groups.items()}


def _copy_project(tmp: Path) -> Path:
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy2(lock.REPO / name, tmp / name)
    return tmp


def test_the_lock_matches_pyproject() -> None:
    in_step, why = lock.lock_matches_pyproject()
    assert in_step, f"uv.lock does not match pyproject.toml; run `make lock`: {why}"


@pytest.mark.parametrize(
    ("edit", "replacement"),
    [
        ('"hvac==2.4.0"', '"hvac==2.3.0"'),  # a runtime dependency re-pinned
        ('"packaging==26.3",', '"packaging==26.3",\n    "six==1.17.0",'),  # a dev tool added
    ],
    ids=["repinned", "added"],
)
def test_a_pyproject_change_without_make_lock_fails_the_check(tmp_path: Path, edit: str, replacement: str) -> None:
    project = _copy_project(tmp_path)
    text = (project / "pyproject.toml").read_text()
    assert edit in text
    (project / "pyproject.toml").write_text(text.replace(edit, replacement))
    in_step, why = lock.lock_matches_pyproject(project)
    assert not in_step and why


def test_every_direct_dependency_is_pinned_exactly_and_locked_at_that_version() -> None:
    for group, reqs in _direct().items():
        for raw in reqs:
            req = Requirement(raw)
            (spec,) = req.specifier
            assert spec.operator == "==", f"{group}: {raw} is not pinned with a single =="
            assert LOCKED[canonicalize_name(req.name)]["version"] == spec.version, f"{group}: {raw}"


def test_every_locked_package_carries_sha256_hashes() -> None:
    for name, package in LOCKED.items():
        if name == PROJECT:
            continue
        artifacts = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert artifacts and all(a["hash"].startswith("sha256:") for a in artifacts), name


def test_the_exported_requirement_files_are_what_the_lock_exports() -> None:
    assert lock.stale_exports() == [], "run `make lock`"


def _runtime_closure() -> set[str]:
    """Every package the project's runtime dependencies pull in, per uv.lock (extras followed, markers kept)."""
    seen: set[str] = set()
    todo = list(LOCKED[PROJECT]["dependencies"])
    while todo:
        dep = todo.pop()
        name = canonicalize_name(dep["name"])
        todo += [d for extra in dep.get("extra", []) for d in LOCKED[name]["optional-dependencies"][extra]]
        if name not in seen:
            seen.add(name)
            todo += LOCKED[name].get("dependencies", [])
    return seen


def test_the_image_requirements_are_the_runtime_closure_without_dev_tools() -> None:
    image = lock.read_requirements(lock.REPO / "requirements-image.txt")
    runtime = {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert runtime <= set(image) and len(image) > len(runtime)  # transitive ones are there too
    assert set(image) == _runtime_closure()
    assert not {"pytest", "ruff", "mypy", "uv", "setuptools", "pip"} & set(image)
    assert PROJECT not in image  # the project goes in from its own wheel
    assert all(hashes for _, hashes in image.values())


def test_the_bootstrap_file_holds_uv_and_the_build_backend_by_hash() -> None:
    boot = lock.read_requirements(lock.REPO / "requirements-bootstrap.txt")
    assert set(boot) == {"uv", "setuptools"}
    assert all(hashes for _, hashes in boot.values())
    assert PYPROJECT["build-system"]["requires"] == [f"setuptools=={boot['setuptools'][0]}"]


def test_the_running_venv_is_exactly_the_lock() -> None:
    """What `make venv` installed: every locked package that applies to this interpreter, at its locked
    version, and nothing else (uv sync is exact)."""
    wanted = {}
    for line in lock.body(lock.export("requirements-dev")).splitlines():
        if line and not line[0].isspace() and "==" in line:
            req = Requirement(line.rstrip(" \\"))
            if req.marker is None or req.marker.evaluate():
                (spec,) = req.specifier
                wanted[canonicalize_name(req.name)] = spec.version
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    installed.pop(PROJECT)
    assert installed == wanted
