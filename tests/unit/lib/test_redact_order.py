"""Redaction scrubs before any transformation (issue 21, point 5): the helpers every client and the renderer use
to collapse, cut, take a first line or JSON-encode text (lib/redact.py) never let a registered secret, or any
piece of one, through, whatever characters it holds; and the report renderer (lib/render.py) neither.

Secrets are drawn from lower-case letters, digits, quotes, backslashes, braces, whitespace (line breaks included)
and non-ASCII; the text around them and the mask are upper-case, brackets, spaces and digits-free, so any secret
character in the output other than whitespace is a leak, without knowing which form it took."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from lib import render
from lib.model import Finding, Outcome, Plan, Report
from lib.redact import MASK, REDACTOR, clip, first_line, one_line, register_secret, scrub_obj, to_json

SECRET_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789\"'\\{}:/%&=\n\r\t \u2028\x85éü日本🔑Ω"
SECRETS = st.text(alphabet=SECRET_CHARS, min_size=4, max_size=320).filter(lambda s: len(s.strip()) >= 4)
AROUND = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ \n", max_size=230)
SAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZ[] \n\r\t\u2028\x85")  # what the output may hold: the text around, the mask


def secret_chars_in(text: str) -> set[str]:
    return set(text) - SAFE - set(MASK)


@pytest.fixture(autouse=True)
def isolated_redactor() -> Iterator[None]:
    saved = REDACTOR._values
    yield
    REDACTOR._values = saved


@given(secret=SECRETS, before=AROUND, after=AROUND)
@example(secret='a"b\\c\nd\r\ne\u2028fé日🔑' + "z" * 250, before="X" * 190, after="")
@settings(max_examples=300)
def test_the_transforming_helpers_scrub_first(secret: str, before: str, after: str) -> None:
    register_secret(secret)
    text = before + secret + after
    for limit in (1, len(before) + 1, len(before) + len(secret) // 2, 200, len(text)):
        assert not secret_chars_in(clip(text, limit)), limit
    assert not secret_chars_in(one_line(text))
    assert not secret_chars_in(first_line(text))
    assert not secret_chars_in(first_line(ValueError(text)))
    decoded = json.loads(to_json({"A": [text], "B": {"C": text}}))  # a leak would come back decoded
    assert not secret_chars_in(decoded["A"][0] + decoded["B"]["C"])


@dataclass(frozen=True)
class Act:
    """An action as lib/model.py's protocol wants it: kind, identity and a describe() row."""

    name: str
    kind: str = "copy"
    identity: str = "-"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "name": self.name}


def _rendered(secret: str) -> list[str]:
    act = Act(f"N{secret}N")
    plan = Plan(
        actions=(act,),
        findings=(Finding("warning", "rule", "SUBJ", f"SAW {secret}"),),
        sections={"section": {"nested": [f"V {secret}"]}, "rows": [{"col": secret}]},
    )
    report = Report(plan, (Outcome(act, "failed", f"DETAIL {secret} END"),))
    return [
        render.plan_text("job", plan),
        render.report_text("job", report),
        render.as_json(render.plan_json("job", plan)),
        render.as_json(render.report_json("job", report)),
    ]


@given(secret=SECRETS)
@example(secret='q"uote\\d\n\tlé🔑' + "y" * 260)
@example(secret="null")
@settings(max_examples=150)
def test_reports_and_plans_render_a_registered_secret_exactly_as_if_it_were_the_mask(secret: str) -> None:
    """The secret sits in an action's column, a finding, an outcome's detail, a table section and a section the
    text report JSON-encodes (escaping quotes, line breaks and non-ASCII). Scrubbed before formatting, every
    output is the very text the mask itself would give (column widths included); scrubbed after, the escaped or
    padded secret would show, or the widths would differ."""
    register_secret(secret)
    rendered, expected = _rendered(secret), _rendered(MASK)
    assert rendered == expected  # so the secret is in an output only where the mask's own output has that text


def test_objects_that_are_not_json_are_scrubbed_as_text_before_any_encoder_sees_them() -> None:
    secret = 'obj"secret\n' + "w" * 30
    register_secret(secret)

    class Leaky:
        def __str__(self) -> str:
            return f"Leaky({secret})"

    scrubbed = scrub_obj({"event": "x", "thing": Leaky(), "n": 3, "flag": True, "none": None})
    assert scrubbed == {"event": "x", "thing": f"Leaky({MASK})", "n": 3, "flag": True, "none": None}


def test_an_encoded_form_of_a_registered_secret_is_masked_where_it_turns_up_already_encoded() -> None:
    """A server or a library may hand us the secret already escaped (requests repr-escapes a bad header value)."""
    secret = 'tab\there\nnew"quote-é'
    register_secret(secret)
    for encoded in (repr(secret), ascii(secret), json.dumps(secret), " ".join(secret.split())):
        assert one_line(f"error: {encoded}") in {f"error: {MASK}", f"error: '{MASK}'", f'error: "{MASK}"'}
