"""token-expiry-check's fault matrix: Coder (who am I, build info, users, token lists), Vault (`--vault-check`:
the workspace token coder-token-mint keeps in KV v2, read through the fault proxy in front of the platform's
OpenBao), the Pushgateway it pushes to and the webhook it alerts.

The world before each case: ci-bot holds a token with 14 days left, so the run has one new alert to post and
metrics to push. The job writes nothing to Coder, so there is nothing it could delete; its safety rule is
the other way round: a check that could not see everything, or could not deliver, must not pass (exit 1).

A webhook retry after a timeout or a 5xx may deliver the alert twice: every attempt carries the same
`Idempotency-Key` (the SHA-256 of the payload, lib/clients/webhook.py), so the receiver can drop the duplicate.

Left out, with the reason: malformed JSON from the Pushgateway or the webhook (the job never reads their
answer bodies, only the status), and a failing second page for them (neither is a list).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import hvac
import pytest
import requests

from lib.clients.webhook import IDEMPOTENCY_HEADER, idempotency_key
from tests.conftest import Control
from tests.emulators.platform import Platform
from tests.faults.common import (
    DELAY_PAST_TIMEOUT,
    Answer,
    Case,
    Converged,
    Fails,
    Script,
    case,
    case_env,
    check_outcome,
    closed_port_url,
    fault,
    run_case,
    scripted,
)

pytestmark = pytest.mark.e2e

DAY = 86400
NS = 10**9
USER = "ci-bot"
TOKEN = "ci-deploy-prod-20260101"
T = DELAY_PAST_TIMEOUT
ALWAYS = None  # Answer.then for every later request

CASES = [
    # ---- Coder --------------------------------------------------------------------------------------------------
    case("coder-refused", Fails(("Coder", "GET /users/me", "Connection")), env={"CODER_URL": "closed"}),
    case("coder-timeout", Converged(("coder", "tokens.list")), fault("coder", "tokens.list", delay=T)),
    case("coder-500-once", Converged(("coder", "tokens.list")), fault("coder", "tokens.list", status=500)),
    case(
        "coder-503-always",
        Fails(("cannot read tokens", "Coder answered 503")),
        fault("coder", "tokens.list", status=503, count=None),
    ),
    case(
        "coder-429-retry-after",
        Converged(("coder", "buildinfo")),
        fault("coder", "buildinfo", status=429, retry_after=1),
    ),
    case(
        "coder-401",
        Fails(("Coder", "GET /users/me", "401"), ("coder", "users.get", 1)),
        fault("coder", "users.get", status=401, count=None, match="/users/me"),
    ),
    case(
        "coder-403",
        Fails(("cannot read tokens", "Coder answered 403"), ("coder", "tokens.list", 1)),
        fault("coder", "tokens.list", status=403, count=None),
    ),
    case(
        "coder-malformed-json",
        Fails(("cannot read tokens", "not JSON")),
        fault("coder", "tokens.list", body='[{"id": "'),
    ),
    case(
        "coder-user-list-page-2-fails",
        Fails(("Coder", "GET /users", "500")),
        fault("coder", "users.list", status=500, skip=1, count=None),
        args=("--all-users",),
    ),
    # ---- the Pushgateway (scripted answers, see SCRIPTS) --------------------------------------------------------
    case("pushgateway-refused", Fails(("Pushgateway", "PUT /metrics/job/token-expiry-check", "refused"))),
    case("pushgateway-timeout", Converged()),
    case("pushgateway-500-once", Converged()),
    case("pushgateway-503-always", Fails(("Pushgateway", "PUT /metrics/job/token-expiry-check", "HTTP 503"))),
    case("pushgateway-429-retry-after", Converged()),
    case("pushgateway-401", Fails(("Pushgateway", "HTTP 401"))),
    case("pushgateway-403", Fails(("Pushgateway", "HTTP 403"))),
    # ---- Vault (--vault-check; the entry holds ci-bot's token) -------------------------------------------------------
    case("vault-refused", Fails(("Vault", "Connection")), env={"VAULT_ADDR": "closed"}),
    case("vault-timeout", Converged(("vault", "kv.read")), fault("vault", "kv.read", delay=T)),
    case("vault-500-once", Converged(("vault", "kv.read")), fault("vault", "kv.read", status=500)),
    case("vault-dropped", Converged(("vault", "kv.read")), fault("vault", "kv.read", drop="request")),
    case("vault-503-always", Fails(("Vault", "read", "503")), fault("vault", "kv.read", status=503, count=None)),
    case(
        "vault-403",
        Fails(("Vault", "read", "403"), ("vault", "kv.read", 1)),
        fault("vault", "kv.read", status=403, count=None, message="permission denied"),
    ),
    case("vault-malformed-json", Fails(("Vault", "read")), fault("vault", "kv.read", body='{"data": {')),
    # ---- the webhook ----------------------------------------------------------------------------------------------
    case("webhook-refused", Fails(("webhook POST", "ConnectionError"))),
    case("webhook-timeout", Converged()),
    case("webhook-500-once", Converged()),
    case("webhook-503-always", Fails(("webhook POST", "HTTP 503"))),
    case("webhook-429-retry-after", Converged()),
    case("webhook-401", Fails(("webhook POST", "HTTP 401"))),
    case("webhook-403", Fails(("webhook POST", "HTTP 403"))),
]

# (answers in order, then the answer to every later request, how many requests that makes at most)
SCRIPTS: dict[str, tuple[tuple[Answer, ...], Answer | None]] = {
    "timeout": ((Answer(delay=T),), None),
    "500-once": ((Answer(500),), None),
    "503-always": ((), Answer(503)),
    "429-retry-after": ((Answer(429, headers={"Retry-After": "1"}),), None),
    "401": ((), Answer(401)),
    "403": ((), Answer(403)),
}
ATTEMPTS = {"401": 1, "403": 1}  # never retried


def _seed(platform: Platform, users: int = 0) -> None:
    owner = requests.Session()
    owner.verify = str(platform.ca_path)
    owner.headers["Coder-Session-Token"] = platform.coder.bootstrap_token
    api = platform.coder.url + "/api/v2"
    org = owner.get(f"{api}/users/me").json()["organization_ids"]
    for name in [USER, *(f"person-{i:03d}" for i in range(users))]:
        body = {"username": name, "email": f"{name}@example.test", "login_type": "none", "organization_ids": org}
        owner.post(f"{api}/users", json=body).raise_for_status()
    r = owner.post(f"{api}/users/{USER}/keys/tokens", json={"token_name": TOKEN, "lifetime": 15 * DAY * NS})
    r.raise_for_status()
    key = r.json()["key"]
    record = owner.get(f"{api}/users/{USER}/keys/tokens/{TOKEN}").json()
    entry = {  # what coder-token-mint writes (DESIGN.md), holding ci-bot's token
        "token": key,
        "token_id": key.split("-")[0],
        "token_name": TOKEN,
        "user": USER,
        "coder_url": platform.coder.url,
        "issued_at": record["created_at"],
        "expires_at": record["expires_at"],
    }
    vault = hvac.Client(url=platform.vault.url, token=platform.vault.root_token, verify=str(platform.ca_path))
    vault.secrets.kv.v2.create_or_update_secret(path="coder-cli-session-token", secret=entry, mount_point="secret")


@contextmanager
def _receivers(c: Case, platform: Platform) -> Iterator[tuple[dict[str, str], dict[str, Script]]]:
    """A URL per receiver: a scripted one, or a closed port for the refused case. The webhook speaks https with
    the platform's CA; the Pushgateway stand-in is plain http on loopback (the run passes --allow-insecure-http)."""
    target, _, kind = c.id.partition("-")
    urls: dict[str, str] = {}
    scripts: dict[str, Script] = {}
    with ExitStack() as stack:
        for name in ("pushgateway", "webhook"):
            scheme, tls = ("https", platform.server_tls()) if name == "webhook" else ("http", None)
            if name == target and kind == "refused":
                urls[name] = closed_port_url(scheme)
                continue
            answers, then = SCRIPTS[kind] if name == target else ((), None)
            scripts[name] = stack.enter_context(scripted(*answers, then=then, tls=tls))
            urls[name] = scripts[name].url
        yield urls, scripts


