"""Shard selection shared with the Coder templates: CRC-32/ISO-HDLC (Go's crc32.ChecksumIEEE) of the
namespace's UTF-8 bytes, modulo the pool size. The pool's order is part of that contract."""

from __future__ import annotations

import zlib
from collections.abc import Sequence


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def shard_index(namespace: str, pool_size: int) -> int:
    if pool_size < 1:
        raise ValueError("pool_size must be at least 1")
    return crc32(namespace.encode("utf-8")) % pool_size


def shard_of(namespace: str, pool: Sequence[str]) -> str:
    return pool[shard_index(namespace, len(pool))]
