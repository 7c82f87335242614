"""How many namespaces a pool of identities holds before CRC-32 sharding overflows one of them.

Namespaces hash uniformly onto k identities, so one identity's count is Binomial(n, 1/k). The report
uses the union bound of the exact per-identity tails (conservative, so a "safe" count is never
overstated); `overflow_exact` (the multinomial) exists so the tests can check how tight the bound is.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

OVERFLOW_BUDGET = 0.01  # "safe" = at most 1% chance that CRC-32 sharding overflows any identity


def binomial_pmf(n: int, p: float, j: int) -> float:
    """P(Binomial(n, p) = j), in logs so that large n does not underflow the intermediate terms."""
    if p >= 1.0:
        return float(j == n)
    log_comb = math.lgamma(n + 1) - math.lgamma(j + 1) - math.lgamma(n - j + 1)
    return math.exp(log_comb + j * math.log(p) + (n - j) * math.log1p(-p))


def binomial_tail_above(n: int, p: float, c: int) -> float:
    """P(Binomial(n, p) > c), exactly: 1 minus the first c+1 terms (c is at most the FIC limit)."""
    if c >= n:
        return 0.0
    if c < 0:
        return 1.0
    return max(0.0, 1.0 - sum(binomial_pmf(n, p, j) for j in range(c + 1)))


def overflow_upper_bound(n: int, caps: Sequence[int]) -> float:
    """P(some identity gets more namespaces than its cap) for n uniformly hashed namespaces, bounded above
    by the sum of the per-identity exact binomial tails (union bound: tight when the result is small,
    and conservative always, so a "safe" count is never overstated)."""
    k = len(caps)
    return min(1.0, sum(m * binomial_tail_above(n, 1.0 / k, c) for c, m in Counter(caps).items()))


def overflow_exact(n: int, caps: Sequence[int]) -> float:
    """The exact multinomial probability, by conditioning on one identity at a time: with fits_m(r) the
    chance that r namespaces spread over the first m identities all fit,
    fits_m(r) = sum_j Bin(r, 1/m)(j) * fits_{m-1}(r - j), j <= cap_m.  O(k * n * cap): the tests use it
    to check the bound the report uses."""
    fits = [1.0] + [0.0] * n  # zero identities hold zero namespaces
    for m, cap in enumerate(caps, start=1):
        fits = [sum(binomial_pmf(r, 1.0 / m, j) * fits[r - j] for j in range(min(cap, r) + 1)) for r in range(n + 1)]
    return max(0.0, 1.0 - fits[n])


def safe_namespace_count(caps: Sequence[int], budget: float = OVERFLOW_BUDGET) -> int:
    """The largest n with P(overflow) <= budget (the bound grows with n, so binary search)."""
    lo, hi = 0, sum(caps)
    if not caps or overflow_upper_bound(0, caps) > budget:
        return 0
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if overflow_upper_bound(mid, caps) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo


def pool_size_needed(n: int, caps: Sequence[int], limit: int, budget: float = OVERFLOW_BUDGET) -> int | None:
    """The smallest pool (today's identities first, then fresh ones with no unmanaged FICs) whose safe count
    holds n namespaces."""
    smallest = max(1, -(-n // max(limit, 1)))  # fewer identities cannot even hold n
    for size in range(smallest, max(len(caps), 4 * n // max(limit, 1) + 64) + 1):
        pool_caps = [*caps[:size], *[limit] * max(0, size - len(caps))]
        if overflow_upper_bound(n, pool_caps) <= budget:
            return size
    return None
