"""The Azure built-in roles keyvault-sync's identity holds, in one place: the role-assignment command prints
them, the job names them when a vault answers 403, and the docs' test checks the README says the same.

The seed vault is the one to fence in: every secret there is readable by whoever holds Secrets User on the
vault, and the allowlist (a ConfigMap) is not a permission boundary. So the seed grants are per secret
(scope <vault id>/secrets/<name>), plus Reader on the vault, which lists names and metadata, never a value
(the job lists the vault and each allowlisted secret's versions before it reads one).
"""

from __future__ import annotations

SEED_VAULT_ROLE = "Key Vault Reader"  # vault scope: list secrets and versions (readMetadata), no values
SEED_SECRET_ROLE = "Key Vault Secrets User"  # per allowlisted secret: getSecret on that secret only
TARGET_VAULT_ROLE = "Key Vault Secrets Officer"  # the cluster vault: set, update, delete (prune), recover

SEED_NEEDS = f"{SEED_VAULT_ROLE} on this vault and {SEED_SECRET_ROLE} on each allowlisted secret"
TARGET_NEEDS = f"the {TARGET_VAULT_ROLE} role on this vault"
