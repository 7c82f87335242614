"""coder-token-mint in `make demo`: a workspace user `ws-bot`; dry-run, first mint, a run that changes
nothing, rotation inside the renew window, the old token revoked once the grace has passed; then the safety
behaviour: two runs at once (check-and-set lets one win, the loser revokes its own token), a Vault role that
does not exist, and an expired bootstrap token (exit 1, Vault untouched)."""

from __future__ import annotations

import shutil
import subprocess
import uuid

from tests.demo import BIN, Demo, coder_session
from tests.emulators.core import Fault

JOB = "coder-token-mint"
USER = "ws-bot"
DAY = 86400


def _tokens(demo: Demo) -> str:
    url = f"{demo.platform.coder.url}/api/v2/users/{USER}/keys/tokens"
    items = coder_session(demo.platform).get(url, params={"include_expired": "true"}).json() or []
    return ", ".join(f"{t['token_name']} ({t['id']})" for t in items) or "none"


def _vault_requests(demo: Demo) -> int:
    return len(demo.platform.log.entries("vault"))


def run(demo: Demo) -> None:
    body = {
        "username": USER,
        "email": "ws-bot@example.test",
        "login_type": "none",
        "organization_ids": [str(uuid.UUID(int=0))],
    }
    coder_session(demo.platform).post(f"{demo.platform.coder.url}/api/v2/users", json=body).raise_for_status()
    demo.say(f"seeded: Coder user {USER} (not an owner, so Coder allows a 30-day token); Vault KV is empty")
    pod = {"VAULT_TOKEN": ""}  # Kubernetes auth with the service-account JWT, as in the pod

    def now() -> tuple[str, ...]:
        return ("--user", USER, "--now", demo.platform.clock.now().isoformat())

    demo.job(JOB, *now(), "--dry-run", env=pod, title="dry-run: Vault is empty, so it would mint and write")
    demo.job(JOB, *now(), env=pod, title="apply: mint, check it authenticates, write with check-and-set 0")
    demo.job(JOB, *now(), env=pod, title="apply again: the token is valid for 30 days, nothing to do")

    demo.platform.clock.advance(21 * DAY)
    demo.say("the emulated clock moves 21 days: 9 days left, inside the 10-day renew window")
    demo.job(JOB, *now(), env=pod, title="rotate: new token written; the old one stays valid through the grace")
    demo.say(f"{USER}'s tokens: {_tokens(demo)}")
    demo.platform.clock.advance(DAY + 60)
    demo.job(JOB, *now(), env=pod, title="a day later: the successor has been in Vault for the grace, revoke the old")
    demo.say(f"{USER}'s tokens: {_tokens(demo)}")

    demo.say("safety: two runs at once with --force-rotate (each Vault write delayed 2s so both read version 2)")
    demo.platform.faults.add(Fault("vault", "kv.write", delay=2.0, count=2))
    exe = shutil.which(JOB, path=str(BIN))
    assert exe
    argv = [exe, *now(), "--force-rotate"]
    procs = [
        subprocess.Popen(argv, env={**demo.env, **pod}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    for i, proc in enumerate(procs, 1):
        out, err = proc.communicate(timeout=120)
        print(f"\n$ {JOB} {' '.join(argv[1:])}    # concurrent run {i}\n{out.rstrip()}\nexit {proc.returncode}")
        if proc.returncode != 0 or demo.platform.leaked_secrets(out + err):
            demo.failures.append(f"concurrent run {i}: exit {proc.returncode}")
    demo.say(f"{USER}'s tokens: {_tokens(demo)} (one survives: the one in Vault)")

    demo.job(JOB, *now(), "--vault-role", "no-such-role", env=pod, expect=1, title="a Vault role that does not exist")
    demo.platform.clock.advance(366 * DAY)
    before = _vault_requests(demo)
    demo.job(JOB, *now(), env=pod, expect=1, title="a year later the bootstrap token has expired")
    demo.say(f"Vault requests during that run: {_vault_requests(demo) - before} (Vault untouched)")
