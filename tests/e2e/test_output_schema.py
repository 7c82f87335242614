"""Plans and reports fit a change ticket (issue 22, point 6): each job's plan (--dry-run) and report, run as a
console script against the emulated platform with something to do, validate against the JSON Schema shipped in
docs/output.schema.json (the same top-level keys and action keys in every job, typed values, schema_version,
run_id, version and effective settings), updates carry before -> after, and the text header is plain words."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.keyvault.secrets import SecretClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential
from jsonschema import Draft202012Validator
from kubernetes import client as k8s

from lib.clients.azure_auth import azure_credential
from lib.clients.kube import core_api
from lib.version import version
from tests.conftest import run_job
from tests.emulators.platform import Platform

pytestmark = pytest.mark.e2e

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "output.schema.json").read_text())
VALIDATOR = Draft202012Validator(SCHEMA)
NS = 1_000_000_000


def document(job: str, *args: str, env: dict[str, str], codes: tuple[int, ...] = (0,)) -> dict[str, Any]:
    proc = run_job(job, "--output", "json", *args, env=env)
    assert proc.returncode in codes, proc.stderr[-2000:]
    doc: dict[str, Any] = json.loads(proc.stdout)
    errors = sorted(VALIDATOR.iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert errors == [], "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
    run_id = json.loads(proc.stderr.strip().splitlines()[-1])["run_id"]
    assert doc["run_id"] == run_id and doc["version"] == version()  # the document names its run and build
    return doc


def text_header(job: str, *args: str, env: dict[str, str]) -> str:
    return run_job(job, *args, env=env).stdout.splitlines()[0]


def test_fic_reconcile_plan_and_report_validate_and_an_update_shows_before_and_after(
    platform: Platform, env: dict[str, str]
) -> None:
    api = core_api(os.environ)
    for name in ("ameide-ws-a", "ameide-ws-b", "ameide-ws-c"):
        api.create_namespace(k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name)))
    plan = document("fic-reconcile", "--dry-run", env=env)
    assert {a["kind"] for a in plan["actions"]} == {"create"} and plan["counts"]["actions"] == {"create": 3}
    assert plan["settings"]["issuer"] == env["CWJ_OIDC_ISSUER"] and plan["dry_run"] is True
    assert text_header("fic-reconcile", "--dry-run", env=env) == "fic-reconcile plan: 3 actions: 3 create"
    report = document("fic-reconcile", env=env)
    assert [o["result"] for o in report["outcomes"]] == ["ok"] * 3

    # someone rewrites one FIC's subject: the next plan updates it and says from what to what
    create = next(o for o in report["outcomes"] if o["namespace"] == "ameide-ws-b")
    msi = ManagedServiceIdentityClient(
        azure_credential(os.environ), platform.baseline.subscription_id, base_url=platform.arm.url
    )
    wrong = "system:serviceaccount:ameide-ws-b:someone-else"
    msi.federated_identity_credentials.create_or_update(
        platform.baseline.pool_resource_group,
        create["identity"],
        create["fic"],
        FederatedIdentityCredential(
            issuer=env["CWJ_OIDC_ISSUER"], subject=wrong, audiences=["api://AzureADTokenExchange"]
        ),
    )
    (update,) = document("fic-reconcile", "--dry-run", env=env)["actions"]
    assert update["kind"] == "update" and update["changes"] == [
        {"field": "subject", "before": wrong, "after": "system:serviceaccount:ameide-ws-b:workspace"}
    ]
    text = run_job("fic-reconcile", "--dry-run", env=env).stdout
    assert f"subject: {wrong} -> system:serviceaccount:ameide-ws-b:workspace" in text


def test_keyvault_sync_plan_and_report_validate_and_a_property_update_shows_before_and_after(
    env: dict[str, str], vaults: tuple[SecretClient, SecretClient], tmp_path: Path
) -> None:
    source, target = vaults
    source.set_secret("alpha", "value-alpha-0123456789", content_type="text/plain")
    source.set_secret("beta", "value-beta-0123456789")
    allowlist = tmp_path / "allowlist.yaml"
    allowlist.write_text("- alpha\n- beta\n")
    args = ("--allowlist-file", str(allowlist))
    assert [a["kind"] for a in document("keyvault-sync", "--dry-run", *args, env=env)["actions"]] == ["copy"] * 2
    document("keyvault-sync", *args, env=env)
    target.update_secret_properties("alpha", content_type="application/json")  # drift on the target
    # (beta may be planned too: a seed change in the same second as the copy is re-checked, keyvault-sync.md)
    update = next(
        a for a in document("keyvault-sync", "--dry-run", *args, env=env)["actions"] if a["target"] == "alpha"
    )
    assert update["kind"] == "update" and update["source"] == "alpha"
    assert {"field": "content_type", "before": "application/json", "after": "text/plain"} in update["changes"]
    report = document("keyvault-sync", *args, env=env)
    assert {o["target"]: o["result"] for o in report["outcomes"]}["alpha"] == "ok"


def test_coder_token_mint_plan_and_report_validate_with_typed_fields(env: dict[str, str]) -> None:
    refused = document("coder-token-mint", "--dry-run", env={**env, "CWJ_USER": "admin"}, codes=(3,))
    assert refused["refusal"].startswith("refused to mint for 'admin'") and refused["actions"] == []  # the guard
    mint = {**env, "CWJ_USER": "admin", "CWJ_LIFETIME": "6d", "CWJ_ALLOW_PRIVILEGED_USER": "true"}  # cap: 168h
    plan = document("coder-token-mint", "--dry-run", env=mint)
    made, write = plan["actions"]
    assert (
        made["kind"] == "mint"
        and made["lifetime_seconds"] == 6 * 86400
        and made["scopes"]
        == [
            "coder:workspaces.access",
            "user:read",
        ]
    )
    assert write["check_and_set"] == plan["vault_entry"]["version"] == 0
    assert write["changes"] == [{"field": "version", "before": 0, "after": 1}]
    assert ("warning", "privileged-user") in {(f["severity"], f["rule"]) for f in plan["findings"]}
    report = document("coder-token-mint", env=mint)
    assert report["counts"]["outcomes"] == {"mint.ok": 1, "write-kv.ok": 1}
    leaked = document("coder-token-mint", "--compromised", "--dry-run", env=mint)  # the compromise response
    kinds = [a["kind"] for a in leaked["actions"]]
    assert kinds[0] == "revoke" and "clear-kv" in kinds, kinds
    (clear,) = [a for a in leaked["actions"] if a["kind"] == "clear-kv"]
    assert {"field": "status", "before": None, "after": "revoked"} in clear["changes"]


def test_token_expiry_check_plan_and_report_validate_with_typed_rows(platform: Platform, env: dict[str, str]) -> None:
    owner = {**env, "CWJ_CODER_TOKEN_FILE": env["CWJ_BOOTSTRAP_TOKEN_FILE"], "CWJ_ALL_USERS": "true"}
    session = requests.Session()
    session.verify = env["REQUESTS_CA_BUNDLE"]
    session.headers["Coder-Session-Token"] = Path(env["CWJ_BOOTSTRAP_TOKEN_FILE"]).read_text().strip()
    created = session.post(
        f"{env['CODER_URL']}/api/v2/users/admin/keys/tokens",
        json={"token_name": "ci-short", "lifetime": 5 * 86400 * NS},
    )
    assert created.status_code == 201, created.text
    plan = document("token-expiry-check", "--dry-run", env=owner)
    (alert,) = plan["actions"]
    assert alert["kind"] == "alert" and alert["target"] == "admin/ci-short" and alert["changes"] == []
    row = next(r for r in plan["tokens"] if r["token_name"] == "ci-short")
    assert isinstance(row["days_left"], float) and row["last_used"] is None and isinstance(row["scopes"], list)
    report = document("token-expiry-check", "--fail-on", "never", env=owner)
    assert report["outcomes"][0]["result"] == "skipped"  # no --webhook-url
    assert text_header("token-expiry-check", "--dry-run", env=owner) == "token-expiry-check plan: 1 action: 1 alert"


def test_the_schema_rejects_what_the_issue_found() -> None:
    """Numbers as strings, "never" for null, a job's own key for the action kind: each one fails validation."""
    base = {
        "schema_version": 1, "job": "token-expiry-check", "kind": "plan", "version": "0.1.0", "run_id": "0123456789ab",
        "as_of": "2026-01-01T00:00:00Z", "dry_run": True, "settings": {}, "options": {},
        "counts": {"actions": {}, "findings": {}}, "actions": [], "findings": [], "refusal": None,
    }  # fmt: skip
    assert list(VALIDATOR.iter_errors(base)) == []
    row = {"user": "u", "token_name": "t", "id": "i", "created_at": None, "expires_at": None, "days_left": 1.5,
           "lifetime_days": 2.0, "scopes": [], "last_used": None, "status": "valid"}  # fmt: skip
    assert list(VALIDATOR.iter_errors({**base, "tokens": [row]})) == []
    for bad in ({"days_left": "1.5"}, {"last_used": "never"}, {"scopes": "all"}):
        assert list(VALIDATOR.iter_errors({**base, "tokens": [{**row, **bad}]})), bad
    fic_action = {"action": "create", "target": "x", "reason": "missing", "changes": [], "phase": 0}
    assert list(VALIDATOR.iter_errors({**base, "job": "fic-reconcile", "actions": [fic_action]}))
    assert list(VALIDATOR.iter_errors({k: v for k, v in base.items() if k != "run_id"}))
