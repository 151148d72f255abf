"""The folds over the event stream, table-driven and without processes: what a run is, what
counts as a crash, a hang, a death while stopping, and what a viewer's state shows."""

from __future__ import annotations

import pytest

from gpumon import analysis, control, facts
from gpumon import events as ev
from gpumon.spec import PoolConfig
from gpumon.state import SessionState

CFG = PoolConfig(name="p", backend="fault", threads=2, policy="per-thread")


def starting(t: float) -> ev.Event:
    return ev.PoolStarting(t=t, pool="p", config=CFG)


def ready(t: float) -> ev.Event:
    return ev.PoolReady(
        t=t,
        pool="p",
        pid=1,
        backend="fault",
        device="cpu",
        device_name="x",
        device_reason="x",
        framework="x",
        size=64,
        dtype="float32",
        flop_per_op=1.0,
        policy="per-thread",
    )


def sample(t: float, ops: int = 10, threads: int = 2) -> ev.Event:
    return ev.Sample(
        t=t,
        pool="p",
        interval=0.1,
        threads=threads,
        ops=[ops] * threads,
        flop_per_op=1.0,
        policy="per-thread",
        workload="matmul",
    )


def crash(t: float, during: str = "run") -> ev.Event:
    return ev.Crash(
        t=t,
        crash_id=f"c{t}",
        pool="p",
        pid=1,
        signal="SIGSEGV",
        threads=2,
        uptime=1.0,
        ops_total=0,
        policy="per-thread",
        workload="matmul",
        backend="fault",
        device="cpu",
        during=during,
    )


def stall(t: float) -> ev.Event:
    return ev.Stall(t=t, pool="p", silent_for=3.0, threads=2, stall_id=f"s{t}")


def stopped(t: float) -> ev.Event:
    return ev.PoolStopped(t=t, pool="p")


def failed_thread(t: float) -> ev.Event:
    return ev.ThreadFailed(t=t, pool="p", slot=0, error="RuntimeError: x")


def samples(a: float, b: float) -> list[ev.Event]:
    return [sample(a + 0.1 * i) for i in range(round((b - a) / 0.1))]


# (name, events, expected runs as (crashed, stop_crash, stalled, threads_failed, measured s))
CASES = [
    (
        "a clean run",
        [starting(0), ready(0.1), *samples(0.2, 2.2), stopped(2.3)],
        [(False, None, False, 0, pytest.approx(1.6, abs=0.11))],
    ),
    (
        "a crash, and a sample the dying process still sent",
        [starting(0), ready(0.1), *samples(0.2, 1.2), crash(1.25), sample(1.3), stopped(1.4)],
        [(True, None, False, 0, pytest.approx(0.6, abs=0.11))],
    ),
    (
        "a crash before the first sample is still a run of its configuration",
        [starting(0), ready(0.1), crash(0.15)],
        [(True, None, False, 0, 0.0)],
    ),
    (
        "a death while stopping is counted apart, on the run it ended",
        [starting(0), ready(0.1), *samples(0.2, 1.2), crash(1.3, during="stopping")],
        [(False, "SIGSEGV", False, 0, pytest.approx(0.6, abs=0.11))],
    ),
    (
        "a hang before any sample is a run, not the previous process's",
        [
            starting(0),
            ready(0.1),
            *samples(0.2, 1.2),
            stopped(1.3),
            starting(1.4),
            ready(1.5),
            stall(4.6),
        ],
        [(False, None, False, 0, pytest.approx(0.6, abs=0.11)), (False, None, True, 0, 0.0)],
    ),
    (
        "a thread that raised before the first sample",
        [starting(0), ready(0.1), failed_thread(0.12), *samples(0.2, 1.2), stopped(1.3)],
        [(False, None, False, 1, pytest.approx(0.6, abs=0.11))],
    ),
]


