"""fic-reconcile's shard selection (jobs/fic_reconcile/shard.py): CRC-32/ISO-HDLC of the namespace, modulo the pool."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.shard import crc32, shard_index, shard_of

# ---- CRC-32 / shard ------------------------------------------------------------------------------------


def test_crc32_check_value_of_the_iso_hdlc_standard() -> None:
    # The CRC catalogue's check value for CRC-32/ISO-HDLC, the same as Go's crc32.ChecksumIEEE.
    assert crc32(b"123456789") == 0xCBF43926


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0x00000000),
        (b"a", 0xE8B7BE43),
        (b"abc", 0x352441C2),
        (b"The quick brown fox jumps over the lazy dog", 0x414FA339),
    ],
)
def test_crc32_known_vectors(data: bytes, expected: int) -> None:
    assert crc32(data) == expected


def test_shard_uses_utf8_bytes_and_pool_order() -> None:
    pool = ["c0", "c1", "c2"]
    ns = "ameide-ws-ünïcode"
    assert shard_index(ns, 3) == zlib.crc32(ns.encode("utf-8")) % 3
    assert shard_of(ns, pool) == pool[shard_index(ns, 3)]
    assert shard_of(ns, list(reversed(pool))) == list(reversed(pool))[shard_index(ns, 3)]


@given(st.text(min_size=1, max_size=63), st.integers(min_value=1, max_value=64))
def test_shard_index_is_in_range(ns: str, size: int) -> None:
    assert 0 <= shard_index(ns, size) < size


def test_shard_rejects_empty_pool() -> None:
    with pytest.raises(ValueError, match="pool_size"):
        shard_index("x", 0)
