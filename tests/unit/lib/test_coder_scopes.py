"""lib/clients/coder_scopes.py: which calls a Coder key's scopes and allow list permit (issue 16). Checked
against the cited expansion case by case, and against the Coder emulator's own implementation
(tests/emulators/coder/rbac.py, written separately from the same source) over random keys."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lib.clients.coder_scopes import can_whoami, permits
from tests.emulators.coder import rbac

ME = "6f2a1c3e-1b2c-4d5e-8f90-0123456789ab"
OTHER = "00000000-0000-0000-0000-000000000007"


@pytest.mark.parametrize(
    ("scopes", "allow", "expected"),
    [
        (("coder:workspaces.access", "user:read"), ("*:*",), True),  # the mint's default
        (("coder:workspaces.access",), (f"workspace:{ME}",), False),  # the chart's example: no user read
        (("coder:workspaces.access", "user:read"), ("workspace:*",), False),  # user:read, but no user allowed
        (("user:read",), (f"user:{ME}",), True),
        (("user:read",), (f"user:{OTHER}",), False),
        (("all",), (), True),  # a server before scopes and allow lists: the legacy `all`
        ((), (), True),  # nothing recorded at all: nothing restricted
        (("application_connect",), ("*:*",), False),  # seed 002's legacy name: workspace apps only
        (("coder:apikeys.manage_self",), ("*:*",), False),
        (("coder:all",), ("user:*",), True),
    ],
)
def test_can_whoami(scopes: tuple[str, ...], allow: tuple[str, ...], expected: bool) -> None:
    assert can_whoami(scopes, allow, ME) is expected


def test_composites_expand_to_their_site_permissions() -> None:
    access = ("coder:workspaces.access",)
    assert permits(access, ("*:*",), "workspace", "ssh") and permits(access, ("*:*",), "template", "read")
    assert not permits(access, ("*:*",), "workspace", "start")  # that is coder:workspaces.operate
    assert permits(("coder:templates.author",), ("*:*",), "file", "create")
    assert permits(("template:*",), ("*:*",), "template", "delete")


SCOPES = st.sampled_from(
    sorted(rbac.BUILTIN) + sorted(rbac.COMPOSITE) + ["user:read", "user:read_personal", "api_key:*", "workspace:ssh"]
)
ENTRIES = st.sampled_from(["*:*", "user:*", f"user:{ME}", f"user:{OTHER}", "workspace:*", "api_key:*", f"*:{ME}"])
RESOURCES = st.sampled_from(["user", "api_key", "workspace", "template", "file", "organization_member"])
ACTIONS = st.sampled_from(["read", "create", "update", "delete", "read_personal", "ssh", "start", "use"])


@given(
    st.lists(SCOPES, min_size=1, max_size=3),
    st.lists(ENTRIES, min_size=1, max_size=3),
    RESOURCES,
    ACTIONS,
    st.sampled_from(["", ME, OTHER]),
)
def test_the_job_and_the_emulator_read_coders_scope_rules_alike(
    scopes: list[str], allow: list[str], resource: str, action: str, object_id: str
) -> None:
    pairs = [tuple(e.split(":", 1)) for e in allow]
    assert permits(scopes, allow, resource, action, object_id) == rbac.key_permits(
        scopes, pairs, resource, action, object_id
    )
