"""fic-reconcile's shard selection (jobs/fic_reconcile/shard.py): the crc32 rule (CRC-32/ISO-HDLC of the namespace)
and the sha1 rule (the first 32 bits of SHA-1, the one a Terraform template can compute), modulo the pool.

tests/unit/fic_reconcile/test_terraform_shard.py checks the sha1 rule against the shipped Terraform module."""

from __future__ import annotations

import hashlib
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from jobs.fic_reconcile.shard import SHARD_RULES, crc32, sha1_32, shard_index, shard_of

NAMESPACE = st.text(min_size=1, max_size=63)
POOL_SIZE = st.integers(min_value=1, max_value=64)
RULE = st.sampled_from(SHARD_RULES)

# ---- CRC-32 --------------------------------------------------------------------------------------------


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


def test_crc32_is_the_default_rule_and_unchanged() -> None:
    for ns in ("coder-ws-a", "ameide-ws-alice", "ws-ü"):
        for size in (1, 3, 7, 40):
            assert shard_index(ns, size) == shard_index(ns, size, "crc32") == zlib.crc32(ns.encode()) % size
    # Fixed values, so that a change of the default rule cannot pass unnoticed.
    assert [shard_index("coder-ws-a", n) for n in (3, 7, 40)] == [2, 3, 17]
    assert [shard_index("ameide-ws-alice", n) for n in (3, 7, 40)] == [2, 0, 29]


# ---- SHA-1 ---------------------------------------------------------------------------------------------

# The first 8 hex digits of SHA-1, computed outside Python with `printf %s <ns> | sha1sum` (coreutils); the
# empty string and "abc" are FIPS 180's own test vectors (da39a3ee5e6b..., a9993e364706...). The indices
# modulo 3, 7 and 40 were computed from those digits with bc.
SHA1_VECTORS = [
    ("coder-ws-a", "abe167cb", (0, 4, 27)),
    ("ameide-ws-alice", "3fc92a44", (2, 1, 4)),
    ("ws-ü", "ab8fe4c4", (0, 4, 28)),
    ("", "da39a3ee", (1, 4, 6)),
    ("abc", "a9993e36", (0, 0, 38)),
]


@pytest.mark.parametrize(("ns", "prefix", "indices"), SHA1_VECTORS)
def test_sha1_known_vectors(ns: str, prefix: str, indices: tuple[int, int, int]) -> None:
    assert sha1_32(ns.encode("utf-8")) == int(prefix, 16)
    if ns:
        assert tuple(shard_index(ns, n, "sha1") for n in (3, 7, 40)) == indices
        assert shard_of(ns, [f"c{i}" for i in range(40)], "sha1") == f"c{indices[2]}"


@given(NAMESPACE, POOL_SIZE)
def test_sha1_rule_is_the_terraform_expression_read_in_python(ns: str, size: int) -> None:
    # parseint(substr(sha1(ns), 0, 8), 16) % length(pool)
    assert shard_index(ns, size, "sha1") == int(hashlib.sha1(ns.encode("utf-8")).hexdigest()[:8], 16) % size


def test_the_two_rules_disagree_for_most_names() -> None:
    # Why the job and the templates must agree on --shard-hash: with 3 identities about 2/3 of the namespaces
    # land elsewhere under the other rule.
    names = [f"ameide-ws-user{i}" for i in range(3000)]
    moved = sum(shard_index(ns, 3, "crc32") != shard_index(ns, 3, "sha1") for ns in names)
    assert 0.6 < moved / len(names) < 0.73
    assert shard_index("coder-ws-a", 3, "crc32") == 2 != shard_index("coder-ws-a", 3, "sha1") == 0


# ---- both rules ----------------------------------------------------------------------------------------


@given(NAMESPACE, POOL_SIZE, RULE)
def test_shard_index_is_in_range(ns: str, size: int, rule: str) -> None:
    assert 0 <= shard_index(ns, size, rule) < size


@given(NAMESPACE, POOL_SIZE, RULE)
def test_shard_is_deterministic(ns: str, size: int, rule: str) -> None:
    # A fresh copy of the string, so no cached hash or identity can make two calls agree by accident.
    assert shard_index(ns, size, rule) == shard_index("".join(list(ns)), size, rule)


@given(NAMESPACE, POOL_SIZE, RULE)
def test_shard_of_picks_the_indexed_client_id(ns: str, size: int, rule: str) -> None:
    pool = [f"client-{i}" for i in range(size)]
    assert shard_of(ns, pool, rule) == pool[shard_index(ns, size, rule)]


@given(NAMESPACE, RULE)
def test_a_pool_of_one_takes_every_namespace(ns: str, rule: str) -> None:
    assert shard_index(ns, 1, rule) == 0


@pytest.mark.parametrize("rule", SHARD_RULES)
@pytest.mark.parametrize("size", [2, 3, 7, 16, 40])
def test_rules_spread_namespaces_evenly(rule: str, size: int) -> None:
    # Chi-square goodness of fit against the uniform distribution over `size` identities, for 20,000 names
    # shaped like real namespaces. With size-1 degrees of freedom the 99.99th percentile is below
    # df + 6*sqrt(2*df) + 10 for every df here, so a correct rule fails this about once in 10,000 runs (never,
    # since the names are fixed); a rule that ignored part of the name or skewed one bucket by 5% would fail.
    names = [f"ameide-ws-{user}-{i}" for i in range(4000) for user in ("alice", "bob", "carol", "dan", "eve")]
    counts = [0] * size
    for ns in names:
        counts[shard_index(ns, size, rule)] += 1
    expected = len(names) / size
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    df = size - 1
    assert chi2 < df + 6 * (2 * df) ** 0.5 + 10, (rule, size, counts)


@pytest.mark.parametrize("rule", SHARD_RULES)
def test_shard_rejects_empty_pool(rule: str) -> None:
    with pytest.raises(ValueError, match="pool_size"):
        shard_index("x", 0, rule)
    with pytest.raises(ValueError, match="pool_size"):
        shard_of("x", [], rule)


@pytest.mark.parametrize("rule", ["", "CRC32", "sha256", "md5", "crc-32"])
def test_unknown_rule_is_refused_by_name(rule: str) -> None:
    with pytest.raises(ValueError, match=r"unknown shard rule .*crc32, sha1"):
        shard_index("x", 3, rule)
    with pytest.raises(ValueError, match="unknown shard rule"):
        shard_of("x", ["a", "b"], rule)


def test_shard_rules_are_the_documented_two() -> None:
    assert SHARD_RULES == ("crc32", "sha1")