@pytest.mark.parametrize("c", CASES, ids=lambda c: c.id)
def test_token_expiry_check_under_fault(c: Case, platform: Platform, control: Control, env: dict[str, str]) -> None:
    _seed(platform, users=100 if "page-2" in c.id else 0)  # 101 users: Coder's list pages at 100 (lib/clients/coder.py)
    control.advance(DAY)  # 14 days left: the 14-day alert is new
    control.clear_requests()
    owner_env = {**case_env(c, env), "CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"]}  # owners see tokens
    users = () if "--all-users" in c.args else ("--user", USER)
    vault_check = ("--vault-check",) if c.id.startswith("vault-") else ()
    with _receivers(c, platform) as (urls, scripts):
        proc = run_case(
            "token-expiry-check",
            c,
            control,
            owner_env,
            *users,
            *vault_check,
            "--now",
            control.now(),
            "--output",
            "json",
            "--webhook-url",
            urls["webhook"] + "/hooks/T000/B000/s3cr3tpath",
            "--pushgateway-url",
            urls["pushgateway"],
            "--allow-insecure-http",
        )
        seen = {name: list(script.seen) for name, script in scripts.items()}
        headers = {name: list(script.headers) for name, script in scripts.items()}
    check_outcome(c, proc, control)
    assert "s3cr3tpath" not in proc.stdout + proc.stderr  # a Slack webhook's path is its credential
    target, _, kind = c.id.partition("-")
    if isinstance(c.expect, Converged):
        assert [m for m, _, _ in seen["webhook"]][-1:] == ["POST"] and TOKEN.encode() in seen["webhook"][-1][2]
        assert [m for m, _, _ in seen["pushgateway"]][-1:] == ["PUT"]
        assert b"cwj_last_success_timestamp_seconds" in seen["pushgateway"][-1][2]
    if seen.get("webhook"):
        _assert_one_idempotency_key(seen["webhook"], headers["webhook"])
    if target == "webhook" and isinstance(c.expect, Converged) and kind != "refused":
        assert len(seen["webhook"]) == 2, "the retried delivery is the second post"  # same key: asserted above
    if target in seen and kind in ATTEMPTS:
        assert len(seen[target]) == ATTEMPTS[kind], f"{target} got {len(seen[target])} requests"
    if target == "coder" and isinstance(c.expect, Fails):
        # a blind check may still alert about what it saw, but it never reports success to the Pushgateway
        assert not any(b"cwj_last_success_timestamp_seconds" in body for _, _, body in seen["pushgateway"])


