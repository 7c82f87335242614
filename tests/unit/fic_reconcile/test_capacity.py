"""fic-reconcile's capacity math, checked against an exact computation and a brute-force CRC-32 simulation."""

from __future__ import annotations

import random
import string
from collections import Counter

from jobs.fic_reconcile.capacity import (
    binomial_tail_above,
    overflow_exact,
    overflow_upper_bound,
    pool_size_needed,
    safe_namespace_count,
)
from jobs.fic_reconcile.shard import shard_index


def test_binomial_tail_matches_the_exact_sum() -> None:
    from fractions import Fraction
    from math import comb

    for n, k, c in [(10, 3, 4), (60, 3, 20), (45, 2, 20), (5, 1, 4), (100, 7, 20)]:
        p = Fraction(1, k)
        exact = sum(comb(n, j) * p**j * (1 - p) ** (n - j) for j in range(c + 1, n + 1))
        assert abs(binomial_tail_above(n, 1 / k, c) - float(exact)) < 1e-12


def simulated_overflow(n: int, caps: list[int], trials: int, seed: int) -> float:
    """Draw n random namespace-like names, shard them with the real CRC-32, count overflowing trials."""
    rnd = random.Random(seed)
    alphabet = string.ascii_lowercase + string.digits
    overflows = 0
    for _ in range(trials):
        load = Counter(shard_index("ameide-ws-" + "".join(rnd.choices(alphabet, k=8)), len(caps)) for _ in range(n))
        overflows += any(load[i] > cap for i, cap in enumerate(caps))
    return overflows / trials


def test_exact_overflow_probability_matches_a_brute_force_crc32_simulation() -> None:
    for n, caps in [(40, [20, 20, 20]), (30, [12, 12, 10]), (12, [5, 5])]:
        exact = overflow_exact(n, caps)
        trials = 8000
        simulated = simulated_overflow(n, caps, trials, seed=20240611)
        sigma = (max(exact * (1 - exact), 1e-4) / trials) ** 0.5
        assert abs(simulated - exact) < 4 * sigma + 1e-3, (n, caps, exact, simulated)


def test_the_union_bound_is_an_upper_bound_and_tight_near_one_percent() -> None:
    for n, caps in [(37, [20, 20, 20]), (40, [20, 20, 20]), (30, [12, 12, 10]), (60, [20] * 5)]:
        exact, bound = overflow_exact(n, caps), overflow_upper_bound(n, caps)
        assert bound >= exact - 1e-12
        if exact < 0.05:
            assert bound - exact < 0.1 * exact + 1e-9


def test_safe_count_is_the_largest_count_within_one_percent() -> None:
    caps = [20, 20, 20]
    safe = safe_namespace_count(caps)
    assert overflow_upper_bound(safe, caps) <= 0.01 < overflow_upper_bound(safe + 1, caps)
    assert overflow_exact(safe, caps) <= 0.01
    assert 30 < safe < 60  # sanity: well below the naive 3 x 20


def test_pool_size_needed_is_the_smallest_safe_pool() -> None:
    caps = [20, 20, 20]
    size = pool_size_needed(50, caps, 20)
    assert size is not None
    assert overflow_upper_bound(50, [20] * size) <= 0.01 < overflow_upper_bound(50, [20] * (size - 1))
    assert pool_size_needed(0, caps, 20) == 1
