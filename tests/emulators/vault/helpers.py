"""Clients for the tests of the platform's OpenBao: hvac (unmodified, as the jobs use it) and raw requests for
wire details, both through `VAULT_ADDR` (the fault proxy) with the platform's CA."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import hvac
import requests

PATH = "coder-cli-session-token"
ACL_DENIED = ["1 error occurred:\n\t* permission denied\n\n"]  # NOTES §3.3: a valid token the ACL refuses
BAD_TOKEN = ["permission denied"]  # NOTES §3.3: a missing, unknown, expired or revoked token


def new_client(token: str | None = None) -> hvac.Client:
    return hvac.Client(url=os.environ["VAULT_ADDR"], verify=os.environ["REQUESTS_CA_BUNDLE"], token=token)


def env_jwt() -> str:
    return Path(os.environ["CWJ_VAULT_JWT_FILE"]).read_text()


def login(role: str | None = None, jwt_text: str | None = None) -> hvac.Client:
    client = new_client()
    client.auth.kubernetes.login(role or os.environ["CWJ_VAULT_ROLE"], jwt_text or env_jwt())
    return client


def raw(method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(
        method,
        os.environ["VAULT_ADDR"] + path,
        headers={**headers, **kwargs.pop("headers", {})},
        verify=os.environ["REQUESTS_CA_BUNDLE"],
        timeout=10,
        **kwargs,
    )


def scoped_token(root: hvac.Client, name: str, hcl: str, ttl: str = "1h") -> hvac.Client:
    root.sys.create_or_update_acl_policy(name, hcl)
    return new_client(root.auth.token.create(policies=[name], ttl=ttl)["auth"]["client_token"])