def _assert_one_idempotency_key(posts: list[tuple[str, str, bytes]], headers: list[dict[str, str]]) -> None:
    """Every attempt of the one alert post carries the same key: the hash of that payload (hex, no secret)."""
    keys = {h.get(IDEMPOTENCY_HEADER) for h in headers}
    bodies = {body for _, _, body in posts}
    assert len(bodies) == 1 and len(keys) == 1, f"{len(posts)} posts, keys {keys}"
    key = keys.pop()
    assert key is not None and len(key) == 64 and key == idempotency_key(json.loads(bodies.pop()))


def test_the_idempotency_key_names_the_alerts_and_their_crossing() -> None:
    """Same alerts in any key order: same key; another crossing (7d after 14d) or another token: another key."""
    alert = {"user": USER, "token_name": TOKEN, "id": "abc123", "reason": "14d", "expires_at": "2026-02-01T00:00:00Z"}
    payload = {"text": "one alert", "alerts": [alert]}
    same = {"alerts": [dict(reversed(alert.items()))], "text": "one alert"}
    assert idempotency_key(payload) == idempotency_key(same)
    assert idempotency_key(payload) != idempotency_key({**payload, "alerts": [{**alert, "reason": "7d"}]})
    assert idempotency_key(payload) != idempotency_key({**payload, "alerts": [{**alert, "id": "def456"}]})
