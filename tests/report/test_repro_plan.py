"""Which process a repro script reproduces and what it replays: table-driven, no processes.

Also: every script the generator can write compiles, imports no gpumon, and nothing from a log
can become code; the script's copies of gpumon's facts (MLX thresholds, model shapes) agree
with the worker's.
"""

from __future__ import annotations

import ast
import dataclasses

import pytest

from gpumon import control
from gpumon import events as ev
from gpumon.report import repro_code
from gpumon.report.repro import render_script
from gpumon.report.repro_plan import (
    MLX_PER_THREAD_DEFAULT_STREAMS,
    MLX_UNSAFE_STREAM,
    CrashFacts,
    ReproError,
    ReproPlan,
    Step,
    default_policy,
    plan,
    version_tuple,
)
from gpumon.spec import PoolConfig, parse_pool
from gpumon.worker.backends import base, generate_shape, mlx_policies

POOL = "mlx@0.31.1:cpu"
CFG = parse_pool(f"{POOL},workload=generate,threads=1,size=64,native=off")


def start() -> ev.SessionStart:
    host = ev.HostInfo(
        hostname="h",
        user="u",
        home="/home/u",
        os="Linux",
        os_version="x",
        machine="x86_64",
        chip="cpu",
        cpu_count=2,
        mem_total=1,
        python="3.11.7",
    )
    return ev.SessionStart(
        t=0.0, session_id="abcdef123456", gpumon_version="0.1.0", mode="test", argv=[], cwd="/",
        host=host,
    )  # fmt: skip


def starting(t: float, cfg: PoolConfig = CFG, pool: str = POOL) -> ev.Event:
    return ev.PoolStarting(t=t, pool=pool, config=cfg)


def ready(t: float, pid: int = 7, pool: str = POOL, **kw: object) -> ev.Event:
    fields: dict[str, object] = dict(
        t=t, pool=pool, pid=pid, backend="mlx", device="cpu", device_name="CPU",
        device_reason="requested", framework="mlx 0.31.1",
        versions={"mlx": "0.31.1", "python": "3.11.7"}, size=64, dtype="float32",
        flop_per_op=1.0, policy="shared",
    )  # fmt: skip
    fields.update(kw)
    return ev.PoolReady(**fields)  # type: ignore[arg-type]


def ctl(t: float, cmd: control.PoolCommand, cfg: PoolConfig, pool: str = POOL) -> ev.Event:
    return ev.Control(t=t, pool=pool, command=cmd, config=cfg)


def crash(t: float, pid: int = 7, backend: str = "mlx", pool: str = POOL, **kw: object) -> ev.Event:
    fields: dict[str, object] = dict(
        t=t, crash_id=f"{pool}-{pid}", pool=pool, pid=pid, signal="SIGSEGV", threads=2,
        uptime=1.0, ops_total=5, policy="shared", workload="generate", backend=backend,
        device="cpu", versions={"mlx": "0.31.1"},
    )  # fmt: skip
    fields.update(kw)
    return ev.Crash(**fields)  # type: ignore[arg-type]


def threads(cfg: PoolConfig, n: int, **kw: object) -> PoolConfig:
    import msgspec

    return msgspec.structs.replace(cfg, threads=n, size=64, dtype="float32", **kw)


# ---- which crash, which process -------------------------------------------------------------


def test_a_crash_at_two_threads_from_the_start() -> None:
    cfg2 = threads(CFG, 2)
    events = [start(), starting(1.0, cfg2), ready(2.0), crash(2.21)]
    p = plan(events, "s")
    assert p.steps == (Step(0.0, 2),)
    assert p.crash is not None and p.crash.how == "SIGSEGV"
    assert p.crash.after_s == pytest.approx(0.21)
    assert p.seconds == 5.2  # twice 0.21 s, at least 5 s more
    assert (p.backend, p.version, p.device, p.build) == ("mlx", "0.31.1", "cpu", "cpu")
    assert (p.workload, p.size, p.dtype, p.policy) == ("generate", 64, "float32", "shared")
    assert p.requires == "mlx==0.31.1 (cpu)"


