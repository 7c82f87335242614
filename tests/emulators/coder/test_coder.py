"""The Coder /api/v2 emulator over HTTPS, through requests and lib.clients.coder.CoderClient.

Test names `test_notes_6_<n>_...` cover the checklist in shared/api-specs/coder/NOTES.md §6, item n."""

from __future__ import annotations

import json
import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from lib.clients.coder import CoderClient, CoderError, parse_time
from tests.conftest import Control
from tests.emulators.coder.emulator import EXTERNAL_SCOPES, go_duration, go_time_string, rfc3339
from tests.emulators.platform import Platform
from tests.specs import API_SPECS

NS = 1_000_000_000
HOUR_NS = 3600 * NS
SIGNED_OUT = "You are signed out or your session has expired. Please sign in again to continue."
NOT_FOUND = {"message": "Resource not found or you do not have access to this resource"}
SWAGGER = API_SPECS / "coder/swagger-subset.json"


class Api:
    def __init__(self, platform: Platform) -> None:
        self.base = platform.coder.url + "/api/v2"
        self.admin = platform.coder.bootstrap_token
        self.auditor = platform.coder.auditor_token
        self.session = requests.Session()  # CA from REQUESTS_CA_BUNDLE (the platform fixture sets it)

    def call(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Coder-Session-Token"] = token
        return self.session.request(method, self.base + path, headers=headers, **kwargs)

    def mint(self, token: str, user: str = "me", **body: Any) -> requests.Response:
        return self.call("POST", f"/users/{user}/keys/tokens", token, json=body)

    def key(self, token: str) -> dict[str, Any]:
        r = self.call("GET", f"/users/me/keys/{token.split('-')[0]}", self.admin)
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result

    def org(self) -> str:
        return str(self.call("GET", "/users/me", self.admin).json()["organization_ids"][0])

    def create_user(self, username: str, **body: Any) -> requests.Response:
        payload = {"username": username, "organization_ids": [self.org()], **body}
        if not body.get("service_account"):
            payload.setdefault("email", f"{username}@example.com")
            payload.setdefault("password", "correct-horse-battery")
        return self.call("POST", "/users", self.admin, json=payload)

    def member(self, username: str, roles: tuple[str, ...] = ()) -> tuple[dict[str, Any], str]:
        """A user with the given site roles and a 30-day token of its own (minted by the owner)."""
        r = self.create_user(username, roles=list(roles), user_status="active")
        assert r.status_code == 201, r.text
        user = r.json()
        token = self.mint(self.admin, user["id"], token_name=f"{username}-t", lifetime=30 * 24 * HOUR_NS)
        assert token.status_code == 201, token.text
        return user, str(token.json()["key"])


@pytest.fixture
def api(platform: Platform) -> Api:
    return Api(platform)


def detail(r: requests.Response) -> str:
    return str(r.json().get("detail", ""))


# ---- authentication ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "carrier",
    ["cookie", "query", "header", "bearer", "bearer-lowercase", "access_token"],
)
def test_whoami_via_every_auth_carrier(api: Api, carrier: str) -> None:
    t = api.admin
    kwargs: dict[str, Any] = {
        "cookie": {"cookies": {"coder_session_token": t}},
        "query": {"params": {"coder_session_token": t}},
        "header": {"headers": {"Coder-Session-Token": t}},
        "bearer": {"headers": {"Authorization": f"Bearer {t}"}},
        "bearer-lowercase": {"headers": {"Authorization": f"bearer {t}"}},
        "access_token": {"params": {"access_token": t}},
    }[carrier]
    r = api.call("GET", "/users/me", **kwargs)
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "admin"


def test_cookie_is_read_before_the_header(api: Api) -> None:
    """APITokenFromRequest order (NOTES §1): a bad cookie is not rescued by a good header."""
    r = api.call("GET", "/users/me", cookies={"coder_session_token": "x"}, headers={"Coder-Session-Token": api.admin})
    assert r.status_code == 401
    r = api.call("GET", "/users/me", cookies={"coder_session_token": api.admin}, headers={"Coder-Session-Token": "x"})
    assert r.status_code == 200


def test_lib_client_whoami_with_bootstrap_token(platform: Platform) -> None:
    me = CoderClient(platform.coder.url, platform.coder.bootstrap_token).me()
    assert (me.username, me.roles, me.status, me.is_service_account) == ("admin", ("owner",), "active", False)


@pytest.mark.parametrize(
    ("token", "expected_detail"),
    [
        (None, 'Cookie "coder_session_token" or query parameter must be provided.'),
        ("abc", "Invalid API key format: incorrect amount of API key parts, expected 2 got 1"),
        ("a-b-c", "Invalid API key format: incorrect amount of API key parts, expected 2 got 3"),
        ("abc-" + "x" * 22, "Invalid API key format: invalid API key ID length, expected 10 got 3"),
        ("abcdefghij-short", "Invalid API key format: invalid API key secret length, expected 22 got 5"),
        ("ZZZZZZZZZZ-" + "x" * 22, "API key is invalid."),
    ],
)
def test_notes_6_6_401_bodies_fixed_message_and_detail_variants(
    api: Api, token: str | None, expected_detail: str
) -> None:
    r = api.call("GET", "/users/me", token)
    assert r.status_code == 401
    assert r.json() == {"message": SIGNED_OUT, "detail": expected_detail}
    assert r.headers["WWW-Authenticate"].startswith('Bearer realm="coder", error="invalid_token"')
    assert 'error_description="The access token is invalid"' in r.headers["WWW-Authenticate"]


