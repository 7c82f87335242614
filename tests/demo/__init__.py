"""`make demo`: boot the emulated platform, seed a scenario per job through the real APIs, and run each
implemented job the way an SRE would (dry-run, apply, apply again), printing what happened."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.emulators.platform import Platform

BIN = Path(sys.executable).parent


class DemoFailure(Exception):
    pass


@dataclass
class Demo:
    platform: Platform
    env: dict[str, str]
    failures: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        print(f"\n### {text}", flush=True)

    def job(self, name: str, *args: str, expect: int = 0, title: str = "", env: dict[str, str] | None = None) -> str:
        """Run a console script; print its stdout and its run.summary; record a failure on a surprise exit."""
        exe = shutil.which(name, path=str(BIN))
        assert exe, f"{name} is not installed"
        shown = " ".join([name, *args])
        print(f"\n$ {shown}" + (f"    # {title}" if title else ""), flush=True)
        proc = subprocess.run(
            [exe, *args], env={**self.env, **(env or {})}, capture_output=True, text=True, timeout=300, check=False
        )
        print(proc.stdout.rstrip())
        summary = next((line for line in reversed(proc.stderr.splitlines()) if "run.summary" in line), "")
        if summary:
            try:
                event = json.loads(summary)
                keep = ("exit_code", "dry_run", "planned", "results", "findings", "duration_s")
                print("summary:", json.dumps({k: event[k] for k in keep if k in event}))
            except ValueError:
                print(summary)
        elif proc.stderr.strip():
            print(proc.stderr.strip().splitlines()[-1])
        leaked = self.platform.leaked_secrets(proc.stdout + proc.stderr)
        if leaked:
            self.failures.append(f"{shown}: printed {leaked} secret value(s) the emulators issued")
        mark = "ok" if proc.returncode == expect else "UNEXPECTED"
        print(f"exit {proc.returncode} (expected {expect}) {mark}", flush=True)
        if proc.returncode != expect:
            self.failures.append(f"{shown}: exit {proc.returncode}, expected {expect}")
        return proc.stdout


def base_env(platform: Platform) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **platform.env()}


def coder_session(platform: Platform) -> requests.Session:
    """A session on Coder's API as the bootstrap owner, for seeding and looking like an operator would."""
    s = requests.Session()
    s.trust_env = False  # else a REQUESTS_CA_BUNDLE in the shell overrides the platform CA below
    s.verify = str(platform.ca_path)
    s.headers["Coder-Session-Token"] = platform.coder.bootstrap_token
    return s
