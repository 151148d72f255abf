"""What a control key asks for, decided without a screen: pure functions, tested on their own.

The app turns their answers into commands (gpumon.control) or a message; nothing here draws
or talks to a pool.
"""

from __future__ import annotations

from collections.abc import Mapping

from gpumon.spec import DTYPES, MAX_SIZE, MAX_THREADS, MIN_SIZE, POLICIES, WORKLOADS


def clamp_threads(n: int) -> int:
    return min(max(n, 1), MAX_THREADS)


def next_policy(current: str, unavailable: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The policy after `current` in POLICIES that the backend can run, and the ones skipped
    on the way with their reasons ("shared: mlx 0.31.2 has no ..."). None: nothing else runs."""
    i = POLICIES.index(current) if current in POLICIES else -1
    skipped = []
    for step in range(1, len(POLICIES)):
        candidate = POLICIES[(i + step) % len(POLICIES)]
        why = unavailable.get(candidate, "")
        if why:
            skipped.append(f"{candidate}: {why}")
            continue
        return candidate, skipped
    return None, skipped


def _cycle(values: tuple[str, ...], current: str) -> str:
    return values[(values.index(current) + 1) % len(values)] if current in values else values[0]


def next_workload(current: str) -> str:
    return _cycle(WORKLOADS, current)


def next_dtype(current: str) -> str:
    return _cycle(DTYPES, current)


def next_size(current: int, step: int) -> int:
    """Double (step > 0) or halve (step < 0) a size, within the sizes a pool accepts."""
    size = current * 2 if step > 0 else current // 2
    return min(max(size, MIN_SIZE), MAX_SIZE)
