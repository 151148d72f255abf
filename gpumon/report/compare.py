"""Two sessions or sweeps side by side: throughput against the run-to-run spread, crash rates
with Fisher's exact test, and what differed in the environment. Pure: `Side`s in, a
`Comparison` out; reading the inputs is gpumon.report.sides, drawing it compare_render.

Cells are matched by what was measured — backend, device, policy, workload, size, dtype and
thread count — never by pool name or framework version, because comparing mlx 0.31.1 with
0.32.4 is the point. A side holding several cells with one key (two versions in one session)
pairs them by pool name, then by version; what cannot be paired is listed as unmatched.

The throughput verdict is deliberately plain for a handful of runs: "within noise" when the
two ranges of per-run ops/s (min–max) overlap; "faster" or "slower" only when they do not and
each side has at least two measured runs; otherwise "too few runs" — one run has no spread to
judge by, and the verdict says so rather than guess.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from gpumon.stats import fisher_exact, wilson

MIN_RUNS_FOR_VERDICT = 2


@dataclass(frozen=True, order=True)
class CellKey:
    backend: str
    device: str
    policy: str
    workload: str
    size: int
    dtype: str
    threads: int

    @property
    def label(self) -> str:
        return (
            f"{self.backend} {self.device} {self.workload} {self.size} {self.dtype} "
            f"{self.policy} ×{self.threads}"
        )


@dataclass(frozen=True)
class CellSide:
    """One side's measurements of one cell."""

    key: CellKey
    pool: str
    version: str  # the framework version the worker imported ("" for the fault backend)
    runs: int
    measured_runs: int  # runs with measured time (a run that died at once has none)
    ops_per_s: float | None  # median over measured runs
    ops_per_s_min: float | None
    ops_per_s_max: float | None
    crashes: int  # runs that died while measuring (or starting)
    hangs: int = 0


@dataclass(frozen=True)
class Side:
    label: str  # for people: the session folder or the sweep file
    kind: str  # session | sweep
    cells: list[CellSide]
    # What the environment was: field -> value ("mlx (worker)" -> "0.31.1"); see sides.py
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CellDelta:
    key: CellKey
    a: CellSide
    b: CellSide
    change: float | None  # B's median ops/s over A's, minus 1 (0.1 = 10% more)
    verdict: str  # within noise | faster | slower | too few runs | not measured
    crash_rate_a: float
    crash_rate_b: float
    crash_p: float  # Fisher's exact two-sided p of crashed/clean runs, A vs B
    crash_ci_a: tuple[float, float]
    crash_ci_b: tuple[float, float]


@dataclass(frozen=True)
class EnvRow:
    what: str
    a: str
    b: str

    @property
    def same(self) -> bool:
        return self.a == self.b


@dataclass(frozen=True)
class Comparison:
    a: Side
    b: Side
    cells: list[CellDelta]
    only_a: list[CellSide]
    only_b: list[CellSide]
    env: list[EnvRow]
    # Unmatched cells that differ only by policy: each framework version's own default can
    # differ (mlx 0.31.1: shared; 0.31.2 on: per-thread), so a sweep that named no policy
    # measured different things; the fix is to sweep both with the same --policy.
    policy_only: list[tuple[CellSide, CellSide]] = field(default_factory=list)


def throughput_verdict(a: CellSide, b: CellSide) -> str:
    if a.ops_per_s is None or b.ops_per_s is None:
        return "not measured"
    lo_a, hi_a = _range(a)
    lo_b, hi_b = _range(b)
    if lo_b <= hi_a and lo_a <= hi_b:
        return "within noise"
    if a.measured_runs < MIN_RUNS_FOR_VERDICT or b.measured_runs < MIN_RUNS_FOR_VERDICT:
        return "too few runs"
    return "faster" if lo_b > hi_a else "slower"


def _range(c: CellSide) -> tuple[float, float]:
    assert c.ops_per_s is not None
    lo = c.ops_per_s_min if c.ops_per_s_min is not None else c.ops_per_s
    hi = c.ops_per_s_max if c.ops_per_s_max is not None else c.ops_per_s
    return lo, hi


def delta(a: CellSide, b: CellSide) -> CellDelta:
    change = None
    if a.ops_per_s and b.ops_per_s is not None:
        change = b.ops_per_s / a.ops_per_s - 1
    return CellDelta(
        key=a.key,
        a=a,
        b=b,
        change=change,
        verdict=throughput_verdict(a, b),
        crash_rate_a=a.crashes / a.runs if a.runs else 0.0,
        crash_rate_b=b.crashes / b.runs if b.runs else 0.0,
        crash_p=fisher_exact(a.crashes, a.runs - a.crashes, b.crashes, b.runs - b.crashes),
        crash_ci_a=wilson(a.crashes, a.runs),
        crash_ci_b=wilson(b.crashes, b.runs),
    )


def pair(
    a: list[CellSide], b: list[CellSide]
) -> tuple[list[tuple[CellSide, CellSide]], list[CellSide], list[CellSide]]:
    """Pairs of cells with one key; then the cells of A and of B left unpaired."""
    by_a: dict[CellKey, list[CellSide]] = {}
    by_b: dict[CellKey, list[CellSide]] = {}
    for c in a:
        by_a.setdefault(c.key, []).append(c)
    for c in b:
        by_b.setdefault(c.key, []).append(c)
    pairs: list[tuple[CellSide, CellSide]] = []
    only_a: list[CellSide] = []
    for key in sorted(by_a):
        left, right = by_a[key], by_b.setdefault(key, [])  # `right` loses what is paired
        if len(left) == 1 and len(right) == 1:
            pairs.append((left[0], right.pop()))
            continue
        for x in left:
            match = _match(x, right)
            if match is None:
                only_a.append(x)
            else:
                pairs.append((x, match))
                right.remove(match)
    only_b = [c for key in sorted(by_b) for c in by_b[key]]
    return pairs, only_a, only_b


def _match(x: CellSide, candidates: list[CellSide]) -> CellSide | None:
    """The candidate of the same pool name, else of the same framework version."""
    for attr in ("pool", "version"):
        for y in candidates:
            if getattr(y, attr) == getattr(x, attr):
                return y
    return None


def env_rows(a: dict[str, str], b: dict[str, str]) -> list[EnvRow]:
    keys = list(dict.fromkeys([*a, *b]))
    return [EnvRow(k, a.get(k, "—"), b.get(k, "—")) for k in keys]


def compare(a: Side, b: Side) -> Comparison:
    pairs, only_a, only_b = pair(a.cells, b.cells)
    return Comparison(
        a=a,
        b=b,
        cells=[delta(x, y) for x, y in pairs],
        only_a=only_a,
        only_b=only_b,
        env=env_rows(a.env, b.env),
        policy_only=[
            (x, y)
            for x in only_a
            for y in only_b
            if dataclasses.replace(x.key, policy="") == dataclasses.replace(y.key, policy="")
        ],
    )
