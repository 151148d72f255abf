"""The bisection plan and the statistics behind it, without processes (pure functions)."""

from __future__ import annotations

import pytest

from gpumon import stats
from gpumon.bisect import Bisection, Step, miss_chance

VERSIONS = ["0.30.6", "0.31.0", "0.31.1", "0.31.2", "0.32.0", "0.32.1", "0.32.2", "0.32.4"]


def drive(versions: list[str], bad: set[str], runs: int = 3) -> Bisection:
    b = Bisection(versions)
    tested = []
    while (v := b.next_version()) is not None:
        assert v not in tested, "a version is never run twice"
        tested.append(v)
        b.record(Step(v, runs, runs if v in bad else 0))
    return b


@pytest.mark.parametrize("first_good", range(1, len(VERSIONS)))
def test_finds_where_a_bug_went_away(first_good: int) -> None:
    b = drive(VERSIONS, set(VERSIONS[:first_good]))
    assert b.direction == "fixed"
    assert b.boundary is not None
    last_bad, good = b.boundary
    assert (last_bad.version, good.version) == (VERSIONS[first_good - 1], VERSIONS[first_good])
    assert len(b.steps) <= 2 + 3  # ends, then log2(8) = 3 halvings at most


def test_finds_a_regression() -> None:
    b = drive(VERSIONS, set(VERSIONS[5:]))
    assert b.direction == "regressed"
    assert b.boundary is not None
    assert [s.version for s in b.boundary] == ["0.32.0", "0.32.1"]


@pytest.mark.parametrize(
    ("bad", "direction"), [(set(VERSIONS), "always-bad"), (set(), "never-bad")]
)
def test_nothing_to_find_when_the_ends_agree(bad: set[str], direction: str) -> None:
    b = drive(VERSIONS, bad)
    assert b.direction == direction and b.boundary is None and len(b.steps) == 2


def test_one_or_no_version() -> None:
    assert Bisection([]).next_version() is None and Bisection([]).direction == "untested"
    b = drive(["0.31.1"], {"0.31.1"})
    assert b.direction == "always-bad"


def test_wilson_interval_matches_the_textbook() -> None:
    lo, hi = stats.wilson(3, 3)
    assert lo == pytest.approx(0.4385, abs=1e-3) and hi == 1.0
    lo, hi = stats.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    assert stats.wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-3)


def test_misses_and_runs_needed() -> None:
    bad = Step("0.31.1", 3, 3)
    at_rate, at_low = miss_chance(bad, 3)
    assert at_rate == 0.0 and at_low == pytest.approx((1 - 0.4385) ** 3, abs=1e-3)
    assert stats.runs_to_see(0.5) == 5 and stats.runs_to_see(1.0) == 1
    assert stats.runs_to_see(0.0) is None


def test_fisher_exact_matches_known_values() -> None:
    # R: fisher.test(matrix(c(3,0,0,3),2))$p.value == 0.1
    assert stats.fisher_exact(3, 0, 0, 3) == pytest.approx(0.1)
    # The tea-tasting table: 0.4857
    assert stats.fisher_exact(3, 1, 1, 3) == pytest.approx(0.4857, abs=1e-4)
    assert stats.fisher_exact(2, 2, 2, 2) == pytest.approx(1.0)
