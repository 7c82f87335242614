"""What keyvault-sync knows about a secret, without the SDK: the plan and `--help` import this, not
lib/clients/keyvault.py (azure-core and the Key Vault SDK cost ~45 ms a process start need not pay)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lib.redact import scrub


@dataclass(frozen=True)
class Props:
    """What keyvault-sync copies besides the value. Times are Unix seconds (the wire's own unit)."""

    content_type: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    enabled: bool = True
    expires_on: int | None = None
    not_before: int | None = None


@dataclass(frozen=True)
class SecretMeta:
    """One secret (or version) as a list call shows it: never a value."""

    name: str
    props: Props
    version: str | None = None  # None in a secrets list (the id has no version)
    created: int | None = None
    updated: int | None = None  # the version's last change (a new version, or a PATCH of its properties)


@dataclass(frozen=True)
class SecretValue:
    meta: SecretMeta
    value: str = field(repr=False)


class KeyVaultError(Exception):
    """A failed call, as one line: vault, operation, status, codes and the service's message."""

    def __init__(self, text: str, status: int | None = None, code: str = "", inner: str = "", vault: str = "") -> None:
        super().__init__(scrub(text))
        self.status, self.code, self.inner = status, code, inner
        self.vault = vault  # the client's label ("seed", "target") when a vault answered
