"""The actions a coder-token-mint plan holds, in the order apply runs them. Each describes itself for the plan
table; none carries a secret (the token value exists only in apply, once minted)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jobs.coder_token_mint.guards import human


@dataclass(frozen=True)
class MintToken:
    user: str
    name: str
    lifetime: timedelta
    scopes: tuple[str, ...]
    allow: tuple[str, ...]
    reason: str
    user_id: str = ""  # the new token's record must name this user (not shown)
    kind: str = "mint"

    def describe(self) -> dict[str, str]:
        scopes = ",".join(self.scopes) or "(server default)"
        allow = ",".join(self.allow) or "(all)"
        return {
            "kind": self.kind,
            "target": f"{self.user}/{self.name}",
            "reason": self.reason,
            "params": f"lifetime {human(self.lifetime)}; scopes {scopes}; allow {allow}",
        }

    def document(self) -> dict[str, Any]:
        """Typed: an empty scopes list is the server's default scope, an empty allow list allows all."""
        return {
            "target": f"{self.user}/{self.name}",
            "reason": self.reason,
            "user": self.user,
            "token_name": self.name,
            "lifetime_seconds": int(self.lifetime.total_seconds()),
            "scopes": list(self.scopes),
            "allow": list(self.allow),
        }


@dataclass(frozen=True)
class WriteEntry:
    mount: str
    path: str
    cas: int
    user: str  # the entry's `user` field
    kind: str = "write-kv"

    def describe(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "target": f"{self.mount}/data/{self.path}",
            "reason": "store the token just minted",
            "params": f"check-and-set on version {self.cas}",
        }

    def document(self) -> dict[str, Any]:
        return {
            "target": f"{self.mount}/data/{self.path}",
            "reason": "store the token just minted",
            "check_and_set": self.cas,
            "changes": [{"field": "version", "before": self.cas, "after": self.cas + 1}],
        }


@dataclass(frozen=True)
class RevokeToken:
    user: str
    token_id: str
    token_name: str
    reason: str
    kind: str = "revoke"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": f"{self.user}/{self.token_name} ({self.token_id})", "reason": self.reason}

    def document(self) -> dict[str, Any]:
        target = f"{self.user}/{self.token_name} ({self.token_id})"
        return {"target": target, "reason": self.reason, "user": self.user, "token_id": self.token_id}


@dataclass(frozen=True)
class ClearEntry:
    """--compromised only, and applied only when no successor got stored: overwrite the entry whose token was
    just revoked, so Vault (and External Secrets after it) does not keep serving a revoked token as if current."""

    mount: str
    path: str
    cas: int
    user: str
    revoked_id: str  # the token id the entry held
    kind: str = "clear-kv"

    def describe(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "target": f"{self.mount}/data/{self.path}",
            "reason": f"only if no successor is stored: the entry must not keep serving revoked {self.revoked_id}",
            "params": f"check-and-set on version {self.cas}; token emptied, status revoked",
        }

    def document(self) -> dict[str, Any]:
        return {
            "target": f"{self.mount}/data/{self.path}",
            "reason": f"only if no successor is stored: the entry must not keep serving revoked {self.revoked_id}",
            "check_and_set": self.cas,
            "revoked_token_id": self.revoked_id,
            "changes": [
                {"field": "version", "before": self.cas, "after": self.cas + 1},
                {"field": "status", "before": None, "after": "revoked"},
            ],
        }


@dataclass(frozen=True)
class Notify:
    """--compromised with --webhook-url: tell people what the compromise response did, whatever its outcome."""

    host: str  # the webhook's host only: its URL is a credential
    kind: str = "notify"

    def describe(self) -> dict[str, str]:
        return {"kind": self.kind, "target": self.host, "reason": "compromise response: report the outcome"}
