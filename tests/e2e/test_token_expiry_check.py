"""token-expiry-check as a CronJob runs it: the console script against the Coder emulator (seeded through
Coder's own API with the owner token), a local webhook receiver and a real Pushgateway (tests/pushgateway.py)."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import Control, run_job
from tests.emulators.platform import Platform
from tests.pushgateway import SUCCESS, Pushgateway
from tests.receivers import receiver

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["object", "string"], autouse=True)
def allow_list_form(request: pytest.FixtureRequest, control: Control) -> str:
    """Every test runs against both of Coder's allow-list wire forms (codersdk/allowlist.go: `{type, id}` objects
    on the current line, `"type:id"` strings on another; tests/emulators/coder `allow_list_form`), issue 16."""
    form: str = request.param
    control.configure("coder", allow_list_form=form)
    return form


DAY = 86400
NS = 1_000_000_000
JOB = "token-expiry-check"
POLICY = """\
defaults:
  name_pattern: "<purpose>-<environment>-<yyyymmdd>"
  unused_days: 10
users:
  cicd-template-deployer:
    allowed_site_roles: [template-admin]
    allow_all_scope: false
    expect_tokens: true
"""


class Coder:
    """Seeds users and tokens through Coder's API, as an owner would with the CLI."""

    def __init__(self, platform: Platform) -> None:
        self.api = platform.coder.url + "/api/v2"
        self.ca = str(platform.ca_path)
        self.admin = self.session(platform.coder.bootstrap_token)
        self.org = self.admin.get(f"{self.api}/users/me").json()["organization_ids"]
        self.keys: dict[str, str] = {}  # token name -> value, to use them (and to prove none leaks)

    def session(self, token: str) -> requests.Session:
        s = requests.Session()
        s.verify = self.ca
        s.headers["Coder-Session-Token"] = token
        return s

    def user(self, name: str, roles: tuple[str, ...] = (), service_account: bool = False) -> None:
        body: dict[str, Any] = {"username": name, "organization_ids": self.org, "user_status": "active"}
        if service_account:
            body["service_account"] = True
        else:
            body.update(email=f"{name}@example.test", password="a-long-password-1")
        r = self.admin.post(f"{self.api}/users", json=body)
        assert r.status_code == 201, r.text
        if roles:
            r = self.admin.put(f"{self.api}/users/{name}/roles", json={"roles": list(roles)})
            assert r.status_code == 200, r.text

    def token(
        self, user: str, name: str, hours: float, scopes: tuple[str, ...] = (), allow: tuple[str, ...] = ()
    ) -> str:
        body: dict[str, Any] = {"token_name": name, "lifetime": int(hours * 3600) * NS}
        if scopes:
            body["scopes"] = list(scopes)
        if allow:
            body["allow_list"] = list(allow)
        r = self.admin.post(f"{self.api}/users/{user}/keys/tokens", json=body)
        assert r.status_code == 201, r.text
        self.keys[name] = r.json()["key"]
        return self.keys[name]

    def use(self, *names: str) -> None:
        """Authenticate with each token (which moves its last_used). /deployment/ssh, not /users/me: Coder checks
        scopes on every call, and a `coder:templates.author` token may not read its own user."""
        for name in names:
            assert self.session(self.keys[name]).get(f"{self.api}/deployment/ssh").status_code == 200

    def record(self, user: str, name: str) -> dict[str, Any]:
        r = self.admin.get(f"{self.api}/users/{user}/keys/tokens/{name}")
        assert r.status_code == 200, r.text
        result: dict[str, Any] = r.json()
        return result


@pytest.fixture
def coder(platform: Platform) -> Coder:
    return Coder(platform)


@pytest.fixture
def policy(tmp_path: Path) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return str(path)


@pytest.fixture
def owner_env(env: dict[str, str]) -> dict[str, str]:
    """Only an owner may read other users' tokens in Coder; the env file's default token is an auditor's."""
    return {**env, "CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"]}


