"""Plays a recorded event list back on a virtual clock, for the TUI's replay mode.

Pure: no clock is read here. The caller says how much wall time passed (`advance(wall_dt)`)
and gets the events that became due at the current speed; `seek(seconds)` rebuilds the
SessionState as it was at that moment. Events keep the log's order; an event is due at its
own `t` relative to the first event, or at the latest earlier due time if the clock stepped
back (NTP) or the recorder wrote a held-back sample late, so order and timing never conflict.

Seeking is fast in long sessions because the state after every `snapshot_every` events is kept
(built lazily, the first time a seek passes it): a seek applies at most that many events to a
copy of the nearest snapshot.
"""

from __future__ import annotations

import bisect
import copy
import math
from collections.abc import Sequence

from gpumon import events as ev
from gpumon.state import SessionState

SNAPSHOT_EVERY = 1000


class Replay:
    def __init__(self, events: Sequence[ev.Event], *, snapshot_every: int = SNAPSHOT_EVERY):
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        self.events: list[ev.Event] = list(events)
        self.snapshot_every = snapshot_every
        self._due: list[float] = []
        t0 = self.events[0].t if self.events else 0.0
        latest = t0
        for e in self.events:
            latest = max(latest, e.t)
            self._due.append(latest - t0)
        self._cursor = 0  # events[:_cursor] have been delivered
        self._position = 0.0
        self._speed = 1.0
        self._playing = False
        # index -> state after applying events[:index]. Events are shared, not copied: they
        # are never mutated once recorded, and copying 40k of them per seek would be slow.
        self._snapshots: dict[int, SessionState] = {0: SessionState()}
        self._shared = {id(e): e for e in self.events}

    # ---- the clock -----------------------------------------------------------------
    @property
    def duration(self) -> float:
        return self._due[-1] if self._due else 0.0

    @property
    def position(self) -> float:
        """Seconds from the first event."""
        return self._position

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def playing(self) -> bool:
        return self._playing

    @property
    def finished(self) -> bool:
        return self._cursor >= len(self.events)

    def play(self) -> None:
        """Start (or continue) playing; does nothing at the end (seek back first)."""
        self._playing = not self.finished

    def pause(self) -> None:
        self._playing = False

    def set_speed(self, x: float) -> None:
        if not (math.isfinite(x) and x > 0):
            raise ValueError(f"replay speed must be a positive number, not {x!r}")
        self._speed = x

    def advance(self, wall_dt: float) -> list[ev.Event]:
        """Move the clock by `wall_dt` real seconds × speed; return the events now due."""
        if not (math.isfinite(wall_dt) and wall_dt >= 0):
            raise ValueError(f"wall_dt must be a non-negative number of seconds, not {wall_dt!r}")
        if not self._playing:
            return []
        self._position = min(self.duration, self._position + wall_dt * self._speed)
        end = bisect.bisect_right(self._due, self._position)
        due = self.events[self._cursor : end]
        self._cursor = end
        if self.finished:
            self._playing = False
        return due

    def seek(self, seconds: float) -> SessionState:
        """Jump to `seconds` from the start (clamped); returns a new SessionState holding every
        event due by then. The caller owns it and applies later `advance` results to it."""
        if math.isnan(seconds):
            raise ValueError("cannot seek to NaN")
        self._position = min(max(seconds, 0.0), self.duration)
        self._cursor = bisect.bisect_right(self._due, self._position)
        if self.finished:
            self._playing = False
        return self.state_at(self._cursor)

    # ---- states --------------------------------------------------------------------
    def state_at(self, index: int) -> SessionState:
        """A fresh SessionState with events[:index] applied."""
        index = max(0, min(index, len(self.events)))
        base = max(i for i in self._snapshots if i <= index)
        state = self._copy(self._snapshots[base])
        for i in range(base, index):
            state.apply(self.events[i])
            done = i + 1
            if done % self.snapshot_every == 0 and done not in self._snapshots:
                self._snapshots[done] = self._copy(state)
        return state

    def _copy(self, state: SessionState) -> SessionState:
        return copy.deepcopy(state, dict(self._shared))
