"""The fan-out contract (templates/fanout.yaml, issue 16): External Secrets turns the entry coder-token-mint writes
into Secret/coder-cli-auth with CODER_URL and CODER_SESSION_TOKEN in every workspace namespace (seed 003: a
workspace runs `coder whoami` without `coder login`).

The keys are checked against what the mint really writes (jobs/coder_token_mint/apply.py `entry_data`), and the
documents against External Secrets' published CRD schema as the npm registry package
@kubernetes-models/external-secrets ships it (compiled from ESO's CRDs), installed with `npm ci` from the pinned
tests/helm/eso/package-lock.json (integrity hashes) into .tools/; skipped, saying so, where node or npm is missing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from jobs.coder_token_mint.apply import Minted, entry_data
from lib.settings import parse_duration
from tests.helm.chart import CHART, FULL, template, template_error
from tests.pinned import TOOLS

ESO = Path(__file__).with_name("eso")
SELECTORS = '[{"matchLabels": {"coder.com/workspace": "true"}}]'
ON = ["--set", "fanout.enabled=true,fanout.secretStoreRef.name=vault-backend", "--set-json"]


def fanout(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [d for d in docs if d["apiVersion"] == "external-secrets.io/v1"]
    return found


def external_secret_spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = doc["spec"]
    return spec["externalSecretSpec"] if doc["kind"] == "ClusterExternalSecret" else spec


@pytest.fixture
def cluster_kind(home: Path) -> dict[str, Any]:
    return fanout(template(home, "-f", str(FULL), *ON, f"fanout.namespaceSelectors={SELECTORS}"))


def test_off_by_default(home: Path) -> None:
    docs = template(home, "-f", str(FULL))
    assert not [d for d in docs if d["apiVersion"].startswith("external-secrets.io")]


def test_the_secret_has_the_cli_variables_from_the_fields_the_mint_writes(cluster_kind: dict[str, Any]) -> None:
    assert cluster_kind["kind"] == "ClusterExternalSecret"
    assert cluster_kind["spec"]["namespaceSelectors"] == json.loads(SELECTORS)
    spec = external_secret_spec(cluster_kind)
    assert spec["target"]["name"] == "coder-cli-auth"
    refs = {d["secretKey"]: d["remoteRef"] for d in spec["data"]}
    assert set(refs) == {"CODER_URL", "CODER_SESSION_TOKEN"}  # what the coder CLI reads
    minted = Minted("AbCdEf1234-" + "x" * 22, "AbCdEf1234", "coder-cli-session-prod-20261202", *[datetime.now(UTC)] * 2)
    written = entry_data(minted, "workspace-bot", "https://coder.example.com")
    assert written[refs["CODER_SESSION_TOKEN"]["property"]] == minted.key
    assert written[refs["CODER_URL"]["property"]] == "https://coder.example.com"
    assert {r["key"] for r in refs.values()} == {
        "coder-cli-session-token"
    }  # vault.kvPath; the store's path is the mount


def test_eso_refreshes_well_inside_the_mints_revoke_grace(cluster_kind: dict[str, Any]) -> None:
    """A superseded token is revoked once its successor has been in Vault for revokeGrace: every copy must have
    been refreshed by then."""
    import yaml

    values = yaml.safe_load((CHART / "values.yaml").read_text())
    grace = parse_duration(values["jobs"]["coderTokenMint"]["settings"]["revokeGrace"])
    refresh = parse_duration(external_secret_spec(cluster_kind)["refreshInterval"])
    assert refresh * 2 <= grace and refresh > timedelta()


def test_a_namespaced_external_secret_and_the_required_values(home: Path) -> None:
    doc = fanout(
        template(home, "-f", str(FULL), *ON, "fanout.namespaceSelectors=[]", "--set", "fanout.kind=ExternalSecret")
    )
    assert doc["kind"] == "ExternalSecret" and doc["metadata"]["namespace"] == "jobs"
    assert {d["secretKey"] for d in doc["spec"]["data"]} == {"CODER_URL", "CODER_SESSION_TOKEN"}
    assert "fanout.namespaceSelectors is required" in template_error(
        home, "-f", str(FULL), *ON, "fanout.namespaceSelectors=[]"
    )
    error = template_error(home, "-f", str(FULL), "--set", "fanout.enabled=true")
    assert "/fanout/secretStoreRef/name" in error


# ---- against External Secrets' published CRD schema ---------------------------------------------------------


@pytest.fixture(scope="module")
def eso_validator() -> Path:
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip(
            "node and npm are needed to validate against ESO's CRD schema (@kubernetes-models/external-secrets)"
        )
    target = TOOLS / "eso-schema"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json", "validate.mjs"):
        shutil.copy(ESO / name, target / name)
    if not (target / "node_modules" / "@kubernetes-models" / "external-secrets").is_dir():
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-2000:]
    return target


def validate(validator: Path, docs: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", "validate.mjs"], cwd=validator, input=json.dumps(docs), capture_output=True, text=True, timeout=120
    )


def test_both_kinds_pass_esos_crd_schema(home: Path, eso_validator: Path, cluster_kind: dict[str, Any]) -> None:
    namespaced = fanout(
        template(home, "-f", str(FULL), *ON, "fanout.namespaceSelectors=[]", "--set", "fanout.kind=ExternalSecret")
    )
    done = validate(eso_validator, [cluster_kind, namespaced])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split("\n")[:2] == ["ok ClusterExternalSecret", "ok ExternalSecret"]


def test_the_schema_check_bites(eso_validator: Path, cluster_kind: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(cluster_kind))
    del broken["spec"]["externalSecretSpec"]["data"][0]["remoteRef"]["key"]
    done = validate(eso_validator, [broken])
    assert done.returncode == 1 and "must have required property key" in done.stdout