def test_wrong_secret_is_its_own_401(api: Api) -> None:
    key_id = api.admin.split("-")[0]
    r = api.call("GET", "/users/me", f"{key_id}-{'q' * 22}")
    assert r.status_code == 401 and r.json() == {"message": SIGNED_OUT, "detail": "API key secret is invalid."}


def test_advancing_the_clock_past_expiry_gives_coders_expired_401(api: Api, control: Control) -> None:
    token = api.mint(api.admin, token_name="short", lifetime=60 * NS).json()["key"]
    assert api.call("GET", "/users/me", token).status_code == 200
    expires = parse_time(api.key(token)["expires_at"])
    control.advance(61)
    r = api.call("GET", "/users/me", token)
    assert r.status_code == 401
    m = re.fullmatch(r'API key expired at "(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d{1,6})?) \+0000 UTC"\.', detail(r))
    assert m, detail(r)
    assert datetime.fromisoformat(m.group(1)).replace(tzinfo=UTC) == expires
    assert 'error_description="The access token has expired"' in r.headers["WWW-Authenticate"]


@pytest.mark.parametrize(
    ("settings", "slides"),
    [
        ({}, True),  # the claimed v2.34.0 predates coder PR #26376: API tokens slide, as on a stock server
        ({"version": "v2.35.0"}, False),  # after PR #26376 tokens keep their expiry
        ({"sliding_refresh": False}, False),  # --disable-session-expiry-refresh, or a forced setting
        ({"version": "v2.35.0", "sliding_refresh": True}, True),
    ],
)
def test_notes_6_7_sliding_expiry_follows_the_claimed_version(
    api: Api, control: Control, settings: dict[str, Any], slides: bool
) -> None:
    if settings:
        control.configure("coder", **settings)
    token = api.mint(api.admin, token_name="t", lifetime=10 * HOUR_NS).json()["key"]
    before = api.key(token)["expires_at"]
    control.advance(2 * 3600)
    assert api.call("GET", "/users/me", token).status_code == 200
    assert (api.key(token)["expires_at"] != before) is slides


def test_notes_6_7_sliding_expiry_moves_only_inside_lifetime_minus_an_hour(api: Api, control: Control) -> None:
    control.configure("coder", sliding_refresh=True)
    sliding = api.mint(api.admin, token_name="sliding", lifetime=10 * HOUR_NS).json()["key"]
    first = parse_time(api.key(sliding)["expires_at"])
    control.advance(30 * 60)  # 9h30m left > lifetime - 1h: no refresh yet
    api.call("GET", "/users/me", sliding)
    assert parse_time(api.key(sliding)["expires_at"]) == first
    control.advance(31 * 60)  # 8h59m left <= 9h: moved to now + lifetime
    api.call("GET", "/users/me", sliding)
    moved = parse_time(api.key(sliding)["expires_at"])
    assert first and moved and moved - first > timedelta(minutes=60)
    assert api.key(sliding)["lifetime_seconds"] == 36000  # the requested lifetime never changes


def test_notes_6_7_last_used_moves_at_most_hourly(api: Api, control: Control) -> None:
    token = api.mint(api.admin, token_name="lu", lifetime=10 * HOUR_NS).json()["key"]
    assert api.key(token)["last_used"] == "1970-01-01T00:00:00Z"  # never used
    api.call("GET", "/users/me", token)
    first = api.key(token)["last_used"]
    assert first != "1970-01-01T00:00:00Z"
    control.advance(30 * 60)
    api.call("GET", "/users/me", token)
    assert api.key(token)["last_used"] == first
    control.advance(31 * 60)
    api.call("GET", "/users/me", token)
    assert api.key(token)["last_used"] != first


# ---- tokens -------------------------------------------------------------------------------------------------


def test_notes_6_1_lifetime_is_nanoseconds(api: Api) -> None:
    r = api.mint(api.admin, token_name="ns", lifetime=90 * 60 * NS)
    assert r.status_code == 201
    key = api.key(r.json()["key"])
    assert key["lifetime_seconds"] == 5400
    created, expires = parse_time(key["created_at"]), parse_time(key["expires_at"])
    assert created and expires and expires - created == timedelta(minutes=90)
    cfg = api.call("GET", "/users/me/keys/tokens/tokenconfig", api.admin).json()
    assert cfg == {"max_token_lifetime": 168 * HOUR_NS}  # owner cap, in ns, on a 2026 server


def test_token_lifecycle_through_lib_client(platform: Platform, api: Api) -> None:
    user, _ = api.member("ci-bot")
    client = CoderClient(platform.coder.url, api.admin)
    key = client.create_token(user["id"], "ci-bot-20260101", timedelta(days=90), ("coder:templates.author",))
    tok = client.token(user["id"], key.split("-")[0])
    assert (tok.token_name, tok.lifetime_seconds, tok.scopes, tok.username) == (
        "ci-bot-20260101",
        90 * 86400,
        ("coder:templates.author",),
        "",
    )
    names = {t.token_name for t in client.tokens("ci-bot")}
    assert names == {"ci-bot-t", "ci-bot-20260101"}
    assert client.max_token_lifetime("ci-bot") == timedelta(hours=876600)
    client.delete_token("ci-bot", tok.id)
    # the deleted key no longer authenticates
    with pytest.raises(CoderError) as info:
        client.with_token(key).me()
    assert info.value.status == 401 and info.value.detail == "API key is invalid."