def test_grow_and_shrink_steps_are_replayed_at_their_offsets() -> None:
    events = [
        start(),
        starting(1.0),
        ready(2.0),
        ctl(3.0, control.SetThreads(threads=8), threads(CFG, 8)),
        ctl(6.0, control.SetThreads(threads=1), threads(CFG, 1)),
        crash(6.2, threads=1),
    ]
    p = plan(events, "s")
    assert p.steps == (Step(0.0, 1), Step(1.0, 8), Step(4.0, 1))
    assert p.crash is not None and p.crash.after_s == pytest.approx(4.2)
    assert p.seconds == pytest.approx(9.2)


def test_a_grow_acknowledged_just_before_the_death_but_logged_after_it_is_replayed() -> None:
    # The worker died within milliseconds of acknowledging 1 -> 2 threads; gpumon read the
    # death first, so the crash event says 1 thread and the command is logged after it.
    events = [
        start(),
        starting(1.0),
        ready(2.0),
        crash(3.0, threads=1),
        ctl(3.01, control.SetThreads(threads=2), threads(CFG, 2)),
        ev.PoolStopped(t=3.2, pool=POOL),
    ]
    p = plan(events, "s")
    assert p.steps == (Step(0.0, 1), Step(1.0, 2))
    assert p.crash is not None and p.crash.threads == 2
    assert "logged 0.01 s after the crash" in p.notes[0]


@pytest.mark.parametrize(
    "later",
    [
        # a command well after the crash is one for the next start (gpumon remembers it)
        [ctl(4.0, control.SetThreads(threads=2), threads(CFG, 2))],
        # a command after the pool restarted belongs to the next process
        [starting(3.1), ctl(3.2, control.SetThreads(threads=2), threads(CFG, 2))],
    ],
)
def test_commands_after_the_death_are_not_the_dead_workers(later) -> None:
    events = [start(), starting(1.0), ready(2.0), crash(3.0, threads=1), *later]
    p = plan(events, "s")
    assert p.steps == (Step(0.0, 1),) and p.notes == ()


def test_a_policy_change_starts_the_replay_and_says_what_came_before() -> None:
    events = [
        start(),
        starting(1.0),
        ready(2.0),
        ctl(3.0, control.SetThreads(threads=2), threads(CFG, 2)),
        ctl(4.0, control.SetPolicy(policy="locked"), threads(CFG, 2, policy="locked")),
        ctl(5.0, control.SetPolicy(policy="shared"), threads(CFG, 2, policy="shared")),
        crash(5.5, policy="shared"),
    ]
    p = plan(events, "s")
    assert p.steps == (Step(0.0, 2),) and p.policy == "shared"
    assert p.crash is not None and p.crash.after_s == pytest.approx(0.5)
    assert p.crash.uptime_s == pytest.approx(3.5)
    (note,) = p.notes
    assert "1 thread at 0.00 s, 2 threads at 1.00 s, policy locked at 2.00 s" in note
    assert "policy shared at 3.00 s" in note


def test_the_first_framework_crash_not_a_fault_pools() -> None:
    fault_cfg = parse_pool("fault,threads=2")
    events = [
        start(),
        starting(0.5, fault_cfg, pool="fault"),
        crash(0.9, pid=3, backend="fault", pool="fault"),
        starting(1.0, threads(CFG, 2)),
        ready(2.0),
        crash(2.5),
    ]
    p = plan(events, "s")
    assert p.pool == POOL and p.crash is not None and p.crash.crash_id == f"{POOL}-7"


def test_the_crash_of_a_restarted_process_is_its_own() -> None:
    cfg2 = threads(CFG, 2)
    events = [
        start(),
        starting(1.0, cfg2),
        ready(2.0, pid=7),
        crash(2.3, pid=7),
        starting(3.0, cfg2),
        ready(4.0, pid=8),
        ctl(5.0, control.SetThreads(threads=3), threads(CFG, 3)),
        crash(6.0, pid=8, threads=3),
    ]
    p = plan(events, "s", crash_id=f"{POOL}-8")
    assert p.steps == (Step(0.0, 2), Step(1.0, 3))
    assert p.crash is not None and p.crash.after_s == pytest.approx(2.0)