@pytest.mark.parametrize(("events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_runs(events: list[ev.Event], expected: list[tuple[object, ...]]) -> None:
    got = [
        (r.crashed, r.stop_crash_signal, r.stalled, r.threads_failed, r.seconds)
        for r in analysis.runs(events)
    ]
    assert got == expected


def test_a_command_starts_a_new_run_and_carries_the_config() -> None:
    after = PoolConfig(name="p", backend="fault", threads=4, policy="locked", size=128)
    events = [
        starting(0),
        ready(0.1),
        *samples(0.2, 1.2),
        ev.Control(t=1.25, pool="p", command=control.SetThreads(threads=4), config=after),
        *[sample(1.3 + 0.1 * i, threads=4) for i in range(10)],
    ]
    r1, r2 = analysis.runs(events)
    assert (r1.threads, r2.threads) == (2, 4) and r2.size == 128


def test_state_follows_a_stall_and_its_recovery() -> None:
    s = SessionState()
    for e in [starting(0), ready(0.1), sample(0.2), stall(3.3)]:
        s.apply(e)
    assert s.pools["p"].stalled and "s3.3" in s.stalls
    s.apply(ev.StallArtifact(t=3.4, stall_id="s3.3", pool="p", kind="faulthandler", text="x"))
    assert s.stalls["s3.3"].text("faulthandler") == "x"
    s.apply(ev.StallCleared(t=4.0, pool="p", silent_for=3.8))
    assert not s.pools["p"].stalled and s.stalls["s3.3"].cleared is not None


def test_state_takes_the_config_a_control_carries() -> None:
    s = SessionState()
    after = PoolConfig(name="p", backend="fault", threads=3, policy="locked")
    for e in [starting(0), ready(0.1)]:
        s.apply(e)
    s.apply(ev.Control(t=1, pool="p", command=control.SetPolicy(policy="locked"), config=after))
    assert s.pools["p"].config == after and s.pools["p"].policy == "locked"
    s.apply(ev.RecordingStopped(t=2, reason="No space left on device"))
    assert s.recording_stopped is not None


def threads_to(t: float, n: int) -> ev.Event:
    return ev.Control(
        t=t,
        pool="p",
        command=control.SetThreads(threads=n),
        config=PoolConfig(name="p", backend="fault", threads=n, policy="per-thread"),
    )


ATTRIBUTION = [
    (
        "a crash 0.23 s after a shrink follows it",
        threads_to(1.0, 1),
        1.23,
        "0.23 s after threads 2→1",
    ),
    ("a crash long after the change is the configuration's own", threads_to(1.0, 1), 3.5, None),
    ("a crash of a run that began with its process follows no change", None, 0.6, None),
]


@pytest.mark.parametrize(
    ("change", "crash_t", "expected"), [c[1:] for c in ATTRIBUTION], ids=[c[0] for c in ATTRIBUTION]
)
def test_a_crash_is_attributed_to_the_change_just_before_it(
    change: ev.Event | None, crash_t: float, expected: str | None
) -> None:
    events = [starting(0), ready(0.1), *samples(0.2, 0.9)]
    if change is not None:
        events.append(change)
    events.append(crash(crash_t))
    runs = analysis.runs(events)
    assert runs[-1].crashed and runs[-1].attribution == expected
    assert analysis.attributions(runs) == ({f"c{crash_t}": expected} if expected else {})


# ---- the incremental folds the streaming export uses --------------------------------------

ALL_EVENTS = [c[1] for c in CASES] + [
    [
        starting(0),
        ready(0.1),
        *samples(0.2, 1.2),
        threads_to(1.25, 1),
        *[sample(1.3 + 0.1 * i, threads=1) for i in range(10)],
        crash(2.4),
        starting(2.5),
        ready(2.6),
        failed_thread(2.7),
        *samples(2.8, 3.6),
        stall(3.7),
        stopped(3.9),
    ]
]


@pytest.mark.parametrize("events", ALL_EVENTS, ids=[*(c[0] for c in CASES), "a long mixed session"])
def test_the_incremental_folds_equal_the_batch_folds_after_every_event(
    events: list[ev.Event],
) -> None:
    # One event at a time, as the streaming export feeds them: after each event the folds
    # hold exactly what the batch functions compute from the events so far.
    runs, cells = analysis.RunFold(), facts.CellFold()
    for k, e in enumerate(events, start=1):
        runs.add(e)
        cells.add(e)
        assert runs.runs == analysis.runs(events[:k])
        assert cells.cells() == facts.cells(events[:k])
        assert cells.runs.runs == runs.runs


def test_the_incremental_folds_honour_the_warmup() -> None:
    events = [starting(0), ready(0.1), *samples(0.2, 2.2), stopped(2.3)]
    runs, cells = analysis.RunFold(warmup=1.0), facts.CellFold(warmup=1.0)
    for e in events:
        runs.add(e)
        cells.add(e)
    assert runs.runs == analysis.runs(events, warmup=1.0) != analysis.runs(events)
    assert cells.cells() == facts.cells(events, warmup=1.0)


def test_config_fill_one_event_at_a_time_equals_fill_configs() -> None:
    from gpumon.session import upgrade

    def controls() -> list[ev.Event]:
        return [
            starting(0),
            ready(0.1),
            ev.Control(t=1, pool="p", command=control.SetThreads(threads=4)),
            ev.Control(t=2, pool="p", command=control.SetPolicy(policy="shared")),
            ev.Control(t=3, pool="p", command=control.SetWorkload(workload="generate", size=8)),
            ev.Control(t=4, pool="p", command=control.SetThreads(threads=9), ok=False),
        ]

    batch, one_by_one = controls(), controls()
    upgrade.fill_configs(batch)
    fill = upgrade.ConfigFill()
    for e in one_by_one:
        fill.apply(e)
    assert one_by_one == batch
    last = batch[-2]
    assert isinstance(last, ev.Control) and last.config is not None
    cfg = last.config
    assert (cfg.threads, cfg.policy, cfg.workload) == (4, "shared", "generate")
