"""The README stays true: its opening, its commands, its settings tables, its map and its versions table."""

from __future__ import annotations

import re

import yaml

from tests.docgen import JOBS, README, blocks, render


def test_readme_opens_with_what_the_tool_does_and_a_picture_of_the_flow() -> None:
    """An SRE reads what the jobs do before any make target: the first section names all four jobs, and its
    picture shows each flow (namespace -> FIC -> Entra; seed KV -> cluster KV; bootstrap -> Coder -> Vault ->
    External Secrets -> workspace)."""
    text = README.read_text()
    opening = text.split("\n## ", 1)[0]
    assert "make " not in opening.split("```", 1)[0], "the README opens with make targets, not what the tool does"
    picture = re.search(r"\n```\n(.*?)```", opening, re.S)
    assert picture is not None, "the opening section lost its picture of the flow"
    flow = " ".join(picture.group(1).split())
    for job in JOBS:
        assert job in flow, job
    for chain in (
        ("workspace namespace", "federated identity credential", "Entra ID"),
        ("seed Key Vault", "cluster Key Vault"),
        ("bootstrap token", "Coder", "Vault KV v2", "External Secrets", "workspace"),
    ):
        at = 0
        for step in chain:  # each step after the one before it
            at = flow.find(step, at)
            assert at != -1, f"{step!r} missing after the step before it in {chain}"


def test_the_try_it_section_runs_demo_and_test_and_states_what_they_need() -> None:
    first_block = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands[:2] == ["make demo", "make test"]
    section = README.read_text().split("## Try it locally\n", 1)[1].split("\n## ", 1)[0]
    # make test fetches tools: the README must say so, not claim "only Python and make"
    for tool in ("helm", "kubectl", "checkov", "promtool", "apt-get download", "Terraform"):
        assert tool in section, tool
    assert "only Python" not in section


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


def test_licence_file_matches_the_licence_pyproject_declares() -> None:
    import tomllib

    project = tomllib.loads((README.parent / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    licence = (README.parent / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence  # the whole text, not a stub


def test_changelog_and_security_policy_exist_and_are_linked_from_the_readme() -> None:
    text = README.read_text().split("\n## ", 1)[0]
    for name in ("LICENSE", "CHANGELOG.md", "SECURITY.md"):
        assert (README.parent / name).is_file(), name
        assert f"]({name})" in text, f"the README's opening does not link {name}"
    assert "## Unreleased" in (README.parent / "CHANGELOG.md").read_text()
    assert "Reporting a vulnerability" in (README.parent / "SECURITY.md").read_text()


def _versions_row(system: str) -> str:
    section = README.read_text().split("## Supported versions\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith(f"| {system} |")]
    assert len(rows) == 1, f"no single row for {system} in the supported-versions table"
    return rows[0]


def test_supported_versions_name_the_azure_api_versions_the_sdks_really_call() -> None:
    from azure.keyvault.secrets._shared.client_base import DEFAULT_VERSION
    from azure.mgmt.msi import ManagedServiceIdentityClient

    arm = ManagedServiceIdentityClient.DEFAULT_API_VERSION
    assert f"`{arm}`" in _versions_row("Azure Resource Manager, Microsoft.ManagedIdentity")
    assert f"`{DEFAULT_VERSION.value}`" in _versions_row("Azure Key Vault, secrets")


def test_supported_kubernetes_versions_match_the_chart() -> None:
    chart = yaml.safe_load((README.parent / "helm" / "coder-wi-jobs" / "Chart.yaml").read_text())
    minimum = re.fullmatch(r">=(\d+\.\d+)\.0-0", chart["kubeVersion"])
    assert minimum is not None, chart["kubeVersion"]
    assert f"{minimum.group(1)} or later" in _versions_row("Kubernetes")
