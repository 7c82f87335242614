"""docs/helm.md's command that turns Azure's service tags into the chart's NetworkPolicy values, run as written
with the real jq on Microsoft's own entries for the three tags (tests/api_specs/azure/service-tags), for the
tests that render the chart the way the docs install it (`-f my-values.yaml -f netpol-values.json`)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.helm.helm_binary import ROOT
from tests.specs import API_SPECS

SERVICE_TAGS = API_SPECS / "azure" / "service-tags"
# the chart value each tag feeds, as the docs' command maps them
TAG_OF = {"entraId": "AzureActiveDirectory", "azureResourceManager": "AzureResourceManager",
          "azureKeyVault": "AzureKeyVault.WestEurope"}  # fmt: skip


class JqMissing(RuntimeError):
    pass


def docs_command() -> str:
    """The `jq ... > netpol-values.json` command in docs/helm.md's "NetworkPolicy" section, exactly as printed."""
    text = (ROOT / "docs" / "helm.md").read_text()
    section = text.split("## NetworkPolicy", 1)[1].split("\n## ", 1)[0]
    (block,) = [b for b in re.findall(r"```sh\n(.*?)```", section, re.S) if "jq " in b]
    (command,) = re.findall(r"^(jq .*?> netpol-values\.json)$", block, re.S | re.M)
    return command


def entries() -> dict[str, dict[str, Any]]:
    return {p.stem: json.loads(p.read_text()) for p in sorted(SERVICE_TAGS.glob("*.json"))}


def netpol_values(folder: Path) -> Path:
    """Write service-tags.json (the entries under `values`, as `az network list-service-tags -o json` and the
    weekly download carry them) into `folder`, run the docs' command there, return netpol-values.json."""
    if shutil.which("jq") is None:
        raise JqMissing("jq is needed to run docs/helm.md's service-tag command; as root: apt-get install jq")
    (folder / "service-tags.json").write_text(json.dumps({"cloud": "Public", "values": list(entries().values())}))
    done = subprocess.run(
        ["bash", "-c", docs_command()], cwd=folder, capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"docs/helm.md's jq command exited {done.returncode}: {done.stderr}")
    return folder / "netpol-values.json"
