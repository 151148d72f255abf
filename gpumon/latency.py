"""Per-window latency summaries: exact percentiles plus a mergeable log histogram.

A window holds at most a few thousand ops, so sorting its latencies is cheaper and more honest
than an approximate sketch; the histogram (8 buckets per octave, about 9% wide) is what lets
`sweep` combine windows into whole-run percentiles.
"""

from __future__ import annotations

import math
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
