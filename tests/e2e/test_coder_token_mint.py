"""coder-token-mint, the console script, against the Coder emulator and the platform's OpenBao (issue 5).

The job logs in to Vault by Kubernetes auth (VAULT_TOKEN is removed from its environment) except where a
test says otherwise. Tests that move the emulated clock pass `--now <emulator now>` so the job judges time as
the servers do. Every stdout/stderr captured here is checked for token values when the test ends.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hvac
import pytest
import requests

from tests.conftest import BIN, Control, run_job
from tests.emulators.platform import Platform
from tests.pushgateway import SUCCESS, Pushgateway
from tests.receivers import receiver, redirector

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["object", "string"], autouse=True)
def allow_list_form(request: pytest.FixtureRequest, control: Control) -> str:
    """Every test runs against both of Coder's allow-list wire forms (codersdk/allowlist.go: `{type, id}` objects
    on the current line, `"type:id"` strings on another; tests/emulators/coder `allow_list_form`), issue 16."""
    form: str = request.param
    control.configure("coder", allow_list_form=form)
    return form


JOB = "coder-token-mint"
USER = "ci-bot"
PREFIX = "coder-cli-session-"
KV_PATH = "coder-cli-session-token"
DAY = 86400
CODER_KEY = re.compile(r"\b[0-9A-Za-z]{10}-[0-9A-Za-z]{22}\b")
ENTRY_FIELDS = {"token", "token_id", "token_name", "user", "coder_url", "issued_at", "expires_at"}


@dataclass
class World:
    platform: Platform
    control: Control
    env: dict[str, str]
    outputs: list[str] = field(default_factory=list)
    secrets: set[str] = field(default_factory=set)

    # ---- running the job ------------------------------------------------------------------------------

    def run(self, *args: str, env: dict[str, str] | None = None, user: str | None = USER) -> tuple[int, Any]:
        proc = run_job(JOB, *self.argv(args, user), env=env or self.env)
        return proc.returncode, self._record(proc.stdout, proc.stderr)

    def argv(self, args: tuple[str, ...], user: str | None) -> list[str]:
        return [*(("--user", user) if user else ()), "--now", self.control.now(), "--output", "json", *args]

    def _record(self, stdout: str, stderr: str) -> Any:
        self.outputs += [stdout, stderr]
        try:
            return json.loads(stdout)
        except ValueError:
            return {"stdout": stdout, "stderr": stderr}

    def stderr_of_last(self) -> str:
        return self.outputs[-1]

    # ---- looking at the servers like an operator --------------------------------------------------------

    def vault(self) -> hvac.Client:
        return hvac.Client(
            url=self.env["VAULT_ADDR"], token=self.platform.vault.root_token, verify=self.env["REQUESTS_CA_BUNDLE"]
        )

    def entry(self) -> tuple[int, dict[str, str] | None]:
        try:
            body = self.vault().secrets.kv.v2.read_secret_version(
                path=KV_PATH, mount_point="secret", raise_on_deleted_version=True
            )
        except hvac.exceptions.InvalidPath:
            return 0, None
        data = body["data"]["data"]
        if data["token"]:  # a cleared entry (--compromised without a successor) holds ""
            self.secrets.add(data["token"])
        return body["data"]["metadata"]["version"], data

    def coder(self, token: str | None = None) -> requests.Session:
        session = requests.Session()
        session.verify = self.env["REQUESTS_CA_BUNDLE"]
        session.headers["Coder-Session-Token"] = token or self.bootstrap
        return session

    @property
    def bootstrap(self) -> str:
        return Path(self.env["CWJ_BOOTSTRAP_TOKEN_FILE"]).read_text().strip()

    def status_of(self, token: str) -> int:
        return self.coder(token).get(f"{self.env['CODER_URL']}/api/v2/users/me").status_code

    def tokens(self, user: str = USER) -> list[dict[str, Any]]:
        url = f"{self.env['CODER_URL']}/api/v2/users/{user}/keys/tokens"
        return self.coder().get(url, params={"include_expired": "true"}).json() or []

    def prefixed(self, user: str = USER) -> dict[str, dict[str, Any]]:
        return {t["id"]: t for t in self.tokens(user) if t["token_name"].startswith(PREFIX)}


@pytest.fixture
def world(platform: Platform, env: dict[str, str], control: Control, tmp_path: Path) -> Iterator[World]:
    job_env = {k: v for k, v in env.items() if k != "VAULT_TOKEN"}  # Kubernetes auth, like the pod
    job_env["HOME"] = str(tmp_path)  # no ~/.vault-token can leak in
    w = World(platform, control, job_env)
    w.secrets |= {w.bootstrap, platform.vault.root_token, Path(env["CWJ_VAULT_JWT_FILE"]).read_text().strip()}
    body = {
        "username": USER,
        "email": "ci-bot@coder.emulator.test",
        "login_type": "none",
        "organization_ids": [str(uuid.UUID(int=0))],
    }
    w.coder().post(f"{env['CODER_URL']}/api/v2/users", json=body).raise_for_status()
    yield w
    w.entry()  # the token Vault holds at the end counts too
    for text in w.outputs:
        for secret in w.secrets:
            assert secret not in text, "a secret value reached the job's output"
        assert not CODER_KEY.search(text), "something shaped like a Coder API key reached the job's output"


def kinds(doc: dict[str, Any]) -> list[str]:
    return [o["kind"] for o in doc.get("outcomes", doc.get("actions", []))]


def results(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(o["kind"], o["result"]) for o in doc["outcomes"]]


# ---- 1. first run, second run -----------------------------------------------------------------------------------


def test_first_run_writes_the_full_entry_and_a_second_run_changes_nothing(
    world: World, control: Control, allow_list_form: str
) -> None:
    # the chart's example: workspace access to one workspace. Coder enforces scopes and the allow list on every
    # call (the emulator too), so this token may not read its own user: the job must check it with a call its
    # scopes permit, and never fail (and revoke) it for /users/me
    workspace = str(uuid.uuid4())
    code, doc = world.run("--scope", "coder:workspaces.access", "--allow", f"workspace:{workspace}")
    assert code == 0, world.outputs
    assert results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert "checked: /deployment/ssh" in doc["outcomes"][0]["detail"]

    version, data = world.entry()
    assert version == 1 and data is not None
    assert set(data) == ENTRY_FIELDS and all(isinstance(v, str) and v for v in data.values())
    assert data["user"] == USER and data["coder_url"] == world.env["CODER_URL"]
    assert data["token_id"] == data["token"].split("-")[0] and data["token_name"].startswith(PREFIX)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["expires_at"])
    assert world.status_of(data["token"]) == 404  # /users/me: outside its scopes, as on a real server
    ssh = world.coder(data["token"]).get(f"{world.env['CODER_URL']}/api/v2/deployment/ssh")
    assert ssh.status_code == 200  # but it authenticates
    record = world.prefixed()[data["token_id"]]
    assert record["lifetime_seconds"] == 30 * DAY
    assert record["scopes"] == ["coder:workspaces.access"]
    wire = {"object": [{"type": "workspace", "id": workspace}], "string": [f"workspace:{workspace}"]}
    assert record["allow_list"] == wire[allow_list_form]
    assert control.count("vault", "token.revoke-self") == 1  # the job's own Vault token is gone

    control.clear_requests()
    code, doc = world.run()
    assert code == 0 and doc["outcomes"] == []
    assert doc["decision"]["verdict"] == "keep"
    assert doc["vault_entry"]["check"] == "valid" and "/deployment/ssh" in doc["vault_entry"]["checked_by"]
    assert control.count("coder", "tokens.create") == 0 and control.count("vault", "kv.write") == 0
    assert control.count("coder", "keys.delete") == 0  # never revoked for a call outside its scopes
    assert world.entry()[0] == 1


# ---- 2. renew window and grace ----------------------------------------------------------------------------------


def test_renewal_keeps_the_old_token_through_the_grace_then_revokes_it(world: World, control: Control) -> None:
    assert world.run()[0] == 0
    _, first = world.entry()
    assert first is not None

    control.advance(21 * DAY)  # 9 days left, inside the default 10-day renew window
    code, doc = world.run()
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    version, second = world.entry()
    assert version == 2 and second is not None and second["token_id"] != first["token_id"]
    assert world.status_of(first["token"]) == 200  # still works for workspaces that have not refreshed

    control.advance(DAY - 60)  # just inside the grace
    code, doc = world.run()
    assert code == 0 and doc["outcomes"] == []
    assert world.status_of(first["token"]) == 200

    control.advance(120)
    code, doc = world.run()
    assert code == 0 and results(doc) == [("revoke", "ok")]
    assert first["token_id"] in doc["outcomes"][0]["target"]
    assert world.status_of(first["token"]) == 401
    assert world.status_of(second["token"]) == 200
    assert set(world.prefixed()) == {second["token_id"]}


def test_a_token_coder_refuses_is_replaced_whatever_its_dates_say(world: World) -> None:
    assert world.run()[0] == 0
    _, first = world.entry()
    assert first is not None
    world.coder().delete(f"{world.env['CODER_URL']}/api/v2/users/{USER}/keys/{first['token_id']}").raise_for_status()
    code, doc = world.run()
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert doc["decision"]["reason"].startswith("invalid")
    assert world.status_of(world.entry()[1]["token"]) == 200  # type: ignore[index]


def test_a_soft_deleted_entry_is_replaced_with_check_and_set_on_its_version(world: World) -> None:
    assert world.run()[0] == 0
    world.vault().secrets.kv.v2.delete_latest_version_of_secret(path=KV_PATH, mount_point="secret")
    code, doc = world.run()
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert doc["outcomes"][1]["check_and_set"] == 1
    assert world.entry()[0] == 2


# ---- 3. the write fails after the mint --------------------------------------------------------------------------


def test_a_write_vault_refused_revokes_the_new_token_at_once(world: World, control: Control) -> None:
    """A 403 is definite: the value is not in Vault, so nobody can hold the token; no grace is needed."""
    control.fault("vault", "kv.write", status=403, message="permission denied")
    code, doc = world.run()
    assert code == 1
    assert results(doc) == [("mint", "ok"), ("write-kv", "failed"), ("revoke", "ok")]
    assert "permission denied" in doc["outcomes"][1]["detail"] and "revoked now" in doc["outcomes"][1]["detail"]
    assert world.entry() == (0, None) and world.prefixed() == {}


def test_an_ambiguous_write_failure_leaves_an_orphan_that_a_later_run_revokes_after_the_grace(
    world: World, control: Control
) -> None:
    """A 5xx after every retry may have stored the value (External Secrets could copy it any moment): the token
    is kept until it is older than the grace and not the token in Vault."""
    control.fault("vault", "kv.write", status=500, message="internal error", count=None)
    code, doc = world.run("--retry-deadline", "1s")
    assert code == 1
    assert results(doc) == [("mint", "ok"), ("write-kv", "failed")]
    assert "may have been stored" in doc["outcomes"][1]["detail"]
    assert world.entry() == (0, None)
    (orphan,) = world.prefixed()
    control.clear_faults()

    code, doc = world.run()  # Vault is healthy again: a new token is written; the orphan is too young to touch
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    _, data = world.entry()
    assert data is not None and orphan in world.prefixed()

    control.advance(DAY + 60)
    code, doc = world.run()
    assert code == 0 and results(doc) == [("revoke", "ok")]
    assert "not the token in Vault" in doc["outcomes"][0]["reason"]
    assert set(world.prefixed()) == {data["token_id"]}
    code, doc = world.run()
    assert code == 0 and doc["outcomes"] == []


def test_transient_vault_errors_are_retried(world: World, control: Control) -> None:
    control.fault("vault", "kv.write", status=503, message="Vault is sealed")
    control.fault("vault", "k8s.login", status=502)
    code, doc = world.run()
    assert code == 0, world.outputs
    assert results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert control.count("vault", "kv.write") == 2 and control.count("vault", "k8s.login") == 2


# ---- 4. two runs at once ----------------------------------------------------------------------------------------


def test_two_concurrent_runs_end_with_one_token_and_the_loser_revokes_its_own(world: World, control: Control) -> None:
    # each mint waits 2.5s before Coder handles it, so both runs observe (Vault version 0, no tokens) first
    control.fault("coder", "tokens.create", delay=2.5, count=2)
    argv = [str(BIN / JOB), *world.argv((), USER)]
    procs = [
        subprocess.Popen(argv, env=world.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    docs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert world.platform.leaked_secrets(out + err) == 0  # Popen bypasses run_job's own leak check
        docs.append(world._record(out, err))
    version, data = world.entry()
    assert version == 1 and data is not None
    assert set(world.prefixed()) == {data["token_id"]}  # the loser's token is gone
    assert control.count("vault", "kv.write") == 2 and control.count("coder", "keys.delete") == 1
    # same --now, same name: one create met Coder's 409 and was retried once under a new name
    assert control.count("coder", "tokens.create") == 3
    assert any("was taken" in o["detail"] for d in docs for o in d["outcomes"])
    outcomes = sorted(tuple(results(d)) for d in docs)
    assert outcomes == [
        (("mint", "ok"), ("write-kv", "ok")),
        (("mint", "ok"), ("write-kv", "skipped"), ("revoke", "ok")),
    ]


# ---- 5. refusals ---------------------------------------------------------------------------------------------


def test_expired_bootstrap_token_fails_clearly_without_touching_vault(world: World, control: Control) -> None:
    control.advance(366 * DAY)  # the seeded bootstrap token lives a year
    control.clear_requests()
    code, _ = world.run()
    assert code == 1
    err = world.stderr_of_last()
    assert "bootstrap token" in err and "API key expired at" in err and "--bootstrap-token-file" in err
    assert control.count("vault") == 0
    assert control.count("coder", "tokens.create") == 0


def test_wrong_vault_role_fails_with_vaults_reason_and_mints_nothing(world: World, control: Control) -> None:
    code, _ = world.run("--vault-role", "nope")
    assert code == 1
    assert (
        'invalid role name \\"nope\\"' in world.stderr_of_last() or 'invalid role name "nope"' in world.stderr_of_last()
    )
    assert control.count("coder", "tokens.create") == 0


def test_policy_that_denies_the_path_fails_with_vaults_reason(world: World, control: Control) -> None:
    code, _ = world.run("--kv-path", "somewhere-else")
    assert code == 1
    assert "permission denied" in world.stderr_of_last()
    assert control.count("coder", "tokens.create") == 0 and control.count("vault", "kv.write") == 0
    assert control.count("vault", "token.revoke-self") == 1  # logged in, so it still revokes its own token


# ---- 6. least privilege: the target account, Coder's cap (issue 16) --------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False])
def test_defaults_with_an_owner_bootstrap_token_are_refused_naming_user(
    world: World, control: Control, dry_run: bool
) -> None:
    code, doc = world.run(*(["--dry-run"] if dry_run else []), user=None)  # no --user: the bootstrap Owner
    assert code == 3, world.outputs
    assert doc["kind"] == "plan" and doc["actions"] == []
    assert "--user (CWJ_USER)" in doc["refusal"] and "owner" in doc["refusal"]
    assert control.count("coder", "tokens.create") == 0 and control.count("vault", "kv.write") == 0
    assert world.tokens("admin") == [t for t in world.tokens("admin") if t["token_name"] == "bootstrap"]


def test_a_member_user_gets_a_least_privilege_token_whose_whoami_is_that_member(world: World) -> None:
    code, doc = world.run()  # no --scope: the defaults
    assert code == 0, world.outputs
    _, data = world.entry()
    assert data is not None
    me = world.coder(data["token"]).get(f"{world.env['CODER_URL']}/api/v2/users/me")
    assert me.status_code == 200 and me.json()["username"] == USER
    record = world.prefixed()[data["token_id"]]
    assert record["scopes"] == ["coder:workspaces.access", "user:read"]  # never the server's coder:all
    assert doc["terms"]["lifetime"] == "30d"


def test_a_privileged_user_is_refused_unless_allowed(world: World, control: Control) -> None:
    url = f"{world.env['CODER_URL']}/api/v2/users/{USER}/roles"
    world.coder().put(url, json={"roles": ["template-admin"]}).raise_for_status()
    code, doc = world.run()
    assert code == 3 and "template-admin" in doc["refusal"] and control.count("coder", "tokens.create") == 0
    code, doc = world.run("--allow-privileged-user")
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert ("warning", "privileged-user") in {(f["severity"], f["rule"]) for f in doc["findings"]}


def test_lifetime_over_coders_cap_is_minted_at_the_cap_and_the_dry_run_shows_it(world: World, control: Control) -> None:
    control.configure("coder", max_token_lifetime="72h")
    code, doc = world.run("--dry-run")  # the default grace (1d) is not below a third of 3d: an error finding
    assert code == 1 and "grace-over-renew-window" in {f["rule"] for f in doc["findings"]}
    code, doc = world.run("--dry-run", "--revoke-grace", "12h")
    assert code == 0
    assert doc["terms"] == {"requested_lifetime": "30d", "coder_cap": "3d", "lifetime": "3d", "renew_before": "1d"}
    assert doc["actions"][0]["lifetime_seconds"] == 3 * 86400  # typed (issue 22 point 6): the cap, in seconds
    (capped,) = [f for f in doc["findings"] if f["rule"] == "lifetime-capped"]
    assert capped["severity"] == "warning" and "3d" in capped["message"]
    code, doc = world.run("--revoke-grace", "12h")
    assert code == 0, world.outputs
    assert results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    _, data = world.entry()
    assert data is not None and world.prefixed()[data["token_id"]]["lifetime_seconds"] == 72 * 3600


def test_an_owner_minted_for_with_allow_privileged_user_gets_the_owner_cap(world: World) -> None:
    code, doc = world.run("--allow-privileged-user", "--revoke-grace", "12h", user=None)
    assert code == 0, world.outputs
    assert doc["terms"]["coder_cap"] == "7d" and doc["terms"]["lifetime"] == "7d"
    _, data = world.entry()
    assert data is not None and data["user"] == "admin"


# ---- the token policy by default (seed 001/002, issue 16) ---------------------------------------------------------


def test_minted_names_pass_the_policys_naming_rule_and_token_expiry_check_agrees(
    world: World, control: Control, tmp_path: Path
) -> None:
    assert world.run("--env", "staging")[0] == 0
    _, data = world.entry()
    assert data is not None and re.fullmatch(r"coder-cli-session-staging-\d{8}", data["token_name"])
    policy = tmp_path / "policy.yaml"
    policy.write_text('defaults: {name_pattern: "<purpose>-<environment:dev|staging|prod>-<yyyymmdd>"}\n')
    env = {**world.env, "CWJ_CODER_TOKEN_FILE": world.env["CWJ_BOOTSTRAP_TOKEN_FILE"]}
    args = ("--user", USER, "--policy-file", str(policy), "--vault-check", "--output", "json", "--now", control.now())
    proc = run_job("token-expiry-check", *args, env={**env, "VAULT_TOKEN": world.platform.vault.root_token})
    world._record(proc.stdout, proc.stderr)
    report = json.loads(proc.stdout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert not [f for f in report["findings"] if f["rule"] in ("name-off-pattern", "scope-all")], report["findings"]


def test_seed_002s_legacy_application_connect_scope_is_accepted(world: World) -> None:
    code, doc = world.run("--scope", "application_connect")
    assert code == 0, world.outputs
    _, data = world.entry()
    assert data is not None
    assert world.prefixed()[data["token_id"]]["scopes"] == ["coder:application_connect"]  # Coder canonicalises
    assert "checked: /deployment/ssh" in doc["outcomes"][0]["detail"]  # it may not read its user


def test_the_bootstrap_tokens_expiry_and_lifetime_are_checked(world: World, control: Control) -> None:
    # a server after coder PR #26376: on the stock v2.34.0 a bootstrap token used hourly slides and never nears expiry
    control.configure("coder", sliding_refresh=False)
    code, doc = world.run("--dry-run")
    assert code == 0
    rules = {(f["severity"], f["rule"]) for f in doc["findings"]}
    assert ("warning", "bootstrap-lifetime-over-max") in rules  # the seeded bootstrap token lives 365 days
    assert ("warning", "bootstrap-expiring") not in rules
    assert doc["bootstrap"]["name"] == "bootstrap" and doc["bootstrap"]["lifetime"] == "365d"
    control.advance(355 * DAY)  # 10 days left: inside the policy's 14
    code, doc = world.run("--dry-run")
    assert code == 0 and ("warning", "bootstrap-expiring") in {(f["severity"], f["rule"]) for f in doc["findings"]}


def test_the_bootstrap_expiry_is_pushed_for_the_expiring_token_alert(world: World, pushgateway: Pushgateway) -> None:
    env = {**world.env, **pushgateway.env}  # the real Pushgateway over HTTPS
    assert world.run("--pushgateway-url", pushgateway.url, env=env)[0] == 0
    samples = pushgateway.samples("coder-token-mint")
    assert ("cwj_token_expiry_timestamp_seconds", (("token_name", "bootstrap"), ("user", "admin"))) in samples


# ---- redirects carry no credential (issue 16) ---------------------------------------------------------------------


def test_a_coder_url_that_redirects_is_an_error_naming_the_target_and_the_token_stays_home(
    world: World, platform: Platform
) -> None:
    tls = platform.server_tls()
    with receiver(tls=tls) as elsewhere, redirector(elsewhere.url, 302, tls=tls) as front:
        code, _ = world.run(env={**world.env, "CODER_URL": front.url})
    assert code == 1
    err = world.stderr_of_last()
    assert "302 redirect" in err and f"{elsewhere.url}/api/v2/users/me" in err
    assert elsewhere.requests == []  # the bootstrap Owner token went nowhere else
    assert [r.path for r in front.requests] == ["/api/v2/users/me"]


@pytest.mark.parametrize("auth", ["kubernetes", "token"])
def test_a_vault_addr_that_redirects_is_an_error_and_no_credential_follows(
    world: World, control: Control, env: dict[str, str], platform: Platform, auth: str
) -> None:
    job_env = {**world.env, **({"VAULT_TOKEN": env["VAULT_TOKEN"]} if auth == "token" else {})}
    tls = platform.server_tls()  # VAULT_ADDR must be https (a Vault token or a login JWT crosses it)
    with receiver(tls=tls) as elsewhere, redirector(elsewhere.url, 307, tls=tls) as front:
        code, _ = world.run(env={**job_env, "VAULT_ADDR": front.url})
    assert code == 1
    err = world.stderr_of_last()
    assert "307 redirect" in err and elsewhere.url in err
    assert elsewhere.requests == []  # neither the login JWT (re-POSTed on a 307) nor X-Vault-Token went there
    assert len(front.requests) == 1  # a redirect is not retried
    assert control.count("coder", "tokens.create") == 0


# ---- 7. force-rotate ---------------------------------------------------------------------------------------------


def test_force_rotate_leaves_exactly_one_valid_prefixed_token(world: World, control: Control) -> None:
    assert world.run()[0] == 0
    control.advance(21 * DAY)
    assert world.run()[0] == 0  # now two prefixed tokens: the old one is in its grace
    assert len(world.prefixed()) == 2
    code, doc = world.run("--force-rotate")
    assert code == 0
    assert results(doc) == [("mint", "ok"), ("write-kv", "ok"), ("revoke", "ok"), ("revoke", "ok")]
    _, data = world.entry()
    assert data is not None
    tokens = world.prefixed()
    assert set(tokens) == {data["token_id"]} and world.status_of(data["token"]) == 200


# ---- compromise response (issue 16) ------------------------------------------------------------------------------


def test_compromised_revokes_the_stored_token_first_then_stores_a_successor_and_notifies(
    world: World, control: Control, platform: Platform
) -> None:
    assert world.run()[0] == 0
    _, leaked = world.entry()
    assert leaked is not None
    with receiver(tls=platform.server_tls()) as hook:  # a webhook URL must be https
        code, doc = world.run("--compromised", env={**world.env, "CWJ_WEBHOOK_URL": hook.url})
        (post,) = hook.requests
    assert code == 0, world.outputs
    assert results(doc) == [
        ("revoke", "ok"),
        ("mint", "ok"),
        ("write-kv", "ok"),
        ("clear-kv", "skipped"),
        ("notify", "ok"),
    ]
    assert leaked["token_id"] in doc["outcomes"][0]["target"]
    revoked_at = [e["seq"] for e in control.requests("coder", "keys.delete")["log"]]
    minted_at = [e["seq"] for e in control.requests("coder", "tokens.create")["log"]]
    assert revoked_at[0] < minted_at[-1]  # the leaked token was dead before its successor existed
    assert world.status_of(leaked["token"]) == 401
    _, data = world.entry()
    assert data is not None and world.status_of(data["token"]) == 200 and set(world.prefixed()) == {data["token_id"]}
    assert post.json()["text"].startswith("coder-token-mint --compromised: done")
    assert leaked["token"] not in post.body.decode() and data["token"] not in post.body.decode()


def test_compromised_with_no_successor_empties_the_entry_fails_and_notifies(
    world: World, control: Control, platform: Platform
) -> None:
    assert world.run()[0] == 0
    version, leaked = world.entry()
    assert leaked is not None
    control.fault("coder", "tokens.create", status=503, message="database is down")
    with receiver(tls=platform.server_tls()) as hook:  # a webhook URL must be https
        code, doc = world.run("--compromised", env={**world.env, "CWJ_WEBHOOK_URL": hook.url})
        (post,) = hook.requests
    assert code == 1
    assert results(doc) == [
        ("revoke", "ok"),
        ("mint", "failed"),
        ("write-kv", "skipped"),
        ("clear-kv", "ok"),
        ("notify", "ok"),
    ]
    assert world.status_of(leaked["token"]) == 401  # revoked even though no successor could be made
    new_version, cleared = world.entry()
    assert new_version == version + 1 and cleared is not None
    assert cleared["token"] == "" and cleared["status"] == "revoked" and cleared["token_id"] == leaked["token_id"]
    assert post.json()["text"].startswith("coder-token-mint --compromised: FAILED")
    code, doc = world.run()  # Coder is back: an ordinary run stores a successor
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert doc["decision"]["reason"].startswith("missing")
    _, data = world.entry()
    assert data is not None and world.status_of(data["token"]) == 200


def test_compromised_dry_run_shows_the_order_and_does_nothing(world: World, control: Control) -> None:
    assert world.run()[0] == 0
    control.clear_requests()
    code, doc = world.run("--compromised", "--dry-run")
    assert code == 0
    assert kinds(doc) == ["revoke", "mint", "write-kv", "clear-kv"]
    assert doc["decision"]["verdict"] == "compromised"
    assert control.count("coder", "keys.delete") == 0 and control.count("coder", "tokens.create") == 0


# ---- 8. dry-run ---------------------------------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_writes_nothing(world: World, control: Control) -> None:
    code, doc = world.run("--dry-run")
    assert code == 0
    assert doc["kind"] == "plan" and kinds(doc) == ["mint", "write-kv"]
    assert doc["decision"]["verdict"] == "renew"
    assert control.count("coder", "tokens.create") == 0 and control.count("vault", "kv.write") == 0
    assert control.count("vault", "kv.read") == 1 and control.count("vault", "token.revoke-self") == 1
    assert world.prefixed() == {} and world.entry() == (0, None)


# ---- settings and local use ------------------------------------------------------------------------------------


def test_bad_setting_exits_2_before_any_request(world: World, control: Control) -> None:
    control.clear_requests()
    code, _ = world.run("--revoke-grace", "soon")
    assert code == 2
    assert "--revoke-grace (CWJ_REVOKE_GRACE)" in world.stderr_of_last()
    assert control.count("vault") == 0 and control.count("coder") == 0
    code, _ = world.run("--vault-auth", "token")  # VAULT_TOKEN is not set in the job's environment
    assert code == 2 and "VAULT_TOKEN" in world.stderr_of_last()
    assert control.count("vault") == 0 and control.count("coder") == 0


def test_an_sres_vault_token_is_used_and_not_revoked(world: World, control: Control, env: dict[str, str]) -> None:
    code, doc = world.run(env={**world.env, "VAULT_TOKEN": env["VAULT_TOKEN"]})
    assert code == 0 and results(doc) == [("mint", "ok"), ("write-kv", "ok")]
    assert control.count("vault", "k8s.login") == 0 and control.count("vault", "token.revoke-self") == 0
    assert world.entry()[0] == 1  # the root token still works


def test_text_output_and_logs_name_actions_but_no_token(world: World) -> None:
    proc = run_job(JOB, "--user", USER, "--log-format", "json", env=world.env)
    world._record(proc.stdout, proc.stderr)
    assert proc.returncode == 0
    assert "coder-token-mint report" in proc.stdout and "write-kv" in proc.stdout
    summary = json.loads(proc.stderr.strip().splitlines()[-1])
    assert summary["event"] == "run.summary" and summary["results"] == {"mint.ok": 1, "write-kv.ok": 1}
    assert os.path.exists(world.env["CWJ_VAULT_JWT_FILE"])


def test_metrics_are_pushed_after_a_run_and_a_dry_run_says_it_was_one(world: World, pushgateway: Pushgateway) -> None:
    """A dry-run pushes only its run group, with cwj_dry_run 1 and no actions, never a success: a chart left on
    dryRun is visible in the metrics (issue 22, point 3)."""
    env = {**world.env, **pushgateway.env}  # a real Pushgateway over HTTPS (tests/pushgateway.py)
    assert world.run("--pushgateway-url", pushgateway.url, "--dry-run", env=env)[0] == 0
    assert pushgateway.groups("coder-token-mint") == {("default", "")}  # the run group only
    dry = pushgateway.samples("coder-token-mint")
    assert dry[("cwj_dry_run", ())] == 1 and not any(name == "cwj_actions" for name, _ in dry)
    assert world.run("--pushgateway-url", pushgateway.url, env=env)[0] == 0
    assert pushgateway.groups("coder-token-mint") == {("default", ""), ("default", "success")}  # the run, the success
    samples = pushgateway.samples("coder-token-mint")  # the run group, as Prometheus would scrape it
    assert samples[("cwj_actions", (("kind", "mint"), ("result", "ok")))] == 1
    assert samples[("cwj_actions", (("kind", "write-kv"), ("result", "ok")))] == 1
    assert samples[("cwj_last_run_exit_code", ())] == 0 and samples[("cwj_dry_run", ())] == 0
    assert list(pushgateway.samples("coder-token-mint", group=SUCCESS)) == [("cwj_last_success_timestamp_seconds", ())]
    assert pushgateway.pushed_at("coder-token-mint") is not None
