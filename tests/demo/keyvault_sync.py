"""keyvault-sync in `make demo`: seed the seed vault through azure-keyvault-secrets, then dry-run, apply, apply
again, rotate one secret, and show the safety rules (refused overwrite, --adopt, prune, a bad allowlist)."""

from __future__ import annotations

import secrets
import time

from azure.keyvault.secrets import SecretClient

from tests.demo import Demo

ALLOWLIST = """\
# secrets the cluster vault carries; everything else in the seed vault stays there
- db-password
- source: github-app-key   # renamed on the way
  target: gh-app-key
- api-token                # already in the cluster vault, put there by hand with the same value
- legacy-token             # disabled in the seed vault: skipped with a warning
- ci-token                 # in the cluster vault by hand, with a different value
"""


def _clients(demo: Demo) -> tuple[SecretClient, SecretClient]:
    env, ca = demo.env, str(demo.platform.ca_path)
    credential = demo.platform.azure_credential()
    return tuple(  # type: ignore[return-value]
        SecretClient(url, credential, verify_challenge_resource=False, connection_verify=ca)
        for url in (env["CWJ_SOURCE_VAULT_URL"], env["CWJ_TARGET_VAULT_URL"])
    )


def run(demo: Demo) -> None:
    source, target = _clients(demo)
    value = {name: secrets.token_urlsafe(24) for name in ("db", "gh", "api", "legacy", "ci", "theirs", "rotated")}
    source.set_secret("db-password", value["db"], content_type="text/plain", tags={"owner": "platform"})
    source.set_secret("github-app-key", value["gh"], content_type="application/x-pem-file")
    source.set_secret("api-token", value["api"])
    source.set_secret("legacy-token", value["legacy"], enabled=False)
    source.set_secret("ci-token", value["ci"])
    source.set_secret("not-allowlisted", secrets.token_urlsafe(24))
    target.set_secret("api-token", value["api"], tags={"owner": "someone"})
    target.set_secret("ci-token", value["theirs"])
    path = demo.platform.state_dir / "keyvault-allowlist.yaml"
    path.write_text(ALLOWLIST)
    demo.say("keyvault-sync: 5 allowlisted secrets, 1 disabled, 2 already in the cluster vault by hand")
    print(ALLOWLIST.rstrip())
    args = ("--allowlist-file", str(path))

    demo.job("keyvault-sync", *args, "--dry-run", title="the plan: lists only, no value read, nothing written")
    demo.job("keyvault-sync", *args, expect=1, title="copies 2, adopts api-token (equal value), refuses ci-token")
    demo.job("keyvault-sync", *args, "--adopt", title="--adopt: ci-token is overwritten with the seed's value")
    demo.job("keyvault-sync", *args, title="again: nothing to do, no value read")

    time.sleep(1.1)  # a rotation happens later than the first version
    source.set_secret("db-password", value["rotated"], content_type="text/plain", tags={"owner": "platform"})
    demo.job("keyvault-sync", *args, title="db-password got a new seed version: exactly one read, one write")

    target.begin_delete_secret("gh-app-key").result()
    demo.job("keyvault-sync", *args, title="gh-app-key was soft-deleted in the cluster vault: recovered")

    path.write_text("- db-password\n- api-token\n- ci-token\n")
    demo.job("keyvault-sync", *args, title="gh-app-key left the allowlist: reported, not deleted")
    demo.job("keyvault-sync", *args, "--prune", title="--prune soft-deletes it (ours only)")

    bad = demo.platform.state_dir / "keyvault-allowlist-bad.yaml"
    bad.write_text("- db-password\n- source: ci-token\n  target: db-password\n- bad_name\n")
    demo.job("keyvault-sync", "--allowlist-file", str(bad), expect=2, title="a malformed allowlist: exit 2, no request")
    source.close()
    target.close()
