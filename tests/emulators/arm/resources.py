"""ARM's resource shapes for Microsoft.ManagedIdentity (ids, JSON bodies) and list paging with `nextLink`.

Sources: shared/api-specs/azure/msi/2024-11-30 (shapes, examples) and NOTES.md §1.5 (paging).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.emulators.arm.validation import API_VERSION, bad_request, query_param
from tests.emulators.core import Request, Response

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
FIC_TYPE = IDENTITY_TYPE + "/federatedIdentityCredentials"


def identity_id(sub: str, ident: dict[str, Any]) -> str:
    return f"/subscriptions/{sub}/resourcegroups/{ident['resource_group']}/providers/{IDENTITY_TYPE}/{ident['name']}"


def identity_json(sub: str, ident: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": identity_id(sub, ident),
        "name": ident["name"],
        "type": IDENTITY_TYPE,
        "location": ident["location"],
        "tags": dict(ident["tags"]),
        "properties": {
            "tenantId": ident["tenant_id"],
            "principalId": ident["principal_id"],
            "clientId": ident["client_id"],
            "isolationScope": ident["isolation_scope"],
        },
    }


def fic_json(sub: str, ident: dict[str, Any], fic: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"{identity_id(sub, ident)}/federatedIdentityCredentials/{fic['name']}",
        "name": fic["name"],
        "type": FIC_TYPE,
        "properties": {"issuer": fic["issuer"], "subject": fic["subject"], "audiences": list(fic["audiences"])},
    }


def page(req: Request, items: list[dict[str, Any]], default_size: int, api_version: str = API_VERSION) -> Response:
    """One page and, when more remain, an absolute `nextLink` back to this emulator (NOTES §1.5)."""
    top_text, token = query_param(req, "$top"), query_param(req, "$skiptoken")
    if top_text is not None and not (top_text.isdigit() and int(top_text) >= 1):
        raise bad_request(f"The value '{top_text}' of the query parameter '$top' is invalid; expected an integer >= 1.")
    size = int(top_text) if top_text is not None else default_size
    start = decode_skiptoken(token) if token is not None else 0
    body: dict[str, Any] = {"value": items[start : start + size]}
    if start + size < len(items):
        query = f"api-version={api_version}" + (f"&$top={size}" if top_text else "")
        body["nextLink"] = f"{req.base_url}{req.path}?{query}&$skiptoken={encode_skiptoken(start + size)}"
    return Response(200, body)


def encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def decode_skiptoken(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        prefix, _, offset = text.partition(":")
        if prefix == "offset" and offset.isdigit():
            return int(offset)
    except (ValueError, UnicodeDecodeError):
        pass
    raise bad_request(f"The skip token '{token}' is invalid.")  # [unconfirmed] text
