"""Coder's API key records as every release line sends them (lib/clients/coder_types.py, issue 16): both
allow-list wire forms, `scopes` or the legacy `scope`, unknown fields ignored; a record that cannot be read is a
TokenFormatError naming the token, never another exception (hypothesis over arbitrary JSON)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.clients.coder_types import Token, TokenFormatError, TokenList

UUID = "6f2a1c3e-1b2c-4d5e-8f90-0123456789ab"
BASE: dict[str, Any] = {
    "id": "AbCdEf1234",
    "user_id": UUID,
    "last_used": "1970-01-01T00:00:00Z",
    "expires_at": "2026-04-01T10:00:00.123456789Z",
    "created_at": "2026-01-01T10:00:00Z",
    "login_type": "token",
    "token_name": "ci-2026-01-01",
    "lifetime_seconds": 7776000,
}


def test_object_and_string_allow_lists_read_the_same() -> None:
    as_objects = Token.from_json({**BASE, "allow_list": [{"type": "*", "id": "*"}, {"type": "workspace", "id": UUID}]})
    as_strings = Token.from_json({**BASE, "allow_list": ["*:*", f"workspace:{UUID}"]})
    assert as_objects == as_strings
    assert as_strings.allow_list == ("*:*", f"workspace:{UUID}")


def test_scopes_or_the_legacy_scope_and_unknown_fields_ignored() -> None:
    new = Token.from_json({**BASE, "scope": "", "scopes": ["coder:workspaces.access", "user:read"], "extra": {"x": 1}})
    assert new.scopes == ("coder:workspaces.access", "user:read")
    legacy = Token.from_json({**BASE, "scope": "application_connect"})  # before scopes: no `scopes`, no allow_list
    assert legacy.scopes == ("application_connect",) and legacy.allow_list == ()
    assert legacy.last_used is None and legacy.expires_at is not None and legacy.expires_at.microsecond == 123456


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"allow_list": [42]}, "allow_list entry 42"),
        ({"allow_list": ["workspace"]}, "not <type>:<id>"),
        ({"allow_list": [{"type": "workspace"}]}, "allow_list entry"),
        ({"allow_list": "*:*"}, "is not a list"),
        ({"scopes": "coder:all"}, "not a list of strings"),
        ({"expires_at": "next tuesday"}, "expires_at 'next tuesday' is not RFC 3339"),
        ({"lifetime_seconds": "90d"}, "lifetime_seconds"),
    ],
)
def test_a_malformed_record_is_an_error_naming_the_token(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(TokenFormatError) as info:
        Token.from_json({**BASE, **change})
    assert info.value.token_id == "AbCdEf1234" and info.value.token_name == "ci-2026-01-01"
    assert problem in info.value.problem and "ci-2026-01-01 (AbCdEf1234)" in str(info.value)


def test_a_list_keeps_what_it_reads_and_names_what_it_cannot() -> None:
    listing = TokenList.from_json([BASE, {**BASE, "id": "Zz00000000", "token_name": "bad", "allow_list": [None]}])
    assert [t.id for t in listing] == ["AbCdEf1234"] and len(listing) == 1
    (bad,) = listing.malformed
    assert (bad.token_id, bad.token_name) == ("Zz00000000", "bad") and bad.label == "bad (Zz00000000)"
    assert TokenList.from_json(None).tokens == ()  # Go's nil slice: `null`


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = st.sampled_from(["id", "token_name", "scopes", "scope", "allow_list", "expires_at", "lifetime_seconds"])


@given(st.dictionaries(FIELDS, JSON, max_size=6))
def test_any_record_parses_or_raises_token_format_error_only(changes: dict[str, Any]) -> None:
    record = json.loads(json.dumps({**BASE, **changes}))
    try:
        token = Token.from_json(record)
    except TokenFormatError as exc:
        assert exc.problem
    else:
        assert all(":" in entry for entry in token.allow_list)