def test_get_by_name_and_by_id(api: Api) -> None:
    key = api.mint(api.admin, token_name="named", lifetime=HOUR_NS).json()["key"]
    by_name = api.call("GET", "/users/admin/keys/tokens/named", api.admin)
    assert by_name.status_code == 200 and by_name.json()["id"] == key.split("-")[0]
    assert api.call("GET", "/users/admin/keys/tokens/absent", api.admin).json() == NOT_FOUND
    assert api.call("GET", "/users/admin/keys/ZZZZZZZZZZ", api.admin).status_code == 404


def test_delete_is_204_then_404(api: Api) -> None:
    key_id = api.mint(api.admin, token_name="gone", lifetime=HOUR_NS).json()["key"].split("-")[0]
    r = api.call("DELETE", f"/users/me/keys/{key_id}", api.admin)
    assert (r.status_code, r.content, r.headers.get("Content-Type")) == (204, b"", None)
    r = api.call("DELETE", f"/users/me/keys/{key_id}", api.admin)
    assert r.status_code == 404 and r.json() == NOT_FOUND


def test_expire_keeps_the_row_and_the_token_stops_working(api: Api) -> None:
    key = api.mint(api.admin, token_name="revoked", lifetime=HOUR_NS).json()["key"]
    r = api.call("PUT", f"/users/me/keys/{key.split('-')[0]}/expire", api.admin)
    assert r.status_code == 204
    assert api.call("GET", "/users/me", key).status_code == 401
    listed = api.call("GET", "/users/me/keys/tokens", api.admin, params={"include_expired": "true"}).json()
    assert "revoked" in {k["token_name"] for k in listed}
    assert api.call("PUT", "/users/me/keys/ZZZZZZZZZZ/expire", api.admin).status_code == 404


def test_notes_6_2_cap_is_inclusive_and_follows_target_roles(api: Api, control: Control) -> None:
    user, _ = api.member("ci-cap")
    control.configure("coder", max_token_lifetime="2160h")
    assert api.mint(api.admin, user["id"], token_name="eq", lifetime=2160 * HOUR_NS).status_code == 201
    over = api.mint(api.admin, user["id"], token_name="over", lifetime=2160 * HOUR_NS + 1)
    assert over.status_code == 400
    # the owner itself is capped by max_admin_token_lifetime (168h), whatever the member cap is
    r = api.mint(api.admin, token_name="owner-long", lifetime=200 * HOUR_NS)
    assert r.status_code == 400 and detail(r) == "lifetime must be less than 168h0m0s"
    assert api.call("GET", f"/users/{user['id']}/keys/tokens/tokenconfig", api.admin).json() == {
        "max_token_lifetime": 2160 * HOUR_NS
    }
    assert api.call("GET", "/users/admin/keys/tokens/tokenconfig", api.admin).json() == {
        "max_token_lifetime": 168 * HOUR_NS
    }


def test_notes_6_3_lifetime_400_message_quotes_go_duration(api: Api, control: Control) -> None:
    user, _ = api.member("ci-msg")
    control.configure("coder", max_token_lifetime=90 * 86400)  # seconds
    r = api.mint(api.admin, user["id"], token_name="year", lifetime=8760 * HOUR_NS)
    assert r.status_code == 400
    assert r.json() == {
        "message": "Failed to validate create API key request.",
        "detail": "lifetime must be less than 2160h0m0s",
    }
    r = api.mint(api.admin, user["id"], token_name="neg", lifetime=-1)
    assert detail(r) == "lifetime must be positive number greater than 0"


def test_zero_lifetime_means_the_deployment_default(api: Api, control: Control) -> None:
    control.configure("coder", default_token_lifetime="24h")
    key = api.key(api.mint(api.admin, token_name="default").json()["key"])
    assert key["lifetime_seconds"] == 86400


def test_body_of_the_wrong_type_gets_the_go_decode_error(api: Api) -> None:
    r = api.mint(api.admin, token_name="typed", lifetime="720h")
    assert r.status_code == 400
    assert r.json() == {
        "message": "Request body must be valid JSON.",
        "detail": "json: cannot unmarshal string into Go struct field CreateTokenRequest.lifetime"
        " of type time.Duration",
    }
    r = api.call("POST", "/users/me/keys/tokens", api.admin, data=b"[1]")
    assert detail(r) == "json: cannot unmarshal array into Go value of type codersdk.CreateTokenRequest"


