"""token-expiry-check in `make demo`: a CI service account with a compliant token, a bot with a year-long
token and one about to cross its 14-day warning; dry-run, apply (alert + metrics), apply the next day (no
repeat alert), and the safety behaviour: an auditor token that cannot see tokens fails instead of passing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.demo import Demo, coder_session
from tests.pushgateway import Pushgateway
from tests.receivers import receiver

JOB = "token-expiry-check"
NS = 1_000_000_000
POLICY = """\
defaults:
  name_pattern: "<purpose>-<environment>-<yyyymmdd>"
users:
  cicd-template-deployer:
    allowed_site_roles: [template-admin]
    allow_all_scope: false
    expect_tokens: true
"""


def _seed(demo: Demo) -> None:
    s = coder_session(demo.platform)
    api = demo.platform.coder.url + "/api/v2"
    org = s.get(f"{api}/users/me").json()["organization_ids"]

    def post(path: str, body: dict[str, Any]) -> None:
        s.post(f"{api}{path}", json=body).raise_for_status()

    post("/users", {"username": "cicd-template-deployer", "organization_ids": org, "service_account": True})
    s.put(f"{api}/users/cicd-template-deployer/roles", json={"roles": ["template-admin"]}).raise_for_status()
    post("/users", {"username": "ci-bot", "email": "ci-bot@example.test", "password": "a-long-password-1",
                    "organization_ids": org})  # fmt: skip
    for user, name, hours, scopes in (
        ("cicd-template-deployer", "cicd-template-prod-20241216", 2160, ["coder:templates.author"]),
        ("ci-bot", "ci-api-prod-20241216", 8760, []),
        ("ci-bot", "ci-web-prod-20241216", 15 * 24, []),
    ):
        body: dict[str, Any] = {"token_name": name, "lifetime": hours * 3600 * NS}
        if scopes:
            body["scopes"] = scopes
        post(f"/users/{user}/keys/tokens", body)
    demo.platform.clock.advance(timedelta(days=1, minutes=5).total_seconds())
    demo.say("seeded: cicd-template-deployer (template-admin, 2160h token); ci-bot (an 8760h token, one at 14 days)")


def run(demo: Demo) -> None:
    _seed(demo)
    policy = demo.platform.state_dir / "token-policy.yaml"
    policy.write_text(POLICY)
    owner = {"CWJ_CODER_TOKEN_FILE": demo.env["CWJ_BOOTSTRAP_TOKEN_FILE"]}  # only owners can read others' tokens
    users = ("--user", "cicd-template-deployer", "--user", "ci-bot", "--policy-file", str(policy))

    def now() -> tuple[str, str]:
        return ("--now", demo.platform.clock.now().isoformat())

    gateway = Pushgateway.for_platform(demo.platform).start()  # a real one (tests/pushgateway.py), over HTTPS
    owner = {**owner, **gateway.env}
    try:
        with receiver(tls=demo.platform.server_tls()) as hook:  # the alert webhook: a recording stand-in for Slack
            sinks = ("--webhook-url", hook.url, "--pushgateway-url", gateway.url)
            title = "dry-run: findings and the alert it would send"
            demo.job(JOB, *users, *sinks, *now(), "--dry-run", env=owner, title=title)
            pushed = gateway.pushed_at(JOB) is not None
            demo.say(f"dry-run: webhook received {len(hook.requests)} POST(s), Pushgateway holds a push: {pushed}")
            title = "apply: the 8760h token is critical -> exit 1"
            demo.job(JOB, *users, *sinks, *now(), expect=1, env=owner, title=title)
            text = hook.requests[-1].json()["text"] if hook.requests else ""
            demo.say(f"webhook received {len(hook.requests)} POST(s): {text}")
            expiring = {dict(labels)["token_name"]: value for (name, labels), value in gateway.samples(JOB).items()
                        if name == "cwj_token_expiry_timestamp_seconds"}  # fmt: skip
            demo.say(f"the Pushgateway serves cwj_token_expiry_timestamp_seconds for {sorted(expiring)}")
            demo.platform.clock.advance(86400)
            title = "the next day: same findings, no repeat alert"
            demo.job(JOB, *users, *sinks, *now(), expect=1, env=owner, title=title)
            demo.say(f"webhook total {len(hook.requests)} POST(s) (no new crossing)")
    finally:
        gateway.stop()
    demo.job(JOB, *users, *now(), "--fail-on", "never", env=owner, title="--fail-on never: report only")
    demo.job(
        JOB,
        "--user",
        "cicd-template-deployer",
        *now(),
        expect=1,
        title="safety: the auditor token cannot see the service account's tokens -> error, not a silent pass",
    )
