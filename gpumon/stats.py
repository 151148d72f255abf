"""Small, exact statistics for crash counts: intervals, misses, and two-sample tests.

Crash rates in gpumon come from a handful of runs ("2 of 3"), where the normal approximation
is useless; these are the standard small-sample answers, in closed form, no SciPy needed.
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054  # two-sided 95%


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (95% by default); (0, 1) for n = 0."""
    if n <= 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def miss_probability(rate: float, runs: int) -> float:
    """Chance that `runs` independent runs all come out clean when each fails at `rate`."""
    return (1.0 - rate) ** runs


def runs_to_see(rate: float, confidence: float = 0.95) -> int | None:
    """Runs needed to see at least one failure with `confidence`, at `rate`; None if 0."""
    if rate <= 0:
        return None
    if rate >= 1:
        return 1
    return math.ceil(math.log(1 - confidence) / math.log(1 - rate))


def fisher_exact(a: int, b: int, c: int, d: int) -> float:
    """Two-sided p-value of Fisher's exact test for the table [[a, b], [c, d]] (e.g. crashed /
    clean runs of two sessions): the sum of the probabilities of every table with the same
    margins that is no more likely than the one observed."""
    row1, row2, col1 = a + b, c + d, a + c
    n = row1 + row2

    def prob(x: int) -> float:
        return math.comb(row1, x) * math.comb(row2, col1 - x) / math.comb(n, col1)

    observed = prob(a)
    lo, hi = max(0, col1 - row2), min(row1, col1)
    total = sum(p for x in range(lo, hi + 1) if (p := prob(x)) <= observed * (1 + 1e-7))
    return min(1.0, total)