def test_notes_6_4_duplicate_name_409_even_when_expired(api: Api) -> None:
    key = api.mint(api.admin, token_name="dup", lifetime=HOUR_NS).json()["key"]
    expected = {
        "message": 'A token with name "dup" already exists.',
        "validations": [{"field": "name", "detail": "This value is already in use and should be unique."}],
    }
    r = api.mint(api.admin, token_name="dup", lifetime=HOUR_NS)
    assert r.status_code == 409 and r.json() == expected
    api.call("PUT", f"/users/me/keys/{key.split('-')[0]}/expire", api.admin)
    r = api.mint(api.admin, token_name="dup", lifetime=HOUR_NS)
    assert r.status_code == 409 and r.json() == expected
    other, _ = api.member("dup-owner")  # names are unique per user, not globally
    assert api.mint(api.admin, other["id"], token_name="dup", lifetime=HOUR_NS).status_code == 201


def test_notes_6_5_key_shape_and_id_lookup_ignores_user(api: Api) -> None:
    key = api.mint(api.admin, token_name="shape", lifetime=HOUR_NS).json()["key"]
    assert re.fullmatch(r"[0-9A-Za-z]{10}-[0-9A-Za-z]{22}", key)
    key_id = key.split("-")[0]
    r = api.call("GET", f"/users/auditor/keys/{key_id}", api.admin)  # {user} is someone else: still found
    assert r.status_code == 200 and r.json()["id"] == key_id
    assert api.call("DELETE", f"/users/auditor/keys/{key_id}", api.admin).status_code == 204
    assert api.call("GET", "/users/me", key).json()["detail"] == "API key is invalid."


def test_notes_6_13_legacy_scope_field_and_canonical_scopes(api: Api) -> None:
    cases = [
        ({}, "all", ["coder:all"]),
        ({"scope": "application_connect"}, "application_connect", ["coder:application_connect"]),
        ({"scopes": ["all", "coder:all", "template:*"]}, "all", ["coder:all", "template:*"]),
        ({"scopes": ["template:read", "file:*"]}, "", ["template:read", "file:*"]),
    ]
    for i, (body, scope, scopes) in enumerate(cases):
        key = api.key(api.mint(api.admin, token_name=f"s{i}", lifetime=HOUR_NS, **body).json()["key"])
        assert (key["scope"], key["scopes"]) == (scope, scopes), body


def test_unsupported_scope_is_400(api: Api) -> None:
    for bad in ("ai_provider:read", "coder:everything", "workspace:share"):
        r = api.mint(api.admin, token_name="bad", lifetime=HOUR_NS, scopes=[bad])
        assert r.status_code == 400
        assert r.json() == {
            "message": "Failed to create API key.",
            "detail": f'invalid or unsupported API key scope: "{bad}"',
        }


def test_allow_list_round_trip_string_and_object_forms(api: Api) -> None:
    ws = str(uuid.uuid4())
    allow = [f"workspace:{ws}", {"type": "template", "id": "*"}, "template:" + str(uuid.uuid4())]
    key = api.key(api.mint(api.admin, token_name="allow", lifetime=HOUR_NS, allow_list=allow).json()["key"])
    assert key["allow_list"] == [{"type": "workspace", "id": ws}, {"type": "template", "id": "*"}]
    default = api.key(api.mint(api.admin, token_name="allow-default", lifetime=HOUR_NS).json()["key"])
    assert default["allow_list"] == [{"type": "*", "id": "*"}]


def test_the_string_form_release_line_sends_and_takes_only_type_id_strings(api: Api, control: Control) -> None:
    """codersdk/allowlist.go on one release line: MarshalJSON "encodes as a JSON string: \"<type>:<id>\"", and
    UnmarshalJSON unmarshals each entry into a Go string, so an object entry is a decode error."""
    control.configure("coder", allow_list_form="string")
    ws = str(uuid.uuid4())
    key = api.key(
        api.mint(api.admin, token_name="allow-s", lifetime=HOUR_NS, allow_list=[f"workspace:{ws}"]).json()["key"]
    )
    assert key["allow_list"] == [f"workspace:{ws}"]
    listed = api.call("GET", "/users/me/keys/tokens", api.admin).json()
    assert {"allow_list": ["*:*"]}.items() <= next(t for t in listed if t["token_name"] == "bootstrap").items()
    r = api.mint(api.admin, token_name="allow-o", lifetime=HOUR_NS, allow_list=[{"type": "workspace", "id": ws}])
    assert r.status_code == 400 and r.json() == {
        "message": "Request body must be valid JSON.",
        "detail": "json: cannot unmarshal object into Go value of type string",
    }
    records = CoderClient(api.base.removesuffix("/api/v2"), api.admin).tokens("me")  # lib reads this form too
    assert records.malformed == () and ("*:*",) in {t.allow_list for t in records}


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("workspace", 'invalid allow_list entry "workspace": want <type>:<id>'),
        ("spaceship:*", 'unknown resource type "spaceship"'),
        ("workspace:not-a-uuid", 'invalid workspace ID (must be UUID): "not-a-uuid"'),
        ({"type": "workspace"}, "allow_list entry must include both type and id"),
        (7, "invalid allow_list entry: expected object with type/id or string"),
    ],
)
def test_allow_list_validation_400(api: Api, entry: Any, expected: str) -> None:
    r = api.mint(api.admin, token_name="allow-bad", lifetime=HOUR_NS, allow_list=[entry])
    assert r.status_code == 400 and r.json() == {"message": "Request body must be valid JSON.", "detail": expected}