def check(control: Control, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_job(JOB, *args, "--now", control.now(), env=env)


def findings(proc: subprocess.CompletedProcess[str]) -> set[tuple[str, str, str]]:
    return {(f["severity"], f["rule"], f["subject"]) for f in json.loads(proc.stdout)["findings"]}


def assert_no_token_value(coder: Coder, *texts: str) -> None:
    for value in coder.keys.values():
        for text in texts:
            assert value not in text and value.split("-")[1] not in text


# ---- done-means 1: each rule once, exit codes per --fail-on ------------------------------------------------


def seed_every_rule(coder: Coder, control: Control) -> None:
    # a server after coder PR #26376 (tokens keep their expiry): the emulator's stock v2.34.0 slides a used
    # token's expiry forward, which would move ci-web out of its warning window (that case has its own test)
    control.configure("coder", sliding_refresh=False)
    coder.user("cicd-template-deployer", ("template-admin", "user-admin"), service_account=True)
    coder.user("ci-bot")
    coder.token("cicd-template-deployer", "cicd-template-prod-20260101", 60 * 24, scopes=("coder:all",))
    # expires on day 15: on day 20 it is expired but not yet purged (Coder deletes keys 7 days after expiry)
    coder.token("ci-bot", "ci-old-prod-20260101", 15 * 24)
    coder.token("ci-bot", "ci-web-prod-20260101", 30 * 24)  # 10 days left on day 20
    coder.token("ci-bot", "ci-api-prod-20260101", 8760)  # --lifetime 8760h: over 90 days
    coder.token("ci-bot", "deploytoken", 60 * 24)  # off the name pattern
    coder.token("ci-bot", "ci-idle-prod-20260101", 60 * 24)  # never used
    coder.token("ci-bot", "ci-stale-prod-20260101", 60 * 24)
    coder.use("ci-stale-prod-20260101")  # used on day 0 only: unused for 20 days by the check
    control.advance(20 * DAY)
    coder.use("cicd-template-prod-20260101", "ci-web-prod-20260101", "ci-api-prod-20260101", "deploytoken")


EVERY_RULE = {
    ("critical", "roles-not-allowed", "cicd-template-deployer"),
    ("warning", "scope-all", "cicd-template-deployer/cicd-template-prod-20260101"),
    ("critical", "token-expired", "ci-bot/ci-old-prod-20260101"),
    ("warning", "token-expiring", "ci-bot/ci-web-prod-20260101"),
    ("critical", "lifetime-over-max", "ci-bot/ci-api-prod-20260101"),
    ("warning", "name-off-pattern", "ci-bot/deploytoken"),
    ("info", "token-never-used", "ci-bot/ci-idle-prod-20260101"),
    ("info", "token-unused", "ci-bot/ci-stale-prod-20260101"),
    ("critical", "user-not-found", "ghost"),
}


def test_each_rule_broken_once_yields_exactly_those_findings(
    coder: Coder, control: Control, owner_env: dict[str, str], policy: str
) -> None:
    seed_every_rule(coder, control)
    args = ("--user", "cicd-template-deployer", "--user", "ci-bot", "--user", "ghost", "--policy-file", policy)
    proc = check(control, *args, "--output", "json", env=owner_env)
    assert proc.returncode == 1, proc.stderr
    assert findings(proc) == EVERY_RULE
    report = json.loads(proc.stdout)
    rows = {r["token_name"]: r for r in report["tokens"]}
    # the expired token is listed: Coder (and the emulator) hide expired tokens unless include_expired=true
    assert len(rows) == 7 and rows["ci-old-prod-20260101"]["status"] == "expired"
    assert rows["ci-web-prod-20260101"]["days_left"] == 10.0
    assert_no_token_value(coder, proc.stdout, proc.stderr)
    assert check(control, *args, "--fail-on", "never", env=owner_env).returncode == 0
    assert check(control, *args, "--fail-on", "warning", env=owner_env).returncode == 1
    assert control.count("coder", "tokens.create") == 7  # the job itself never writes to Coder
    assert control.count("coder", "keys.delete") == 0


def test_fail_on_decides_the_exit_code_for_warnings(coder: Coder, control: Control, owner_env: dict[str, str]) -> None:
    coder.user("web-bot")
    coder.token("web-bot", "web-deploy-prod-20260101", 20 * 24)
    coder.use("web-deploy-prod-20260101")
    control.advance(10 * DAY)  # 10 days left: a warning, nothing worse
    assert check(control, "--user", "web-bot", "--fail-on", "warning", env=owner_env).returncode == 1
    assert check(control, "--user", "web-bot", "--fail-on", "critical", env=owner_env).returncode == 0
    assert check(control, "--user", "web-bot", "--fail-on", "never", env=owner_env).returncode == 0


# ---- done-means 2: a daily CronJob over a 30-day token ----------------------------------------------------------


def test_a_daily_job_alerts_only_at_14_7_3_1_days_and_at_expiry(
    coder: Coder, control: Control, owner_env: dict[str, str], platform: Platform
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-deploy-prod-20260101", 30 * 24)
    sent: dict[int, list[dict[str, Any]]] = {}
    with receiver(tls=platform.server_tls()) as hook:
        for day in range(33):
            before = len(hook.requests)
            proc = check(
                control, "--user", "ci-bot", "--webhook-url", hook.url + "/hooks/T0/B0/s3cr3tpath", env=owner_env
            )
            assert proc.returncode == (1 if day >= 30 else 0), (day, proc.stderr)
            for request in hook.requests[before:]:
                sent.setdefault(day, []).extend(request.json()["alerts"])
            control.advance(DAY)
        bodies = hook.bodies()
    assert {day: [a["reason"] for a in alerts] for day, alerts in sent.items()} == {
        16: ["14d"],
        23: ["7d"],
        27: ["3d"],
        29: ["1d"],
        30: ["expired"],
    }
    first = json.loads(bodies[0])
    assert first["text"].startswith("token-expiry-check: 1 Coder token alert(s)")
    assert "ci-bot/ci-deploy-prod-20260101" in first["text"] and "within 14 day(s)" in first["text"]
    assert_no_token_value(coder, *bodies)


def test_a_webhook_outage_fails_the_run_and_retries_boundedly(
    coder: Coder, control: Control, owner_env: dict[str, str], platform: Platform
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-deploy-prod-20260101", 15 * 24)
    control.advance(DAY)  # 14 days left: the 14-day alert is new
    with receiver(status=500, tls=platform.server_tls()) as hook:
        proc = check(control, "--user", "ci-bot", "--webhook-url", hook.url + "/hooks/s3cr3tpath", env=owner_env)
        attempts = len(hook.requests)
    assert proc.returncode == 1
    assert attempts == 4  # bounded: lib/clients/webhook.py DEFAULT_BACKOFF.max_attempts
    assert "webhook POST to 127.0.0.1" in proc.stdout and "HTTP 500" in proc.stdout
    assert "s3cr3tpath" not in proc.stdout + proc.stderr  # a Slack webhook's path is its credential


# ---- done-means 3: metrics ---------------------------------------------------------------------------------------


def test_pushed_metrics_parse_and_carry_the_values(
    coder: Coder, control: Control, owner_env: dict[str, str], policy: str, pushgateway: Pushgateway
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 30 * 24)
    coder.token("ci-bot", "ci-api-prod-20260101", 8760)
    coder.use("ci-web-prod-20260101", "ci-api-prod-20260101")
    env = {**owner_env, **pushgateway.env}
    proc = check(control, "--user", "ci-bot", "--policy-file", policy, "--pushgateway-url", pushgateway.url, env=env)
    assert proc.returncode == 1  # lifetime-over-max is critical
    assert pushgateway.groups("token-expiry-check") == {
        ("default", ""),
        ("default", "success"),
    }  # it saw everything it was asked to
    samples = pushgateway.samples("token-expiry-check")  # the run group, read back from the real Pushgateway
    for name in ("ci-web-prod-20260101", "ci-api-prod-20260101"):
        expected = datetime.fromisoformat(coder.record("ci-bot", name)["expires_at"].replace("Z", "+00:00"))
        key = ("cwj_token_expiry_timestamp_seconds", (("token_name", name), ("user", "ci-bot")))
        assert samples[key] == pytest.approx(expected.timestamp(), abs=1)
    assert samples[("cwj_findings", (("rule", "lifetime-over-max"), ("severity", "critical")))] == 1
    assert samples[("cwj_last_run_exit_code", ())] == 1
    assert ("cwj_last_success_timestamp_seconds", ()) in pushgateway.samples("token-expiry-check", group=SUCCESS)
    assert_no_token_value(coder, pushgateway.metrics())


def test_a_blind_check_pushes_no_last_success(
    control: Control, env: dict[str, str], coder: Coder, pushgateway: Pushgateway
) -> None:
    coder.user("ci-sa", service_account=True)
    coder.token("ci-sa", "ci-sa-prod-20260101", 30 * 24)
    run_env = {**env, **pushgateway.env}
    proc = check(control, "--user", "ci-sa", "--pushgateway-url", pushgateway.url, env=run_env)  # the auditor token
    assert proc.returncode == 1
    assert pushgateway.groups("token-expiry-check") == {("default", "")}  # the success group never pushed
    names = {name for name, _ in pushgateway.samples("token-expiry-check")}
    assert "cwj_last_run_timestamp_seconds" in names and "cwj_last_success_timestamp_seconds" not in names


# ---- done-means 4: no rights, unknown user -----------------------------------------------------------------------


def test_an_auditor_token_that_cannot_see_tokens_is_an_error_not_a_pass(
    coder: Coder, control: Control, env: dict[str, str]
) -> None:
    coder.user("ci-sa", service_account=True)
    coder.token("ci-sa", "ci-sa-prod-20260101", 30 * 24)
    coder.user("person")
    coder.token("person", "person-laptop-dev-20260101", 30 * 24)
    proc = check(control, "--user", "ci-sa", "--user", "person", "--output", "json", env=env)
    assert proc.returncode == 1
    assert findings(proc) == {
        ("error", "tokens-not-visible", "ci-sa"),  # a service account named with --user must hold tokens
        ("error", "tokens-unverifiable", "auditor"),  # and person's empty list proves nothing either
    }
    messages = " ".join(f["message"] for f in json.loads(proc.stdout)["findings"])
    assert "silently" in messages and "person" in messages
    assert control.count("coder", "tokens.list") == 2


def test_a_403_on_the_token_list_is_an_error_in_coders_words(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("ci-bot")
    control.fault("coder", "tokens.list", status=403, count=1)
    proc = check(control, "--user", "ci-bot", "--output", "json", env=owner_env)
    assert proc.returncode == 1
    (finding,) = json.loads(proc.stdout)["findings"]
    assert (finding["severity"], finding["rule"], finding["subject"]) == ("error", "tokens-unreadable", "ci-bot")
    assert "Coder answered 403" in finding["message"]


def test_an_unknown_user_is_critical_and_does_not_hide_the_others(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 60 * 24)
    coder.use("ci-web-prod-20260101")
    proc = check(control, "--user", "ghost", "--user", "ci-bot", "--output", "json", env=owner_env)
    assert proc.returncode == 1
    assert findings(proc) == {("critical", "user-not-found", "ghost")}
    assert "must be an existing uuid or username" in proc.stdout  # Coder's own words
    assert [r["token_name"] for r in json.loads(proc.stdout)["tokens"]] == ["ci-web-prod-20260101"]


def test_a_rejected_token_file_fails_in_coders_words(control: Control, env: dict[str, str], tmp_path: Path) -> None:
    bogus = tmp_path / "token"
    bogus.write_text("ZZZZZZZZZZ-ZZZZZZZZZZZZZZZZZZZZZZ")
    proc = check(control, "--user", "ci-bot", "--token-file", str(bogus), env=env)
    assert proc.returncode == 1
    assert "401" in proc.stderr and "API key is invalid." in proc.stderr
    assert "ZZZZZZZZZZ-ZZZZZZZZZZZZZZZZZZZZZZ" not in proc.stderr + proc.stdout


# ---- done-means 5: the seed documents' examples --------------------------------------------------------------------


def test_the_seed_documents_examples(coder: Coder, control: Control, owner_env: dict[str, str], policy: str) -> None:
    coder.user("cicd-template-deployer", ("template-admin",), service_account=True)
    coder.user("ci-legacy", ("template-admin",))
    coder.token("cicd-template-deployer", "cicd-template-prod-20241216", 2160, scopes=("coder:templates.author",))
    coder.token("ci-legacy", "ci-legacy-prod-20241216", 8760)
    coder.use("cicd-template-prod-20241216", "ci-legacy-prod-20241216")
    args = ("--user", "cicd-template-deployer", "--policy-file", policy, "--output", "json")
    passing = check(control, *args, env=owner_env)
    assert passing.returncode == 0 and findings(passing) == set()
    failing = check(control, "--user", "ci-legacy", "--policy-file", policy, "--output", "json", env=owner_env)
    assert failing.returncode == 1
    assert findings(failing) == {("critical", "lifetime-over-max", "ci-legacy/ci-legacy-prod-20241216")}


# ---- done-means 6: dry-run sends nothing and pushes only that it was one; sliding expiry is reported ----------------


def test_dry_run_prints_findings_but_sends_nothing_and_pushes_only_that_it_was_a_dry_run(
    coder: Coder, control: Control, owner_env: dict[str, str], platform: Platform, pushgateway: Pushgateway
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 15 * 24)
    control.advance(DAY + 60)  # just crossed 14 days left: an alert would be new
    with receiver(tls=platform.server_tls()) as hook:
        proc = check(
            control,
            "--user",
            "ci-bot",
            "--webhook-url",
            hook.url,
            "--pushgateway-url",
            pushgateway.url,
            "--dry-run",
            "--output",
            "json",
            env={**owner_env, **pushgateway.env},
        )
        assert hook.requests == []
        assert pushgateway.groups("token-expiry-check") == {("default", "")}  # the run group only: never a success
        assert pushgateway.samples("token-expiry-check")[("cwj_dry_run", ())] == 1
    assert proc.returncode == 0
    plan = json.loads(proc.stdout)
    assert plan["kind"] == "plan" and [a["reason"] for a in plan["actions"]] == ["14d"]
    assert ("warning", "token-expiring", "ci-bot/ci-web-prod-20260101") in findings(proc)
    assert_no_token_value(coder, proc.stdout, proc.stderr)


def test_sliding_expiry_is_observed_and_lifetime_still_judged_by_lifetime_seconds(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    control.configure("coder", sliding_refresh=True, version="v2.24.0")
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 60 * 24)
    for _ in range(4):  # used every 25 days: expires_at keeps sliding, far past created_at + 60 days
        control.advance(25 * DAY)
        coder.use("ci-web-prod-20260101")
    proc = check(control, "--user", "ci-bot", "--output", "json", env=owner_env)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0 and findings(proc) == set()
    assert report["server"]["version"] == "v2.24.0"
    assert report["server"]["expiry"].startswith("sliding expiry observed on 1 token(s)")
    assert report["tokens"][0]["lifetime_days"] == 60.0


# ---- --vault-check: the workspace token coder-token-mint keeps in Vault ---------------------------------------------

VAULT_SUBJECT = "vault:secret/coder-cli-session-token"


def put_workspace_token(platform: Platform, coder: Coder, name: str, hours: float, **scoping: Any) -> str:
    """What coder-token-mint writes (DESIGN.md: KV v2 `secret`, path `coder-cli-session-token`), with its
    default scopes unless told otherwise."""
    import hvac

    scoping.setdefault("scopes", ("coder:workspaces.access", "user:read"))
    key = coder.token("coder-wi", name, hours, **scoping)
    record = coder.record("coder-wi", name)
    client = hvac.Client(url=platform.vault.url, token=platform.vault.root_token, verify=str(platform.ca_path))
    data = {
        "token": key,
        "token_id": key.split("-")[0],
        "token_name": name,
        "user": "coder-wi",
        "coder_url": platform.coder.url,
        "issued_at": record["created_at"],
        "expires_at": record["expires_at"],
    }
    client.secrets.kv.v2.create_or_update_secret(path="coder-cli-session-token", secret=data, mount_point="secret")
    return key


def vault_findings(proc: subprocess.CompletedProcess[str]) -> set[tuple[str, str, str]]:
    return {f for f in findings(proc) if f[2] == VAULT_SUBJECT}


def test_vault_check_judges_the_held_token_over_its_life(
    platform: Platform, coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("coder-wi")
    key = put_workspace_token(platform, coder, "coder-cli-session-20260101", 30 * 24)
    args = ("--user", "coder-wi", "--vault-check", "--output", "json")
    fresh = check(control, *args, env=owner_env)
    assert fresh.returncode == 0 and vault_findings(fresh) == set()
    control.advance(21 * DAY)  # 9 of 30 days left: inside the last third, the mint should have renewed it
    late = check(control, *args, env=owner_env)
    assert late.returncode == 0
    assert vault_findings(late) == {("warning", "vault-token-renew-window", VAULT_SUBJECT)}
    coder.admin.delete(f"{coder.api}/users/coder-wi/keys/{key.split('-')[0]}").raise_for_status()
    revoked = check(control, *args, env=owner_env)
    assert revoked.returncode == 1
    assert vault_findings(revoked) == {("critical", "vault-token-invalid", VAULT_SUBJECT)}
    assert "API key is invalid." in revoked.stdout  # Coder's own words
    assert_no_token_value(coder, fresh.stdout, late.stdout, revoked.stdout, revoked.stderr)


def test_vault_check_flags_a_fanned_out_token_with_the_all_scope(
    platform: Platform, coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("coder-wi")
    put_workspace_token(platform, coder, "coder-cli-session-prod-20260101", 30 * 24, scopes=("coder:all",))
    proc = check(control, "--user", "coder-wi", "--vault-check", "--output", "json", env=owner_env)
    assert vault_findings(proc) == {("warning", "scope-all", VAULT_SUBJECT)}


def test_vault_check_renew_window_follows_the_mints_renew_before(
    platform: Platform, coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    control.configure("coder", sliding_refresh=False)  # else the first check's use slides the token forward
    coder.user("coder-wi")
    put_workspace_token(platform, coder, "coder-cli-session-prod-20260101", 30 * 24)
    control.advance(23 * DAY)  # 7 days left: inside the last third (10 d), outside a 5-day --renew-before
    args = ("--user", "coder-wi", "--vault-check", "--output", "json")
    assert vault_findings(check(control, *args, env=owner_env)) == {
        ("warning", "vault-token-renew-window", VAULT_SUBJECT)
    }
    assert vault_findings(check(control, *args, "--renew-before", "5d", env=owner_env)) == set()


@pytest.mark.parametrize("token_file", ["owner", "auditor"])
def test_vault_check_asks_a_scoped_token_only_what_its_scopes_permit(
    platform: Platform, coder: Coder, control: Control, env: dict[str, str], owner_env: dict[str, str], token_file: str
) -> None:
    """The chart's example token (workspace access to one workspace) may not read its own user; Coder enforces
    that, so judging it by /users/me would call a good token invalid (issue 16)."""
    coder.user("coder-wi")
    workspace = "6f2a1c3e-1b2c-4d5e-8f90-0123456789ab"
    scoping = {"scopes": ("coder:workspaces.access",), "allow": (f"workspace:{workspace}",)}
    key = put_workspace_token(platform, coder, "coder-cli-session-20260101", 30 * 24, **scoping)
    assert coder.session(key).get(f"{coder.api}/users/me").status_code == 404
    run_env = owner_env if token_file == "owner" else env  # an auditor cannot read the key's record
    proc = check(control, "--user", "coder-wi", "--vault-check", "--output", "json", env=run_env)
    assert vault_findings(proc) == set(), proc.stdout
    coder.admin.delete(f"{coder.api}/users/coder-wi/keys/{key.split('-')[0]}").raise_for_status()
    revoked = check(control, "--user", "coder-wi", "--vault-check", "--output", "json", env=run_env)
    assert vault_findings(revoked) == {("critical", "vault-token-invalid", VAULT_SUBJECT)}


def test_vault_check_with_kubernetes_auth_revokes_its_vault_token(
    platform: Platform, coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("coder-wi")
    put_workspace_token(platform, coder, "coder-cli-session-20260101", 30 * 24)
    pod_env = {k: v for k, v in owner_env.items() if k != "VAULT_TOKEN"}
    proc = check(
        control, "--user", "coder-wi", "--vault-check", "--vault-jwt-file", pod_env["CWJ_VAULT_JWT_FILE"], env=pod_env
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert control.count("vault", "k8s.login") == 1 and control.count("vault", "token.revoke-self") == 1


def test_vault_check_missing_entry_and_vault_refusal(coder: Coder, control: Control, owner_env: dict[str, str]) -> None:
    coder.user("coder-wi")
    missing = check(control, "--user", "coder-wi", "--vault-check", "--output", "json", env=owner_env)
    assert missing.returncode == 1
    assert vault_findings(missing) == {("critical", "vault-token-invalid", VAULT_SUBJECT)}
    denied_env = {**owner_env, "VAULT_TOKEN": "hvs.notarealtokenatallxxxxxx"}
    denied = check(control, "--user", "coder-wi", "--vault-check", "--output", "json", env=denied_env)
    assert denied.returncode == 1
    assert vault_findings(denied) == {("error", "vault-unreadable", VAULT_SUBJECT)}
    assert "hvs.notarealtokenatallxxxxxx" not in denied.stdout + denied.stderr


def test_vault_check_needs_a_vault_address(control: Control, owner_env: dict[str, str]) -> None:
    env = {k: v for k, v in owner_env.items() if k != "VAULT_ADDR"}
    proc = check(control, "--user", "coder-wi", "--vault-check", env=env)
    assert proc.returncode == 2
    assert "--vault-addr (VAULT_ADDR): expected an https:// Vault address with --vault-check" in proc.stderr
    assert control.count("coder") == 0


def test_all_users_checks_every_account_including_the_seeded_ones(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("ci-bot")
    coder.token("ci-bot", "ci-web-prod-20260101", 60 * 24)
    coder.use("ci-web-prod-20260101")
    proc = check(control, "--all-users", "--output", "json", env=owner_env)
    report = json.loads(proc.stdout)
    assert {(r["user"], r["token_name"]) for r in report["tokens"]} == {
        ("admin", "bootstrap"),
        ("auditor", "auditor"),
        ("ci-bot", "ci-web-prod-20260101"),
    }
    # the emulator seeds its admin and auditor tokens with a 365-day lifetime: both break the 90-day rule
    assert {f for f in findings(proc) if f[1] == "lifetime-over-max"} == {
        ("critical", "lifetime-over-max", "admin/bootstrap"),
        ("critical", "lifetime-over-max", "auditor/auditor"),
    }
    assert proc.returncode == 1


# ---- a token record in a shape this client cannot read (issue 16) ------------------------------------------------


def test_an_unreadable_token_record_is_an_error_naming_it_not_a_crash(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    coder.user("ci-bot")
    odd = [{"id": "Zz00000000", "token_name": "ci-odd-prod-20260101", "allow_list": [42], "future_field": {}}]
    control.fault("coder", "tokens.list", body=json.dumps(odd))
    proc = check(control, "--user", "ci-bot", "--output", "json", env=owner_env)
    assert proc.returncode == 1, proc.stderr
    assert ("error", "token-unreadable", "ci-bot/ci-odd-prod-20260101 (Zz00000000)") in findings(proc)
    assert "Traceback" not in proc.stderr


# ---- Coder's API rate limit (issue 16) -------------------------------------------------------------------------------


def test_a_check_throttled_by_coder_waits_retry_after_and_converges(
    coder: Coder, control: Control, owner_env: dict[str, str]
) -> None:
    """429 + Retry-After as coderd/httpmw/ratelimit.go answers (tests/emulators/coder/ratelimit.py), here 4
    requests a minute for the whole user, a minute lasting one real second."""
    for name in ("ci-a", "ci-b", "ci-c"):
        coder.user(name)
        coder.token(name, f"{name}-web-prod-20260101", 30 * 24)
    control.configure("coder", api_rate_limit=4, rate_limit_key="user", rate_limit_time_scale=60.0)
    control.clear_requests()
    proc = check(control, "--user", "ci-a", "--user", "ci-b", "--user", "ci-c", "--output", "json", env=owner_env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    statuses = [e["status"] for e in control.requests("coder")["log"]]
    assert 429 in statuses and statuses[-1] == 200
    assert {r["user"] for r in json.loads(proc.stdout)["tokens"]} == {"ci-a", "ci-b", "ci-c"}
