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