def test_notes_6_14_empty_token_name_gets_random_docker_name(api: Api) -> None:
    key = api.mint(api.admin, lifetime=HOUR_NS).json()["key"]
    assert re.fullmatch(r"[a-z]+_[a-z]+[0-9]", api.key(key)["token_name"])


def test_notes_6_8_listing_include_expired_include_all_username_null(api: Api, control: Control) -> None:
    _, member_token = api.member("lister")
    r = api.call("GET", "/users/me/keys/tokens", member_token)
    assert [k["token_name"] for k in r.json()] == ["lister-t"] and r.json()[0]["username"] == "lister"
    api.mint(member_token, token_name="brief", lifetime=60 * NS)
    control.advance(120)
    hidden = api.call("GET", "/users/me/keys/tokens", member_token).json()
    shown = api.call("GET", "/users/me/keys/tokens", member_token, params={"include_expired": "true"}).json()
    assert {k["token_name"] for k in hidden} == {"lister-t"}
    assert {k["token_name"] for k in shown} == {"lister-t", "brief"}
    everyone = api.call("GET", "/users/me/keys/tokens", api.admin, params={"include_all": "true"}).json()
    assert {(k["username"], k["token_name"]) for k in everyone} == {
        ("admin", "bootstrap"),
        ("auditor", "auditor"),
        ("lister", "lister-t"),
    }
    # a member's include_all is filtered down to its own tokens (RBAC filter, no 403)
    mine = api.call("GET", "/users/me/keys/tokens", member_token, params={"include_all": "true"}).json()
    assert {k["username"] for k in mine} == {"lister"}
    fresh, fresh_token = api.member("empty")
    api.call("DELETE", f"/users/me/keys/{fresh_token.split('-')[0]}", api.admin)
    r = api.call("GET", f"/users/{fresh['id']}/keys/tokens", api.admin)
    assert r.status_code == 200 and r.content == b"null\n"  # Go nil slice, not []
    assert CoderClient(api.base.removesuffix("/api/v2"), api.admin).tokens("empty").tokens == ()


# ---- users, roles, RBAC ---------------------------------------------------------------------------------------


def test_user_shape(api: Api) -> None:
    me = api.call("GET", "/users/me", api.admin).json()
    assert set(me) == {
        "id", "username", "name", "email", "avatar_url", "created_at", "updated_at", "last_seen_at", "status",
        "login_type", "is_service_account", "has_ai_seat", "theme_preference", "organization_ids", "roles",
    }  # fmt: skip
    assert me["roles"] == [{"name": "owner", "display_name": "Owner"}]
    assert api.call("GET", f"/users/{me['id']}", api.admin).json()["username"] == "admin"
    assert api.call("GET", "/users/ADMIN", api.admin).json()["id"] == me["id"]  # usernames are case-insensitive
    r = api.call("GET", "/users/nobody", api.admin)
    assert r.status_code == 400
    assert r.json() == {"message": '"user" must be an existing uuid or username.', "detail": 'queried user="nobody"'}


def test_notes_6_9_roles_endpoint_returns_user_roles_not_user(api: Api) -> None:
    user, _ = api.member("ci-roles")
    org = api.org()
    assert api.call("GET", f"/users/{user['id']}/roles", api.admin).json() == {
        "roles": [],
        "organization_roles": {org: []},
    }
    assert user["roles"] == []  # member is implicit, never listed
    r = api.call("PUT", f"/users/{user['id']}/roles", api.admin, json={"roles": ["template-admin", "member"]})
    assert r.status_code == 200 and "username" in r.json()  # PUT answers with a User
    assert r.json()["roles"] == [{"name": "template-admin", "display_name": "Template Admin"}]
    assert api.call("GET", "/users/ci-roles/roles", api.admin).json()["roles"] == ["template-admin"]


def test_role_changes_rules(api: Api) -> None:
    user, _ = api.member("ci-role-rules")
    bad = api.call("PUT", f"/users/{user['id']}/roles", api.admin, json={"roles": ["wizard"]})
    assert bad.status_code == 400 and bad.json() == {"message": '"wizard" is not a supported role'}
    own = api.call("PUT", "/users/me/roles", api.admin, json={"roles": []})
    assert own.status_code == 400 and own.json() == {"message": "You cannot change your own roles."}
    admin_user, admin_token = api.member("ua", ("user-admin",))
    assert api.call("PUT", "/users/ci-role-rules/roles", admin_token, json={"roles": ["auditor"]}).status_code == 200
    r = api.call("PUT", "/users/ci-role-rules/roles", admin_token, json={"roles": ["owner"]})
    assert r.status_code == 400 and r.json() == {"message": 'not authorized to assign role "owner"'}
    r = api.call("PUT", f"/users/{admin_user['id']}/roles", api.auditor, json={"roles": ["auditor"]})
    assert r.status_code == 403 and r.json()["message"] == "Forbidden."


