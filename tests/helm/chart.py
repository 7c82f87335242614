"""Rendering the chart with the real helm binary, and picking rendered documents apart (shared by the chart tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.helm.helm_binary import ROOT, run_helm

CHART = ROOT / "helm" / "coder-wi-jobs"
FULL = CHART / "ci" / "full-values.yaml"
VALUE_KEYS = {
    "fic-reconcile": "ficReconcile",
    "keyvault-sync": "keyvaultSync",
    "coder-token-mint": "coderTokenMint",
    "token-expiry-check": "tokenExpiryCheck",
}


def template(home: Path, *args: str, release: str = "rel", namespace: str = "jobs") -> list[dict[str, Any]]:
    done = run_helm("template", release, str(CHART), "--namespace", namespace, *args, home=home)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def template_error(home: Path, *args: str) -> str:
    done = run_helm("template", "rel", str(CHART), "--namespace", "jobs", *args, home=home)
    assert done.returncode != 0, f"helm accepted {args}"
    return done.stderr


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def cronjob(docs: list[dict[str, Any]], job: str, release: str = "rel") -> dict[str, Any]:
    (found,) = [d for d in kinds(docs, "CronJob") if d["metadata"]["name"] == f"{release}-{job}"]
    return found


def pod_spec(cj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def container(cj: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(cj)["containers"]
    return dict(only)


def env_of(cj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(cj)["env"]}
