"""A dry-run catches what the run would break (issue 22, point 3), fic-reconcile against the emulated platform:
an --issuer that differs from its discovery document (a missing trailing slash) is refused before any write,
an unreadable discovery document is a warning, and a namespace scope that matches nothing is a warning whether
or not FICs of ours exist."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from kubernetes import client as k8s

from lib.clients.kube import core_api
from tests.conftest import Control, run_job
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e


def plan(env: dict[str, str], *args: str) -> tuple[int, dict[str, object], str]:
    proc = run_job("fic-reconcile", "--output", "json", *args, env=env)
    return proc.returncode, (json.loads(proc.stdout) if proc.stdout.startswith("{") else {}), proc.stderr


def warnings(doc: dict[str, object]) -> dict[str, str]:
    return {f["rule"]: f["message"] for f in doc["findings"] if f["severity"] == "warning"}  # type: ignore[attr-defined,index]


def test_an_issuer_without_its_trailing_slash_is_refused_before_any_write(
    env: dict[str, str], control: Control
) -> None:
    core_api(os.environ).create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name="ameide-ws-a")))
    wrong = env["CWJ_OIDC_ISSUER"].rstrip("/")
    control.clear_requests()
    for args in (("--dry-run",), ()):
        code, _, stderr = plan({**env, "CWJ_OIDC_ISSUER": wrong}, *args)
        assert code == 2, stderr
        line = next(x for x in stderr.splitlines() if x.startswith("fic-reconcile: configuration error: "))
        assert "--issuer (CWJ_OIDC_ISSUER)" in line and "(only the trailing slash differs)" in line
        assert repr(env["CWJ_OIDC_ISSUER"]) in line
    assert control.count("arm") == 0  # refused before ARM was even asked


def test_an_unreadable_discovery_document_is_a_warning_and_fast(env: dict[str, str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"https://127.0.0.1:{sock.getsockname()[1]}/"
    started = time.monotonic()
    code, doc, stderr = plan({**env, "CWJ_ISSUER_DISCOVERY_BASE": closed}, "--dry-run")
    assert code == 0, stderr
    assert "connection refused" in warnings(doc)["issuer-unverified"]
    assert time.monotonic() - started < 20


def test_a_prefix_that_matches_nothing_is_a_warning_even_with_fics_of_ours(
    platform: Platform, env: dict[str, str]
) -> None:
    api = core_api(os.environ)
    for name in ("ameide-ws-a", "ameide-ws-b"):
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    assert plan(env)[0] == 0  # two FICs of ours now
    code, doc, _ = plan({**env, "CWJ_NAMESPACE_PREFIX": "ameide-wz-"}, "--dry-run")  # a typo
    assert code == 3 and doc["refusal"]  # the delete guard refuses deleting every FIC of ours...
    assert "2 FIC(s) of ours exist" in warnings(doc)["no-workspace-namespaces"]  # ...and the warning says why
    assert "no-workspace-namespaces" not in warnings(plan(env, "--dry-run")[1])