def test_list_users_filters_and_paging(api: Api) -> None:
    api.member("ta-one", ("template-admin",))
    api.member("ta-two", ("template-admin",))
    assert api.create_user("sleepy").status_code == 201  # dormant by default

    def names(q: str = "", **params: str) -> tuple[list[str], int]:
        body = api.call("GET", "/users", api.admin, params={"q": q, **params}).json()
        return [u["username"] for u in body["users"]], body["count"]

    assert names("role:template-admin") == (["ta-one", "ta-two"], 2)
    assert names("status:dormant") == (["sleepy"], 1)
    assert names("role:owner,auditor") == (["admin", "auditor"], 2)
    assert names(limit="2", offset="1") == (["auditor", "sleepy"], 5)
    assert names("ta-") == (["ta-one", "ta-two"], 2)
    r = api.call("GET", "/users", api.admin, params={"q": "colour:blue"})
    assert r.status_code == 400 and r.json()["message"] == "Invalid user search query."


def test_notes_6_11_service_accounts_and_dormant_activation(api: Api) -> None:
    r = api.create_user("cicd-template-deployer", service_account=True)
    assert r.status_code == 201, r.text
    sa = r.json()
    assert (sa["email"], sa["login_type"], sa["is_service_account"], sa["status"]) == ("", "none", True, "dormant")
    roles = api.call("GET", f"/users/{sa['id']}/roles", api.admin).json()
    assert roles["organization_roles"] == {api.org(): ["organization-service-account"]}
    bad = api.create_user("sa-with-mail", service_account=True, email="x@example.com")
    assert bad.status_code == 400
    listed = api.call("GET", "/users", api.admin, params={"q": "service_account:true"}).json()
    assert [u["username"] for u in listed["users"]] == ["cicd-template-deployer"]
    token = api.mint(api.admin, sa["id"], token_name="cicd-template-prod-20241216", lifetime=2160 * HOUR_NS)
    assert token.status_code == 201
    me = api.call("GET", "/users/me", token.json()["key"]).json()
    assert (me["username"], me["status"]) == ("cicd-template-deployer", "active")  # activated on first use


def test_create_user_validation(api: Api) -> None:
    r = api.create_user("bad_name")
    assert r.status_code == 400 and r.json()["validations"] == [
        {"field": "username", "detail": 'Validation failed for tag "username" with value: "bad_name"'}
    ]
    assert api.create_user("admin").json() == {"message": "User already exists."}
    _, member_token = api.member("plain")
    r = api.call(
        "POST",
        "/users",
        member_token,
        json={"username": "x", "email": "x@example.com", "password": "p4ssw0rd-long", "organization_ids": [api.org()]},
    )
    assert r.status_code == 403 and r.json() == {"message": "You are not authorized to create users."}


def test_auditor_rbac_reads_users_but_not_other_users_tokens(api: Api) -> None:
    """coderd/rbac/roles.go: the auditor role reads users, audit logs and templates, and has no api_key
    permission; token lists drop what the caller may not read (NOTES §2), so the auditor sees `null`."""
    assert api.call("GET", "/users/admin", api.auditor).status_code == 200
    assert [u["username"] for u in api.call("GET", "/users", api.auditor).json()["users"]] == ["admin", "auditor"]
    r = api.call("GET", "/users/admin/keys/tokens", api.auditor, params={"include_expired": "true"})
    assert r.status_code == 200 and r.content == b"null\n"
    every = api.call("GET", "/users/me/keys/tokens", api.auditor, params={"include_all": "true"}).json()
    assert {k["username"] for k in every} == {"auditor"}
    admin_key = api.admin.split("-")[0]
    assert api.call("GET", f"/users/admin/keys/{admin_key}", api.auditor).json() == NOT_FOUND
    assert api.call("GET", "/users/admin/roles", api.auditor).json() == NOT_FOUND  # needs read_personal


def test_notes_6_10_forbidden_is_404_and_minting_for_others_is_500(api: Api) -> None:
    _, member_token = api.member("nosy")
    # a member cannot even resolve another user: ExtractUserParam answers 400
    assert api.call("GET", "/users/admin", member_token).status_code == 400
    assert api.call("GET", "/users/admin/keys/tokens", member_token).status_code == 400
    assert api.call("DELETE", f"/users/me/keys/{api.admin.split('-')[0]}", member_token).json() == NOT_FOUND
    for minter in (api.auditor, api.member("useradmin", ("user-admin",))[1]):
        r = api.mint(minter, "nosy", token_name="for-you", lifetime=HOUR_NS)
        assert r.status_code == 500
        assert r.json() == {
            "message": "Failed to create API key.",
            "detail": "insert API key: unauthorized: rbac: forbidden",
        }


def test_delete_user_removes_its_tokens(api: Api) -> None:
    _, token = api.member("leaver")
    assert api.call("DELETE", "/users/leaver", api.admin).json() == {"message": "User has been deleted!"}
    assert api.call("GET", "/users/me", token).json()["detail"] == "API key is invalid."
    assert api.call("DELETE", "/users/me", api.admin).json() == {"message": "You cannot delete yourself!"}


# ---- wire format, settings, faults -----------------------------------------------------------------------------


def test_notes_6_12_response_format(api: Api) -> None:
    r = api.create_user("escaper", name="<b>R&D</b>")
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert r.content.endswith(b"}\n") and b"\\u003cb\\u003eR\\u0026D\\u003c/b\\u003e" in r.content
    assert r.json()["name"] == "<b>R&D</b>"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, 120000, tzinfo=UTC)) == "2026-01-02T03:04:05.12Z"
    assert rfc3339(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05Z"
    assert go_time_string(datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)) == "2026-01-02 03:04:05.123456 +0000 UTC"
    assert api.call("GET", "/nowhere", api.admin).json() == {"message": "Route not found."}
    assert api.call("PATCH", "/users/me/keys/tokens", api.admin).status_code == 405


