"""An `az` stand-in for the laptop tests: `az account get-access-token`, printing exactly what the Azure CLI prints,
with a token the platform's Entra emulator issued (so the ARM and Key Vault emulators accept it).

What it copies, and from where:
- the command azure-identity runs (azure/identity/_credentials/azure_cli.py, 1.27.0): `az account get-access-token
  --output json --resource <scope without /.default>`, `--tenant <id>` when a tenant is asked for (a Key Vault
  challenge names one), `--subscription` when configured; cwd /bin, AZURE_CORE_NO_COLOR=true;
- the document (Azure/azure-cli src/azure-cli/azure/cli/command_modules/profile/custom.py `get_access_token`
  and src/azure-cli-core/azure/cli/core/_profile.py `get_raw_token`): tokenType "Bearer", accessToken,
  expires_on (POSIX seconds), expiresOn (`datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f")`,
  a naive local time), tenant, and subscription unless --tenant was given;
- the printing (microsoft/knack knack/output.py `format_json`): `json.dumps(result, ensure_ascii=False, indent=2,
  sort_keys=True, separators=(',', ': ')) + '\\n'`;
- not logged in: `ERROR: Please run 'az login' to setup account.` on stderr, exit 1 (_profile.py
  `_AZ_LOGIN_MESSAGE`; the CLI prefixes errors with `ERROR: `).

The "login" is the jobs' own identity exchanging its federated token at the Entra emulator, the grant
WorkloadIdentityCredential uses; what is being tested is which credential the job picks and what it asks for,
and every call is appended to a JSON-lines log (argv only) so a test can prove the CLI ran and with which
audience. A test writes the script into a directory it puts on PATH (`install`).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.emulators.platform import Platform

SCRIPT = r'''#!{python}
"""az stand-in written by tests/e2e/az_cli.py: `az account get-access-token` only."""
import json, sys, time
from datetime import datetime

import requests

CONFIG = json.loads({config!r})


def fail(message, code=1):
    sys.stderr.write("ERROR: " + message + "\n")
    sys.exit(code)


args = sys.argv[1:]
with open(CONFIG["log"], "a", encoding="utf-8") as log:
    log.write(json.dumps({{"argv": args}}) + "\n")
if args[:2] != ["account", "get-access-token"]:
    fail("'" + " ".join(args[:2]) + "' is misspelled or not recognized by the system.", 2)
options = dict(zip(args[2::2], args[3::2]))
if not CONFIG["logged_in"]:
    fail("Please run 'az login' to setup account.")
resource = options.get("--resource") or options.get("--scope", "").removesuffix("/.default") or CONFIG["arm"]
tenant = options.get("--tenant") or CONFIG["tenant"]
form = {{
    "grant_type": "client_credentials",
    "client_id": CONFIG["client_id"],
    "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    "client_assertion": open(CONFIG["assertion_file"], encoding="utf-8").read().strip(),
    "scope": resource.rstrip("/") + "/.default",
}}
url = CONFIG["authority"] + "/" + tenant + "/oauth2/v2.0/token"
answer = requests.post(url, data=form, verify=CONFIG["ca"], timeout=30)
body = answer.json()
if answer.status_code != 200:
    fail(body.get("error_description", "").split(" Trace ID")[0] or "token request failed")
expires_on = int(time.time()) + int(body["expires_in"])  # what MSAL computes from expires_in
result = {{
    "tokenType": "Bearer",
    "accessToken": body["access_token"],
    "expires_on": expires_on,
    "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
    "tenant": tenant,
}}
if "--tenant" not in options:
    result["subscription"] = CONFIG["subscription"]
sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2, sort_keys=True, separators=(",", ": ")) + "\n")
'''


@dataclass(frozen=True)
class AzCli:
    directory: Path  # put it first on PATH
    log: Path

    def calls(self) -> list[list[str]]:
        if not self.log.exists():
            return []
        return [json.loads(line)["argv"] for line in self.log.read_text().splitlines() if line]

    def resources(self) -> list[str]:
        """The audience of each call (`--resource`), in order."""
        return [dict(zip(argv[2::2], argv[3::2], strict=False)).get("--resource", "") for argv in self.calls()]


def install(directory: Path, platform: Platform, *, logged_in: bool = True) -> AzCli:
    directory.mkdir(parents=True, exist_ok=True)
    env = platform.env()
    config: dict[str, Any] = {
        "log": str(directory / "az-calls.jsonl"),
        "logged_in": logged_in,
        "authority": env["AZURE_AUTHORITY_HOST"].rstrip("/"),
        "tenant": env["AZURE_TENANT_ID"],
        "client_id": env["AZURE_CLIENT_ID"],
        "assertion_file": env["AZURE_FEDERATED_TOKEN_FILE"],
        "subscription": env["AZURE_SUBSCRIPTION_ID"],
        "ca": str(platform.ca_path),
        "arm": "https://management.core.windows.net/",  # the CLI's default resource (active_directory_resource_id)
    }
    script = directory / "az"
    script.write_text(SCRIPT.format(python=sys.executable, config=json.dumps(config)))
    script.chmod(0o755)
    return AzCli(directory, directory / "az-calls.jsonl")