def test_a_death_while_stopping_runs_until_the_stop() -> None:
    cfg2 = threads(CFG, 2)
    events = [
        start(),
        starting(1.0, cfg2),
        ready(2.0),
        ctl(5.0, control.Stop(), cfg2),
        crash(5.3, during="stopping", signal="SIGABRT"),
    ]
    p = plan(events, "s")
    assert p.seconds == 3.0 and p.crash is not None and p.crash.during == "stopping"


def test_no_crash_gives_the_last_configuration_for_as_long_as_it_ran() -> None:
    cfg2 = threads(CFG, 2)
    events = [
        start(),
        starting(1.0, cfg2),
        ready(2.0, versions={"mlx": "0.31.2"}, policy="per-thread"),
        ctl(4.5, control.Stop(), cfg2),
        ev.PoolStopped(t=4.7, pool=POOL),
        ev.SessionEnd(t=5.0),
    ]
    p = plan(events, "s")
    assert p.crash is None and p.version == "0.31.2" and p.policy == "per-thread"
    assert p.steps == (Step(0.0, 2),) and p.seconds == 2.5


@pytest.mark.parametrize(
    ("events", "crash_id", "needle"),
    [
        (
            [start(), starting(0.5, parse_pool("fault"), "fault"), crash(1, 3, "fault", "fault")],
            None,
            "synthetic fault pool 'fault'",
        ),
        (
            [start(), starting(0.5, parse_pool("fault"), "fault"), crash(1, 3, "fault", "fault")],
            "fault-3",
            "synthetic fault pool",
        ),
        ([start(), starting(1.0), ready(2.0), crash(2.5)], "nope", "no crash 'nope'"),
        ([start()], None, "ran no MLX or torch pool"),
        ([start(), starting(1.0), crash(1.5, versions={})], None, "does not say which mlx"),
    ],
)
def test_what_cannot_be_reproduced_is_one_sentence(events, crash_id, needle) -> None:
    with pytest.raises(ReproError, match=needle) as err:
        plan(events, "s", crash_id)
    assert "\n" not in str(err.value)


# ---- nothing from a log becomes code ----------------------------------------------------------


@pytest.mark.parametrize(
    "ready_kw",
    [
        {"dtype": 'float32\nimport os; os.system("echo pwned")'},
        {"versions": {"mlx": '0.31.1" or __import__("os").system("x") or "'}},
        {"device": "cpu; import os"},
        {"device": "cuda:0)\nimport os#"},
        {"size": 10**9},
        {"policy": "shared\nimport os"},
    ],
)
def test_a_tampered_log_value_is_refused_not_written_into_code(ready_kw) -> None:
    events = [start(), starting(1.0, threads(CFG, 2)), ready(2.0, **ready_kw), crash(2.5)]
    if "policy" in ready_kw:
        events[-1] = crash(2.5, policy=ready_kw["policy"])
    with pytest.raises(ReproError, match="not one gpumon writes"):
        plan(events, "s")