@pytest.mark.parametrize(
    ("ns", "text"),
    [(2160 * HOUR_NS, "2160h0m0s"), (5400 * NS, "1h30m0s"), (1500 * 10**6, "1.5s"), (250 * 10**6, "250ms"), (0, "0s")],
)
def test_go_duration_strings(ns: int, text: str) -> None:
    assert go_duration(ns) == text


def test_buildinfo_and_scopes_need_no_auth(api: Api, control: Control) -> None:
    control.configure("coder", version="v2.23.1")
    assert api.call("GET", "/buildinfo").json()["version"] == "v2.23.1"
    external = api.call("GET", "/auth/scopes").json()["external"]
    assert "coder:all" in external and "template:*" in external and external == sorted(external)
    assert set(external) <= EXTERNAL_SCOPES
    # every advertised scope is a member of the swagger enum @00bbef6b
    enum = json.loads(SWAGGER.read_text())["definitions"]["codersdk.APIKeyScope"]["enum"]
    assert set(external) <= set(enum)


def test_configure_rejects_unknown_and_reset_restores_defaults(platform: Platform, api: Api, control: Control) -> None:
    r = control.session.post(f"{control.url}/config", json={"service": "coder", "settings": {"colour": 1}})
    assert r.status_code == 400 and "colour" in r.text
    assert control.configure("coder", max_admin_token_lifetime="720h")["max_admin_token_lifetime"] == 720 * 3600
    assert api.mint(api.admin, token_name="long-owner", lifetime=700 * HOUR_NS).status_code == 201
    platform.reset()
    assert api.call("GET", "/users/me/keys/tokens/tokenconfig", api.admin).json()["max_token_lifetime"] == 168 * HOUR_NS
    assert api.call("GET", "/users/me", api.admin).status_code == 200  # the seeded token survives resets


def test_injected_fault_uses_coders_envelope(api: Api, control: Control) -> None:
    control.fault("coder", "tokens.create", status=503, message="database is down")
    r = api.mint(api.admin, token_name="f", lifetime=HOUR_NS)
    assert r.status_code == 503 and r.json() == {"message": "database is down"}
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert api.mint(api.admin, token_name="f", lifetime=HOUR_NS).status_code == 201
    assert control.count("coder", "tokens.create") == 2


# ---- scopes and allow lists bound what a key may do (tests/emulators/coder/rbac.py, issue 16) ------------------


