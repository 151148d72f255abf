"""Where a crash appeared or went away across framework releases: the search, as a pure plan.

A version is *bad* when a worker died or hung in any of its runs, *good* when none did. The
plan tests the oldest and the newest release first; if they agree there is nothing to find in
the range. Otherwise it bisects between a bad and a good neighbour: "fixed" when the old end is
bad (last bad / first good), "regressed" when the new end is (last good / first bad). The
caller runs the versions it is handed and reports back; nothing here starts a process.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gpumon import stats


@dataclass(frozen=True)
class Step:
    version: str
    runs: int
    died: int  # runs in which a worker crashed or hung
    signals: tuple[str, ...] = ()

    @property
    def bad(self) -> bool:
        return self.died > 0


@dataclass
class Bisection:
    versions: list[str]  # installable releases, oldest first
    steps: dict[str, Step] = field(default_factory=dict)

    def next_version(self) -> str | None:
        """The next version to run, or None when the answer is known."""
        if not self.versions:
            return None
        for end in (self.versions[0], self.versions[-1]):
            if end not in self.steps:
                return end
        bounds = self._bounds()
        if bounds is None:
            return None
        lo, hi = bounds
        if hi - lo <= 1:
            return None
        return self.versions[(lo + hi) // 2]

    def record(self, step: Step) -> None:
        self.steps[step.version] = step

    def _bad(self, i: int) -> bool:
        return self.steps[self.versions[i]].bad

    def _bounds(self) -> tuple[int, int] | None:
        """Indices of the closest tested pair that disagrees, around the transition."""
        first, last = self._bad(0), self._bad(len(self.versions) - 1)
        if first == last:
            return None
        tested = [i for i, v in enumerate(self.versions) if v in self.steps]
        lo = max(i for i in tested if self._bad(i) == first)
        hi = min(i for i in tested if i > lo and self._bad(i) == last)
        return lo, hi

    @property
    def direction(self) -> str:
        """fixed | regressed | always-bad | never-bad | untested"""
        if not self.versions or any(
            v not in self.steps for v in (self.versions[0], self.versions[-1])
        ):
            return "untested"
        first, last = self._bad(0), self._bad(len(self.versions) - 1)
        if first and not last:
            return "fixed"
        if last and not first:
            return "regressed"
        return "always-bad" if first else "never-bad"

    @property
    def boundary(self) -> tuple[Step, Step] | None:
        """(the older, the newer) release of the transition, once found."""
        bounds = self._bounds() if self.direction in ("fixed", "regressed") else None
        if bounds is None or bounds[1] - bounds[0] != 1:
            return None
        return self.steps[self.versions[bounds[0]]], self.steps[self.versions[bounds[1]]]


def miss_chance(bad: Step, good_runs: int) -> tuple[float, float]:
    """How likely `good_runs` clean runs would be if the good version still had the bug at the
    rate seen on the bad one: (at the observed rate, at the low end of its 95% interval)."""
    rate = bad.died / bad.runs if bad.runs else 0.0
    low, _ = stats.wilson(bad.died, bad.runs)
    return stats.miss_probability(rate, good_runs), stats.miss_probability(low, good_runs)
