"""Shard selection shared with the Coder templates: which pool identity holds a namespace's FIC.

The pool is the ordered JSON array AZURE_CLIENT_IDS_JSON; its order is part of the contract. Two rules, both
over the namespace's UTF-8 bytes, modulo the pool size:

- ``crc32`` (the default): CRC-32/ISO-HDLC, the same as Go's ``crc32.ChecksumIEEE``.
  ``zlib.crc32(ns) % len(pool)``.
- ``sha1``: the first 8 hex digits (32 bits) of the SHA-1 digest, read as an unsigned integer.
  ``int(sha1(ns).hexdigest()[:8], 16) % len(pool)``.

Why ``sha1`` exists: a Coder template must annotate the workspace ServiceAccount with the client id the job
chose, and Terraform has no ``crc32`` function, so a template cannot compute the first rule with built-ins. The
second is exactly ``parseint(substr(sha1(ns), 0, 8), 16) % length(pool)`` in Terraform
(examples/terraform/workspace-identity/ ships that module; a test evaluates it with a real terraform and
compares it with this function). The job and the templates must use the same rule (``--shard-hash``): the
two rules put most namespaces on different identities.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence

SHARD_RULES = ("crc32", "sha1")


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def sha1_32(data: bytes) -> int:
    """The first 32 bits of SHA-1 (big-endian), as Terraform's parseint(substr(sha1(s), 0, 8), 16) reads them."""
    return int.from_bytes(hashlib.sha1(data, usedforsecurity=False).digest()[:4], "big")


def shard_index(namespace: str, pool_size: int, rule: str = "crc32") -> int:
    if rule not in SHARD_RULES:
        raise ValueError(f"unknown shard rule {rule!r}; expected one of {', '.join(SHARD_RULES)}")
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    data = namespace.encode("utf-8")
    return (crc32(data) if rule == "crc32" else sha1_32(data)) % pool_size


def shard_of(namespace: str, pool: Sequence[str], rule: str = "crc32") -> str:
    return pool[shard_index(namespace, len(pool), rule)]