def scoped(api: Api, user: dict[str, Any], name: str, scopes: list[str], allow: list[str] | None = None) -> str:
    body: dict[str, Any] = {"token_name": name, "lifetime": HOUR_NS, "scopes": scopes}
    if allow is not None:
        body["allow_list"] = allow
    r = api.mint(api.admin, user["id"], **body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def test_the_charts_example_scopes_cannot_read_a_user_but_authenticate(api: Api) -> None:
    """coder:workspaces.access expands to workspace/template/organization_member permissions only
    (coderd/rbac/scopes.go compositePerms), and one workspace in the allow list excludes every user object."""
    user, _ = api.member("ws-user")
    key = scoped(api, user, "access", ["coder:workspaces.access"], [f"workspace:{uuid.uuid4()}"])
    assert api.call("GET", "/users/me", key).status_code == 404
    assert api.call("GET", "/users/me", key).json() == NOT_FOUND
    ssh = api.call("GET", "/deployment/ssh", key)  # coderd/deployment.go sshConfig: authentication only
    assert ssh.status_code == 200 and ssh.json()["hostname_prefix"] == "coder."
    assert api.call("GET", "/users/me/keys/tokens", key).json() is None  # api_key:read is not in its scopes
    assert api.mint(key, token_name="escalate", lifetime=HOUR_NS).status_code == 500  # api_key:create neither


@pytest.mark.parametrize(
    ("scopes", "allow", "status"),
    [
        (["user:read"], None, 200),  # PR #23348: user:read lets a scoped token read users
        (["coder:workspaces.access", "user:read"], None, 200),  # the mint's default
        (["coder:workspaces.access", "user:read"], ["workspace:*"], 404),  # user:read, but no user in the allow list
        (["user:read"], ["user:{id}"], 200),
        (["user:read"], [f"user:{uuid.UUID(int=7)}"], 404),  # another user's id
        (["user:read"], ["user:*"], 200),
        (["coder:all"], None, 200),
        (["application_connect"], None, 404),  # seed 002's legacy name: coder:application_connect, workspaces only
        (["coder:apikeys.manage_self"], None, 404),
    ],
)
def test_users_me_needs_user_read_on_that_user_in_scope_and_allow_list(
    api: Api, scopes: list[str], allow: list[str] | None, status: int
) -> None:
    user, _ = api.member("who")
    key = scoped(api, user, "k", scopes, [a.replace("{id}", user["id"]) for a in allow] if allow else None)
    assert api.call("GET", "/users/me", key).status_code == status


def test_apikeys_manage_self_lists_and_deletes_its_own_keys_only(api: Api) -> None:
    user, plain = api.member("keys-user")
    key = scoped(api, user, "manage", ["coder:apikeys.manage_self"])
    listed = api.call("GET", "/users/me/keys/tokens", key).json()
    assert {t["token_name"] for t in listed} == {"keys-user-t", "manage"}
    assert api.call("GET", "/users/me/roles", key).status_code == 404  # user:read_personal is not in it
    assert api.call("DELETE", f"/users/me/keys/{plain.split('-')[0]}", key).status_code == 204
    admin_key = api.admin.split("-")[0]
    assert api.call("DELETE", f"/users/me/keys/{admin_key}", key).status_code == 404  # the role half still holds


def test_an_owners_scoped_key_is_bound_by_its_scope_too(api: Api) -> None:
    me = api.call("GET", "/users/me", api.admin).json()
    key = scoped(api, me, "owner-narrow", ["template:read"])
    assert api.call("GET", "/users", key).json()["users"] == []  # AuthorizeFilter: no user:read
    assert api.create_user("nope").status_code == 201  # the unscoped bootstrap still can
    body = {"username": "nope2", "email": "n@example.com", "password": "correct-horse-battery"}
    r = api.call("POST", "/users", key, json={**body, "organization_ids": [api.org()]})
    assert r.status_code == 403 and r.json()["message"] == "Forbidden."


# ---- a stock server's housekeeping: purge and rate limit (issue 16) -----------------------------------------------


def test_expired_keys_are_purged_after_the_retention_and_free_their_name(api: Api, control: Control) -> None:
    """coderd/database/dbpurge: every 10 minutes, keys expired more than retention.api_keys (7 d) ago go."""
    api.mint(api.admin, token_name="short", lifetime=HOUR_NS)
    control.advance(2 * 3600)  # expired, not yet purged: listed, and its name still taken
    names = {t["token_name"] for t in api.call("GET", "/users/me/keys/tokens?include_expired=true", api.admin).json()}
    assert "short" in names
    assert api.mint(api.admin, token_name="short", lifetime=HOUR_NS).status_code == 409
    control.advance(7 * 86400)  # expired 7 d + 1 h ago: the next purge removes the row
    names = {t["token_name"] for t in api.call("GET", "/users/me/keys/tokens?include_expired=true", api.admin).json()}
    assert "short" not in names and "bootstrap" in names
    assert api.mint(api.admin, token_name="short", lifetime=HOUR_NS).status_code == 201


def test_retention_zero_never_purges(api: Api, control: Control) -> None:
    control.configure("coder", api_key_retention=0)
    api.mint(api.admin, token_name="kept", lifetime=HOUR_NS)
    control.advance(30 * 86400)
    names = {t["token_name"] for t in api.call("GET", "/users/me/keys/tokens?include_expired=true", api.admin).json()}
    assert "kept" in names


def test_rate_limit_per_user_and_path_with_coders_429(api: Api, control: Control) -> None:
    """coderd/httpmw/ratelimit.go over go-chi/httprate: a sliding window per user and path; headers on every
    answer; over the limit 429, Retry-After = the window, Coder's message."""
    _, member_token = api.member("limited")
    control.configure("coder", api_rate_limit=5)
    answers = [api.call("GET", "/users/me", api.admin) for _ in range(6)]
    assert [r.status_code for r in answers] == [200] * 5 + [429]
    assert [r.headers["X-Ratelimit-Remaining"] for r in answers[:5]] == ["4", "3", "2", "1", "0"]
    limited = answers[5]
    assert limited.json() == {"message": "You've been rate limited for sending more than 5 requests in 1m0s."}
    assert limited.headers["Retry-After"] == "60" and limited.headers["X-Ratelimit-Limit"] == "5"
    assert api.call("GET", "/users/me/roles", api.admin).status_code == 200  # another path, its own budget
    assert api.call("GET", "/users/me", member_token).status_code == 200  # another user, its own budget


def test_an_owner_may_bypass_the_rate_limit_and_nobody_else(api: Api, control: Control) -> None:
    _, member_token = api.member("not-owner")
    control.configure("coder", api_rate_limit=2)
    bypass = {"X-Coder-Bypass-Ratelimit": "true"}
    assert all(api.call("GET", "/users/me", api.admin, headers=bypass).status_code == 200 for _ in range(5))
    r = api.call("GET", "/users/me", member_token, headers=bypass)
    assert r.status_code == 428 and '"X-Coder-Bypass-Ratelimit" provided but user is not owner' in r.text


def test_per_user_key_and_time_scale_let_the_window_slide(api: Api, control: Control) -> None:
    control.configure("coder", api_rate_limit=3, rate_limit_key="user", rate_limit_time_scale=60.0)
    paths = ["/users/me", "/users/me/roles", "/users/me/keys/tokens"]
    assert [api.call("GET", p, api.admin).status_code for p in paths] == [200, 200, 200]
    refused = api.call("GET", "/users/me", api.admin)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"  # ceil(60 s / 60)
    deadline = time.monotonic() + 5
    while api.call("GET", "/users/me", api.admin).status_code == 429:  # one real second is a minute here
        assert time.monotonic() < deadline, "the window never slid"
        time.sleep(0.2)
