"""Decoding a request body the way coderd's httpapi.Read does: json.Decoder into a Go struct (the error
texts Coder puts in `detail`), including codersdk's allow-list entries.

Sources: shared/api-specs/coder/NOTES.md (quoted [NOTES §n]); allow-list parsing: codersdk/allowlist.go
@1fe2126b (errors surface while decoding the body).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

# codersdk.RBACResource @00bbef6b without `*` (swagger-subset.json): the allow-list's valid types.
RBAC_RESOURCES = frozenset(
    """ai_gateway_key ai_model_price ai_provider ai_seat aibridge_interception api_key assign_org_role assign_role
    audit_log boundary_log boundary_usage chat chat_automation chat_model_config chat_project chat_project_memory
    connection_log crypto_key debug_info deployment_config deployment_stats file group group_member idpsync_settings
    inbox_notification license mcp_server_config notification_message notification_preference notification_template
    oauth2_app oauth2_app_code_token oauth2_app_secret organization organization_member organization_skill
    prebuilt_workspace provisioner_daemon provisioner_jobs replicas system tailnet_coordinator template usage_event
    user user_secret user_skill webpush_subscription workspace workspace_agent_devcontainers
    workspace_agent_resource_monitor workspace_build_orchestration workspace_dormant workspace_proxy""".split()  # noqa: SIM905
)


class DecodeError(Exception):
    """The text encoding/json (or a type's UnmarshalJSON) would return; Coder puts it in `detail`."""


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {value}"
    return "string" if isinstance(value, str) else "array" if isinstance(value, list) else "object"


def _allow_entry(raw: Any, form: str = "object") -> tuple[str, str]:
    """codersdk.APIAllowListTarget.UnmarshalJSON: the object-form release line takes an object or a `type:id`
    string; the string-form line (its UnmarshalJSON does `json.Unmarshal(b, &s)` into a string) only a string."""
    if form == "string" and not isinstance(raw, str):
        raise DecodeError(f"json: cannot unmarshal {_json_kind(raw).split()[0]} into Go value of type string")
    if isinstance(raw, dict) and all(isinstance(raw.get(k, ""), str) for k in ("type", "id")):
        rtype, rid = raw.get("type", ""), raw.get("id", "")
        if rtype or rid:
            if not rtype or not rid:
                raise DecodeError("allow_list entry must include both type and id")
            return _allow_values(rtype, rid)
    if raw is not None and not isinstance(raw, str):
        raise DecodeError("invalid allow_list entry: expected object with type/id or string")
    legacy = raw or ""
    parts = legacy.strip().split(":", 1)
    if len(parts) != 2 or not parts[0] or not parts[1]:
        raise DecodeError(f'invalid allow_list entry "{legacy}": want <type>:<id>')
    return _allow_values(parts[0], parts[1])


def _allow_values(rtype: str, rid: str) -> tuple[str, str]:
    rtype, rid = rtype.strip(), rid.strip()
    if not rtype or not rid:
        raise DecodeError("allow_list entry must include non-empty type and id")
    if rtype != "*" and rtype not in RBAC_RESOURCES:
        raise DecodeError(f'unknown resource type "{rtype}"')
    if rid != "*":
        try:
            uuid.UUID(rid)
        except ValueError:
            raise DecodeError(f'invalid {rtype} ID (must be UUID): "{rid}"') from None
    return rtype, rid


def decode_body(
    body: bytes, struct: str, fields: dict[str, tuple[str, str]], allow_list_form: str = "object"
) -> dict[str, Any]:
    """json.Decoder.Decode into a Go struct: type errors name the field; unknown keys are ignored;
    keys match case-insensitively; `null` leaves the zero value."""
    if not body.strip():
        raise DecodeError("EOF")
    try:
        data = json.loads(body)
    except ValueError as exc:
        char = body.decode(errors="replace")[exc.pos : exc.pos + 1] if isinstance(exc, json.JSONDecodeError) else ""
        raise DecodeError(f"invalid character {char!r} looking for beginning of value") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DecodeError(
            f"json: cannot unmarshal {_json_kind(data).split()[0]} into Go value of type codersdk.{struct}"
        )
    out: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = raw_key if raw_key in fields else raw_key.lower()
        if key not in fields or value is None:
            continue
        kind, go_type = fields[key]
        out[key] = _decode_field(
            value,
            kind,
            f"json: cannot unmarshal {{}} into Go struct field {struct}.{key} of type {go_type}",
            allow_list_form,
        )
    return out


def _decode_field(value: Any, kind: str, template: str, allow_list_form: str = "object") -> Any:
    def bad(v: Any) -> DecodeError:
        return DecodeError(template.format(_json_kind(v)))

    if kind == "string" and isinstance(value, str):
        return value
    if kind == "bool" and isinstance(value, bool):
        return value
    if kind == "int64" and isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63:
        return value
    if kind in ("strings", "uuids", "allow_list") and isinstance(value, list):
        if kind == "allow_list":
            return [_allow_entry(item, allow_list_form) for item in value]
        for item in value:
            if not isinstance(item, str):
                raise bad(item)
            if kind == "uuids":
                try:
                    uuid.UUID(item)
                except ValueError:
                    raise DecodeError(f"invalid UUID length: {len(item)}") from None
        return list(value)
    raise bad(value)
