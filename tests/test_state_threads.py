"""A pool's per-thread history, kept as its last samples and read per thread when drawn,
equals what the screen was drawn from before: one deque of ops/s per thread slot, a slot
dropped when the pool shrinks and started afresh when it grows again or the worker restarts."""

from __future__ import annotations

import copy
from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from gpumon import events as ev
from gpumon.spec import parse_pool
from gpumon.state import THREAD_HISTORY, SessionState


def _reference(events: list[ev.Event]) -> dict[int, list[float]]:
    """The former SessionState._sample's per-thread deques, for one pool."""
    hist: dict[int, deque[float]] = {}
    for e in events:
        if isinstance(e, ev.PoolStarting):
            hist = {}
        elif isinstance(e, ev.Sample):
            for i, n in enumerate(e.ops):
                h = hist.setdefault(i, deque(maxlen=THREAD_HISTORY))
                h.append(n / e.interval if e.interval > 0 else 0.0)
            for i in [i for i in hist if i >= len(e.ops)]:
                del hist[i]
    return {i: list(h) for i, h in hist.items()}


def _sample(t: float, ops: list[int], interval: float) -> ev.Sample:
    return ev.Sample(t=t, pool="p", interval=interval, threads=len(ops), ops=ops, flop_per_op=2.0)


STEP = st.one_of(
    st.tuples(
        st.lists(st.integers(0, 1000), min_size=0, max_size=6),
        st.sampled_from([0.1, 0.05, 0.0]),
    ),
    st.just("restart"),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, max_size=260))
def test_thread_history_equals_per_thread_deques(steps) -> None:
    events: list[ev.Event] = []
    state = SessionState()
    for k, step in enumerate(steps):
        if step == "restart":
            e: ev.Event = ev.PoolStarting(t=k, pool="p", config=parse_pool("fault,name=p"))
        else:
            ops, interval = step
            e = _sample(k, ops, interval)
        events.append(e)
        state.apply(e)
        view = state.pool("p")
        assert view.thread_history == _reference(events)
        assert view.thread_slots == len(view.thread_history)


def test_a_copied_view_is_its_own() -> None:
    # Replay snapshots deep-copy the state; the copy's containers must not be the original's.
    state = SessionState()
    for k in range(5):
        state.apply(_sample(k, [k, k + 1], 0.1))
    snap = copy.deepcopy(state)
    for k in range(5, 300):
        state.apply(_sample(k, [k, k + 1, k + 2], 0.1))
    fresh = SessionState()
    for k in range(5):
        fresh.apply(_sample(k, [k, k + 1], 0.1))
    assert vars(snap.pool("p")) == vars(fresh.pool("p"))
    assert snap.pool("p").thread_history == fresh.pool("p").thread_history
    assert len(state.pool("p").history) == 300 and len(snap.pool("p").history) == 5