def test_names_from_the_log_stay_inside_comments() -> None:
    evil = "p\nimport os  # \r\x1b[2J\u2028os.system('x')"
    cfg = msgspec_replace(threads(CFG, 2), name=evil)
    events = [start(), starting(1.0, cfg, pool=evil), ready(2.0, pool=evil), crash(2.5, pool=evil)]
    text = render_script(plan(events, "sess\nimport os"))
    tree = ast.parse(text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported == {"contextlib", "faulthandler", "sys", "threading", "time", "mlx.core"}
    assert "os.system" not in text.split("# requires:")[1]  # nowhere after the header
    header = text.split("\nimport ")[0]
    assert all(line.startswith("#") for line in header.splitlines() if line)


def msgspec_replace(cfg: PoolConfig, **kw: object) -> PoolConfig:
    import msgspec

    return msgspec.structs.replace(cfg, **kw)


# ---- every script compiles, without gpumon -------------------------------------------------------

BASE = ReproPlan(
    session_id="abc123",
    session_name="s",
    gpumon_version="0.1.0",
    pool="p",
    backend="mlx",
    version="0.31.1",
    device="cpu",
    build="cpu",
    workload="generate",
    size=64,
    dtype="float32",
    policy="shared",
    sync_every=1,
    intra_op=None,
    steps=(Step(0.0, 1), Step(0.5, 2)),
    seconds=2.0,
    crash=CrashFacts("c", "SIGSEGV", 0.7, 0.7, 2, "run"),
)
VARIANTS = [
    dict(backend=b, version=v, device=d, build=bd, workload=w, policy=p, sync_every=se)
    for b, v, d, bd in [
        ("mlx", "0.31.1", "cpu", "cpu"),
        ("mlx", "0.31.2", "gpu", "metal"),
        ("mlx", "0.32.4", "gpu", "cuda"),
        ("torch", "2.13.0+cpu", "cpu", "cpu"),
        ("torch", "2.11.0", "cuda:1", "cuda"),
        ("torch", "2.9.0", "mps", "mps"),
    ]
    for w in ("matmul", "mlp", "generate")
    for p in ("per-thread", "shared", "locked")
    for se in (1, 4)
]


@pytest.mark.parametrize("kw", VARIANTS, ids=lambda kw: "-".join(str(v) for v in kw.values()))
def test_every_script_compiles_imports_only_its_framework_and_reads_well(kw) -> None:
    p = dataclasses.replace(BASE, **kw)
    text = render_script(p)
    tree = ast.parse(text)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    framework = "mlx.core" if p.backend == "mlx" else "torch"
    assert imported == {"contextlib", "faulthandler", "sys", "threading", "time", framework}
    assert not any(isinstance(n, ast.ImportFrom) for n in ast.walk(tree))
    assert f"# requires: {p.requires}\n" in text
    assert max(len(line) for line in text.splitlines()) <= 100
    limit = 112 if p.workload == "generate" else 95
    assert len(text.splitlines()) <= limit


def test_mlx_streams_follow_the_version() -> None:
    def script(version: str, policy: str) -> str:
        return render_script(dataclasses.replace(BASE, version=version, policy=policy))

    assert "mx.new_stream(DEVICE)" in script("0.31.1", "per-thread")
    assert "SHARED" not in script("0.31.1", "shared")  # the default stream is the shared one
    assert "SHARED = mx.new_stream(DEVICE)" in script("0.31.2", "shared")
    assert "SHARED = mx.new_thread_unsafe_stream(DEVICE)" in script("0.32.0", "shared")
    assert "new_stream" not in script("0.32.4", "per-thread")
    assert "LOCK = threading.Lock()" in script("0.32.4", "locked")


# ---- the script's copies of gpumon's facts agree with the worker's --------------------------


def test_the_scripts_facts_agree_with_the_workers() -> None:
    assert MLX_PER_THREAD_DEFAULT_STREAMS == mlx_policies.PER_THREAD_DEFAULT_STREAMS
    assert version_tuple(mlx_policies.UNSAFE_STREAM_RELEASE) == MLX_UNSAFE_STREAM
    shape = (generate_shape.VOCAB, generate_shape.LAYERS, generate_shape.CONTEXT)
    assert shape == (repro_code.VOCAB, repro_code.LAYERS, repro_code.CONTEXT)
    assert (repro_code.MLP_MULT, repro_code.HEAD_DIM) == (
        generate_shape.MLP_MULT,
        generate_shape.HEAD_DIM,
    )
    assert (repro_code.MLP_BATCH, repro_code.MLP_LAYERS) == (base.MLP_BATCH, base.MLP_LAYERS)
    for v in ("0.30.6", "0.31.1", "0.31.2", "0.32.4"):
        want = mlx_policies.plan(v, version_tuple(v) >= MLX_UNSAFE_STREAM).default
        assert default_policy("mlx", v, "cpu") == want
