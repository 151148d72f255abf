"""The replay engine: order, speed, pause, and seek == applying the events up to that time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpumon import events as ev
from gpumon.session.log import load
from gpumon.session.replay import Replay
from gpumon.state import SessionState

from .conftest import FIXTURES

EVENTS = load(FIXTURES / "fault-off").events


def _applied(events) -> SessionState:
    s = SessionState()
    for e in events:
        s.apply(e)
    return s


def _due(events, seconds: float) -> list[ev.Event]:
    t0 = events[0].t
    return [e for e in events if e.t - t0 <= seconds]


def test_playing_delivers_every_event_once_in_order() -> None:
    r = Replay(EVENTS)
    assert r.duration == pytest.approx(EVENTS[-1].t - EVENTS[0].t)
    assert not r.playing and r.advance(10.0) == []  # paused until play()
    r.play()
    got: list[ev.Event] = []
    ticks = 0
    while r.playing:
        got += r.advance(0.1)
        ticks += 1
    assert got == EVENTS and r.finished and r.position == r.duration
    assert ticks == pytest.approx(r.duration / 0.1, abs=1.5)  # real time at speed 1


@pytest.mark.parametrize("speed", [0.5, 2.0, 10.0])
def test_speed_scales_the_clock(speed: float) -> None:
    r = Replay(EVENTS)
    r.set_speed(speed)
    r.play()
    got = r.advance(1.0)
    assert r.position == pytest.approx(min(speed, r.duration))
    assert got == _due(EVENTS, r.position)


def test_pause_stops_the_clock_and_play_continues() -> None:
    r = Replay(EVENTS)
    r.play()
    first = r.advance(1.0)
    r.pause()
    assert r.advance(5.0) == [] and r.position == pytest.approx(1.0)
    r.play()
    rest = r.advance(1e6)
    assert first + rest == EVENTS and not r.playing
    r.play()  # at the end: stays stopped until a seek
    assert not r.playing


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=-1.0, max_value=20.0), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=50),
)
def test_seek_equals_applying_the_events_up_to_that_time(targets, every) -> None:
    r = Replay(EVENTS, snapshot_every=every)
    for t in targets:  # forwards and backwards, through lazily built snapshots
        state = r.seek(t)
        expected = _applied(_due(EVENTS, max(0.0, min(t, r.duration))))
        assert vars(state) == vars(expected)
        assert r.position == max(0.0, min(t, r.duration))


def test_after_a_seek_advance_continues_from_there() -> None:
    r = Replay(EVENTS, snapshot_every=5)
    state = r.seek(1.0)
    r.play()
    for e in r.advance(1e6):
        state.apply(e)
    assert vars(state) == vars(_applied(EVENTS))


def test_a_returned_state_is_the_callers_own() -> None:
    r = Replay(EVENTS, snapshot_every=3)
    a = r.seek(2.0)
    a.apply(ev.SessionEnd(t=EVENTS[0].t + 2.0, reason="scribble"))
    a.pools.clear()
    assert vars(r.seek(2.0)) == vars(_applied(_due(EVENTS, 2.0)))


def test_a_clock_step_back_keeps_the_log_order() -> None:
    t = 1000.0
    events = [
        ev.Notice(t=t, message="a"),
        ev.Notice(t=t + 2, message="b"),
        ev.Notice(t=t + 1, message="c"),  # NTP stepped back
        ev.Notice(t=t + 3, message="d"),
    ]
    r = Replay(events)
    r.play()
    assert [e.message for e in r.advance(1.5)] == ["a"]
    assert [e.message for e in r.advance(0.5)] == ["b", "c"]  # c is due with b, not before
    assert [e.message for e in r.advance(5)] == ["d"]


def test_bad_input() -> None:
    r = Replay(EVENTS)
    for bad in (0, -1, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            r.set_speed(bad)
    with pytest.raises(ValueError):
        r.advance(-0.1)
    with pytest.raises(ValueError):
        r.seek(float("nan"))
    empty = Replay([])
    assert empty.duration == 0 and empty.finished and empty.advance(1) == []
    assert vars(empty.seek(5)) == vars(SessionState())
