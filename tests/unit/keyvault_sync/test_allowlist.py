"""The allowlist parser: what an SRE writes in a ConfigMap, and the one-line errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.keyvault_sync.allowlist import AllowlistError, Entry, load_allowlist, parse_allowlist


def test_names_and_renames_with_comments_in_file_order() -> None:
    text = """
# seeded by the platform team
- db-password          # same name in the cluster vault
- source: github-app-key
  target: gh-app-key
- {source: Api-Token, target: api-token}
"""
    allowlist = parse_allowlist(text, "al.yaml")
    assert allowlist.entries == (
        Entry("db-password", "db-password", 3),
        Entry("github-app-key", "gh-app-key", 4),
        Entry("Api-Token", "api-token", 6),
    )
    assert allowlist.targets == frozenset({"db-password", "gh-app-key", "api-token"})


def test_a_name_is_taken_as_written_not_as_a_yaml_number_or_boolean() -> None:
    allowlist = parse_allowlist("- 2024\n- 'yes'\n- on\n", "al.yaml")
    assert [e.source for e in allowlist.entries] == ["2024", "yes", "on"]


def _error(text: str) -> str:
    with pytest.raises(AllowlistError) as info:
        parse_allowlist(text, "al.yaml")
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- ok\n- [unclosed\n", "al.yaml:3: expected valid YAML"),
        ("- ok\n-   bad_name\n", "al.yaml:2: invalid Key Vault secret name 'bad_name'"),
        ("- ok\n- " + "a" * 128 + "\n", "al.yaml:2: invalid Key Vault secret name"),
        ("- ok\n- ''\n", "al.yaml:2: invalid Key Vault secret name ''"),
        ("- a\n- b\n- a\n", "al.yaml:3: duplicate entry for 'a' (first on line 1)"),
        ("- A\n- a\n", "al.yaml:2: duplicate entry for 'a' (first on line 1)"),
        ("- x\n- source: y\n  target: x\n", "al.yaml:2: two sources onto one target: 'y' and 'x' (line 1)"),
        ("- source: a\n", "al.yaml:1: expected both source and target, missing target"),
        ("- source: a\n  target: b\n  tags: c\n", "al.yaml:3: expected only keys source and target, got 'tags'"),
        ("- [a, b]\n", "al.yaml:1: expected a secret name or a mapping"),
        ("- source: [a]\n  target: b\n", "al.yaml:1: expected a secret name, got a list"),
        ("names: [a]\n", "al.yaml:1: expected a YAML list"),
        ("", "al.yaml:1: expected a YAML list"),
        ("[]\n", "al.yaml:1: expected at least one entry"),
    ],
)
def test_every_malformed_allowlist_names_the_file_and_line(text: str, expected: str) -> None:
    assert expected in _error(text)


def test_all_problems_are_reported_at_once() -> None:
    message = _error("- a_b\n- c.d\n- ok\n- ok\n")
    assert "al.yaml:1:" in message and "al.yaml:2:" in message and "al.yaml:4: duplicate" in message


def test_one_source_may_feed_two_targets() -> None:
    allowlist = parse_allowlist("- a\n- source: a\n  target: a-copy\n", "al.yaml")
    assert [(e.source, e.target) for e in allowlist.entries] == [("a", "a"), ("a", "a-copy")]


def test_load_reports_an_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError, match="expected a readable UTF-8 YAML file"):
        load_allowlist(str(tmp_path / "missing.yaml"))
    good = tmp_path / "al.yaml"
    good.write_text("- a\n")
    assert load_allowlist(str(good)).path == str(good)


NAME_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-"


@given(st.lists(st.text(NAME_ALPHABET, min_size=1, max_size=127), min_size=1, max_size=20, unique_by=str.lower))
def test_any_list_of_valid_unique_names_round_trips(names: list[str]) -> None:
    text = "".join(f"- '{n}'\n" for n in names)
    assert [e.target for e in parse_allowlist(text).entries] == names


@given(st.text(min_size=1, max_size=30).filter(lambda s: any(c not in NAME_ALPHABET for c in s)))
def test_any_name_outside_the_alphabet_is_rejected(name: str) -> None:
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    text = f'- "{quoted}"\n'
    with pytest.raises(AllowlistError):
        parse_allowlist(text)
