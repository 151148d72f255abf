"""Per-window latency summaries: exact percentiles plus a mergeable log histogram.

A window's latencies are sorted (one C call, ~25 ns per op) and its percentiles read off exactly,
which is cheaper and more honest than an approximate sketch; the histogram (8 buckets per
octave, about 9% wide) is what lets `sweep` combine windows into whole-run percentiles. The
worker builds it from the sorted list by bisection (`sorted_histogram`): its cost grows with the
buckets a window spans, not with its ops, so a pool of 10 us ops pays for it as little as one
of 10 ms ops.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping

BUCKETS_PER_OCTAVE = 8


def bucket_of(seconds: float) -> int:
    us = max(seconds * 1e6, 1e-3)
    return math.floor(math.log2(us) * BUCKETS_PER_OCTAVE)


def bucket_mid(bucket: int) -> float:
    """Geometric middle of a bucket, in seconds."""
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_OCTAVE) / 1e6


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted, non-empty list."""
    k = max(0, min(len(sorted_values) - 1, math.ceil(q / 100 * len(sorted_values)) - 1))
    return sorted_values[k]


def histogram(values: Iterable[float]) -> dict[int, int]:
    hist: dict[int, int] = {}
    for v in values:
        b = bucket_of(v)
        hist[b] = hist.get(b, 0) + 1
    return hist


def sorted_histogram(sorted_values: list[float]) -> dict[int, int]:
    """`histogram` of an already sorted list, bucket for bucket the same, in O(buckets x log n):
    bucket_of never decreases as values grow, so each bucket's end is one bisection away."""
    hist: dict[int, int] = {}
    lo, n = 0, len(sorted_values)
    while lo < n:
        b = bucket_of(sorted_values[lo])
        hi = bisect_right(sorted_values, b, lo, n, key=bucket_of)
        hist[b] = hi - lo
        lo = hi
    return hist


def merge(into: dict[int, int], other: Mapping[int, int]) -> dict[int, int]:
    for b, n in other.items():
        into[b] = into.get(b, 0) + n
    return into


def hist_percentile(hist: Mapping[int, int], q: float) -> float | None:
    total = sum(hist.values())
    if total == 0:
        return None
    rank = math.ceil(q / 100 * total)
    seen = 0
    for b in sorted(hist):
        seen += hist[b]
        if seen >= rank:
            return bucket_mid(b)
    return bucket_mid(max(hist))
