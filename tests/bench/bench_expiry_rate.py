"""token-expiry-check --all-users over 1,000 users under Coder's API rate limit (issue 16, "Done means" 4).

The Coder emulator limits like a stock server (tests/emulators/coder/ratelimit.py: `--api-rate-limit` 512 per
minute, go-chi/httprate's sliding window, 429 + Retry-After = the window). Coder keys that budget per user AND
request path (coderd/httpmw/ratelimit.go composes httprate.KeyByEndpoint), so a check that reads each user's
token list at its own path spends one request per budget; only the users list, paged 100 at a time on one path,
repeats a path. Two scenarios:

1. Coder's key (user + path), real time: the run's requests, how many Coder refused (429), the exit code, and
   that every user's tokens were seen (no `error` finding);
2. a harsher key, one budget per user for every path (as Coder's docs word the flag: "per user"; a proxy in
   front may limit that way), time compressed S-fold (`rate_limit_time_scale` S: a minute passes in 60/S real
   seconds, Retry-After is ceil(60/S)): the run must still converge, its 429s retried after Retry-After, and its
   time x S must stay under the chart's activeDeadlineSeconds (300 s). Lower bound: the requests beyond the
   first 512 arrive at 512 per minute.

Seeding goes through Coder's own API as the Owner with `X-Coder-Bypass-Ratelimit: true`, as an admin's load
script would (the bypass is Coder's, for Owners only).

Run: `.venv/bin/python -m tests.bench.bench_expiry_rate [S]` (default S = 10).
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.bench.common import Run, check_at_most, check_equal, configure, info, run_job, tally
from tests.demo import base_env, coder_session
from tests.emulators.platform import Platform

USERS = 1000
LIMIT = 512  # Coder's --api-rate-limit default, per minute
DEADLINE_S = 300.0  # the chart's activeDeadlineSeconds for token-expiry-check
SCALE = 10.0
NS = 1_000_000_000
BYPASS = {"X-Coder-Bypass-Ratelimit": "true"}  # codersdk.BypassRatelimitHeader: Owners only


def seed(platform: Platform) -> None:
    api = f"{platform.coder.url}/api/v2"
    s = coder_session(platform)
    s.headers.update(BYPASS)
    org = s.get(f"{api}/users/me").json()["organization_ids"]
    for i in range(USERS):
        name = f"user-{i:04d}"
        body = {"username": name, "email": f"{name}@example.test", "password": "a-long-password-1"}
        created = s.post(f"{api}/users", json={**body, "organization_ids": org, "user_status": "active"})
        created.raise_for_status()
        token = {"token_name": f"{name}-ci-prod-20260101", "lifetime": 60 * 86400 * NS}
        s.post(f"{api}/users/{created.json()['id']}/keys/tokens", json=token).raise_for_status()


def check_run(platform: Platform) -> tuple[Run, dict[str, Any], int, int]:
    env = {**base_env(platform), "CWJ_CODER_TOKEN_FILE": base_env(platform)["CWJ_BOOTSTRAP_TOKEN_FILE"]}
    platform.log.clear()
    run = run_job("token-expiry-check", ["--all-users", "--fail-on", "never", "--output", "json"], env)
    log = platform.log.entries("coder")
    return run, json.loads(run.stdout or "{}"), len(log), sum(1 for e in log if e["status"] == 429)


def report(prefix: str, run: Run, doc: dict[str, Any], requests: int, refused: int, scale: float) -> None:
    errors = [f for f in doc.get("findings", []) if f["severity"] == "error"]
    users_seen = len({row["user"] for row in doc.get("tokens", [])})
    info(f"{prefix}: exit {run.code}, {requests} Coder requests ({refused} answered 429), {run.wall_s:.2f} s real")
    check_equal(f"{prefix}: exit code", run.code, 0)
    check_equal(f"{prefix}: error findings (a blind check)", len(errors), 0)
    check_at_most(f"{prefix}: users whose tokens were read, short of {USERS + 2}", USERS + 2 - users_seen, 0)
    check_at_most(f"{prefix}: run time x S", run.wall_s * scale, DEADLINE_S, " s", "{:.1f}")


def main(scale: float = SCALE) -> None:
    platform = Platform(Path(tempfile.mkdtemp(prefix="cwj-bench-expiry-rate-"))).start()
    try:
        seed(platform)
        pages = math.ceil((USERS + 2) / 100)
        floor = 2 + pages + USERS + 2  # /users/me, buildinfo, the user pages, one token list per user
        info(f"-- expiry-rate: {USERS} users + admin + auditor, one token each; least requests {floor}")

        prefix = "expiry-rate coder key (user+path)"
        run, doc, requests, refused = check_run(platform)
        report(prefix, run, doc, requests, refused, 1.0)
        check_equal(f"{prefix}: 429 answers", refused, 0)
        check_equal(f"{prefix}: requests", requests, floor)

        prefix = f"expiry-rate per-user key, S = {scale:g}"
        configure(platform, "coder", rate_limit_key="user", rate_limit_time_scale=scale)
        run, doc, requests, refused = check_run(platform)
        report(prefix, run, doc, requests, refused, scale)
        bound = (floor - LIMIT) / (LIMIT / 60.0)
        info(f"{prefix}:   (lower bound: ({floor} - {LIMIT}) requests at {LIMIT}/min = {bound:.0f} s emulated)")
        check_at_most(f"{prefix}: requests beyond the least (429s and their retries)", requests - floor, 2 * refused)
    finally:
        platform.stop()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else SCALE)
    sys.exit(tally())
