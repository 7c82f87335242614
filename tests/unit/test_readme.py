"""The README's first two commands and its settings tables stay true."""

from __future__ import annotations

import re

from tests.docgen import JOBS, README, blocks, render


def test_readme_opens_with_demo_and_test_commands() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]


def test_settings_tables_match_the_settings_dataclasses() -> None:
    text = README.read_text()
    assert render(text) == text, "README settings tables are stale: run `.venv/bin/python -m tests.docgen`"


def test_every_implemented_job_has_a_settings_table() -> None:
    text = README.read_text()
    for name in blocks():
        assert f"<!-- settings:{name} -->" in text, f"README lacks the settings block for {name}"
    assert set(blocks()) - {"common"} <= set(JOBS)


def test_ci_runs_the_readme_commands_in_a_clone_with_nothing_beside_it() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "git clone" in ci and "mktemp -d" in ci and 'test "$(ls -A ..)" = coder-wi-jobs' in ci
    for command in ("make demo", "make test"):
        assert f" {command}\n" in ci or f" {command} " in ci, command


def _folder_map() -> list[str]:
    """The folders the README's "Where things are" tree names, as paths; two spaces of indent per level."""
    section = README.read_text().split("## Where things are\n", 1)[1]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None, "the README's 'Where things are' section lost its tree"
    folders, stack = [], []
    for line in block.group(1).splitlines():
        entry = re.match(r"^( *)(\S+/)(\s|$)", line)
        if entry is None or len(entry.group(1)) >= 20:  # a file, or a description's continuation line
            continue
        level = len(entry.group(1)) // 2
        stack[level:] = [entry.group(2).rstrip("/")]
        folders.append("/".join(stack))
    return folders


def test_every_folder_in_the_map_exists() -> None:
    root = README.parent
    folders = _folder_map()
    assert "jobs" in folders and "lib/clients" in folders
    assert [f for f in folders if not (root / f).is_dir()] == []


def test_every_python_package_is_in_the_map() -> None:
    root = README.parent
    skip = {"build", "node_modules", "__pycache__"}
    packages = sorted(
        str(init.parent.relative_to(root))
        for init in root.rglob("__init__.py")
        if not any(
            part.startswith(".") or part in skip or part.endswith(".egg-info") for part in init.relative_to(root).parts
        )
    )
    assert packages, "no package found: the test looks in the wrong place"
    assert [p for p in packages if p not in _folder_map()] == []
