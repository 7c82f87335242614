"""With nothing but the env file, the real SDKs work unmodified against the emulators (issue 2's contract):
a separate Python process gets exactly the env file's variables and drives every SDK through them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.emulators.platform import Platform, read_env_file

SCRIPT = r"""
import json, os, uuid
import hvac, requests
from azure.identity import WorkloadIdentityCredential
from azure.keyvault.secrets import SecretClient
from azure.mgmt.containerservice import ContainerServiceClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.msi.models import FederatedIdentityCredential
from kubernetes import client, config

env = os.environ
credential = WorkloadIdentityCredential()  # AZURE_* exactly as the webhook injects them
msi = ManagedServiceIdentityClient(credential, env["AZURE_SUBSCRIPTION_ID"], base_url=env["CWJ_ARM_ENDPOINT"])
rg = env["CWJ_IDENTITY_RESOURCE_GROUP"]
identities = list(msi.user_assigned_identities.list_by_resource_group(rg))
pool = json.loads(env["AZURE_CLIENT_IDS_JSON"])
assert [i.client_id for i in identities if i.client_id in pool] != [], "pool identities listed"
name = identities[0].name
fic = FederatedIdentityCredential(issuer=env["CWJ_OIDC_ISSUER"], subject="system:serviceaccount:x:workspace",
                                  audiences=["api://AzureADTokenExchange"])
msi.federated_identity_credentials.create_or_update(rg, name, "contract-check", fic)
assert "contract-check" in [f.name for f in msi.federated_identity_credentials.list(rg, name)]
msi.federated_identity_credentials.delete(rg, name, "contract-check")
assert "contract-check" not in [f.name for f in msi.federated_identity_credentials.list(rg, name)]

# CWJ_AKS_CLUSTER_ID: the managed cluster whose identity bindings fic-reconcile manages (issue 20)
parts = env["CWJ_AKS_CLUSTER_ID"].split("/")
assert parts[1] == "subscriptions" and parts[2] == env["AZURE_SUBSCRIPTION_ID"] and parts[6:8] == [
    "Microsoft.ContainerService", "managedClusters"]
aks = ContainerServiceClient(credential, parts[2], base_url=env["CWJ_ARM_ENDPOINT"], polling_interval=0.2)
identity_id = identities[0].id
binding = {"properties": {"managedIdentity": {"resourceId": identity_id}}}
done = aks.identity_bindings.begin_create_or_update(parts[4], parts[8], "contractcheck", binding).result(timeout=60)
assert done.properties.provisioning_state == "Succeeded"
assert "contractcheck" in [b.name for b in aks.identity_bindings.list_by_managed_cluster(parts[4], parts[8])]
aks.identity_bindings.begin_delete(parts[4], parts[8], "contractcheck").result(timeout=60)

verify = env["CWJ_KEYVAULT_VERIFY_CHALLENGE_RESOURCE"] != "false"
kv = SecretClient(env["CWJ_TARGET_VAULT_URL"], credential, verify_challenge_resource=verify)
value = "contract-" + uuid.uuid4().hex
kv.set_secret("contract-check", value)
assert kv.get_secret("contract-check").value == value
assert "contract-check" in [p.name for p in kv.list_properties_of_secrets()]

assert env["VAULT_ADDR"].startswith("https://")  # TLS with the platform's CA (REQUESTS_CA_BUNDLE), nothing else
assert requests.get(env["VAULT_ADDR"] + "/v1/sys/health", timeout=10).json()["version"] == "2.7.2"  # OpenBao
vault = hvac.Client(url=env["VAULT_ADDR"])
vault.auth.kubernetes.login(env["CWJ_VAULT_ROLE"], open(env["CWJ_VAULT_JWT_FILE"]).read())
vault.secrets.kv.v2.create_or_update_secret("coder-cli-session-token", secret={"token": "t"}, cas=0)
read = vault.secrets.kv.v2.read_secret_version("coder-cli-session-token", raise_on_deleted_version=True)
assert read["data"]["data"] == {"token": "t"}

token = open(env["CWJ_BOOTSTRAP_TOKEN_FILE"]).read().strip()
me = requests.get(env["CODER_URL"] + "/api/v2/users/me", headers={"Coder-Session-Token": token}, timeout=10)
assert me.status_code == 200 and me.json()["username"] == "admin"

config.load_kube_config()
names = [n.metadata.name for n in client.CoreV1Api().list_namespace().items]
assert "kube-system" in names
print("contract-ok")
"""


def test_env_file_alone_drives_every_sdk(tmp_path: Path, platform: Platform) -> None:
    env_file = tmp_path / "platform.env"
    platform.write_env_file(env_file)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **read_env_file(env_file)}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "contract-ok"
