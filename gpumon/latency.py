"""Per-window latency summaries: nearest-rank percentiles plus a mergeable log histogram.

A window's latencies are sorted (one C call) and its percentiles read off by rank, which is
cheaper and more honest than an approximate sketch; the histogram (8 buckets per octave, about
9% wide) is what lets `sweep` combine windows into whole-run percentiles. The worker builds it
from the sorted list by bisection (`sorted_histogram`): its cost grows with the buckets a window
spans, not with its ops.

The sort is the sampler's one cost that grows with ops, and the sampler holds the GIL while it
runs, so a worker thread finishing its op waits for it: 10,000 op times took 1.1 ms to sort, a
1.1% stall of a pool of 10 us ops (docs/performance.md). Above `SELECTION_LIMIT` op times in a
window the worker therefore sorts an evenly spaced selection (`select`) and scales the
histogram's counts back to every op (`scaled`); the op count and the maximum stay exact.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping

BUCKETS_PER_OCTAVE = 8
# Op times per window read in full; above it, every k-th (k = ceil(n / limit)). 2,048 sorted
# values put a p99 within about ±0.2 percentile points of the whole window's.
SELECTION_LIMIT = 2048


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


def select(values: list[float], limit: int, offset: int = 0) -> tuple[list[float], int]:
    """(values, 1) when there are at most `limit`, else (every k-th value, k) with the smallest k
    that fits, starting at `offset % k` so that successive windows read different ops (a
    fixed start would see only the ops in one phase of a periodic pattern)."""
    n = len(values)
    if n <= limit:
        return values, 1
    k = -(-n // limit)
    return values[offset % k :: k], k


def scaled(hist: Mapping[int, int], total: int) -> dict[int, int]:
    """`hist` with its counts scaled to sum to exactly `total` (largest remainders get the
    rounding): the histogram of a selection standing for every op it was drawn from."""
    have = sum(hist.values())
    if have == 0 or have == total:
        return dict(hist)
    exact = {b: c * total / have for b, c in hist.items()}
    out = {b: int(x) for b, x in exact.items()}
    short = total - sum(out.values())
    for b in sorted(exact, key=lambda b: (out[b] - exact[b], b))[:short]:
        out[b] += 1
    return {b: c for b, c in out.items() if c}


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
