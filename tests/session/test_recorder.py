"""The recorder against a real Supervisor and real crashes, and its disk-bound policy."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import msgspec
import pytest

from gpumon import analysis
from gpumon import events as ev
from gpumon import layout as paths
from gpumon.control import Pause, SetThreads
from gpumon.host import host_info
from gpumon.live_session import open_session, start_event
from gpumon.session.log import load
from gpumon.session.recorder import Recorder, RecorderError
from gpumon.spec import parse_pool
from tests.conftest import wait_for

HOST = host_info()


def _recorder(root: Path, **kw) -> Recorder:
    rec = Recorder(root, **kw)
    rec(start_event(rec.session_id, "test", ["gpumon", "--pool", "fault"], HOST))
    return rec


def _end(rec: Recorder) -> None:
    rec(ev.SessionEnd(reason="quit"))


async def test_a_real_session_with_a_crash(tmp_path: Path) -> None:
    seen: list[ev.Event] = []
    async with open_session(
        [parse_pool("fault,threads=1,native=off")],
        mode="test",
        argv=["gpumon", "--pool", "fault"],
        session_dir=tmp_path,
        listeners=[seen.append],
        host=HOST,
        host_every=None,
    ) as session:
        rec = session.recorder
        assert rec is not None
        sup = session.supervisor
        await wait_for(lambda: any(isinstance(e, ev.Sample) for e in seen), 30, what="samples")
        await sup.command("fault", SetThreads(threads=2))
        await wait_for(
            lambda: any(isinstance(e, ev.CrashArtifact) for e in seen), 30, what="crash artifacts"
        )
    await session.close()  # twice: still one session_end
    rec(ev.Notice(message="after close"))
    assert rec.ignored == 1

    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{6}", rec.folder.name)
    assert rec.path == rec.folder / "session.jsonl" and rec.artifacts_dir.is_dir()
    assert rec.session_id.startswith(rec.folder.name[-6:])
    raw = rec.path.read_bytes().splitlines()
    first = json.loads(raw[0])
    assert list(first)[:2] == ["type", "schema"] and first["schema"] == ev.SCHEMA_VERSION
    assert first["argv"] == ["gpumon", "--pool", "fault"] and first["cwd"] == os.getcwd()
    assert [json.loads(x)["type"] for x in raw].count("session_end") == 1
    assert len(raw) == rec.lines == len(seen)  # start to end: nothing dropped or merged

    # Artifacts are written where the log is, named relative to it in the file ...
    arts = [json.loads(x) for x in raw if b'"crash_artifact"' in x]
    with_path = [a for a in arts if a.get("path")]
    assert with_path and all(a["path"].startswith("artifacts/fault-1/") for a in with_path)
    assert all(a["report"]["source_path"] == a["path"] for a in with_path if "report" in a)
    # ... and the listener's own event objects were not changed (the TUI holds them).
    live = [e for e in seen if isinstance(e, ev.CrashArtifact) and e.path]
    assert all(os.path.isabs(e.path) for e in live)

    s = load(rec.path)
    assert s.warnings == [] and len(s.events) == len(raw)
    loaded = [e for e in s.events if isinstance(e, ev.CrashArtifact) and e.path]
    assert [Path(e.path) for e in loaded] == [Path(e.path).resolve() for e in live]
    assert all(Path(e.path).is_file() for e in loaded)
    crash = next(e for e in s.events if isinstance(e, ev.Crash))
    assert crash.signal == "SIGSEGV" and crash.threads == 2


def test_sessions_dir_comes_from_option_env_or_platform(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "from-env"))
    assert paths.session_dir(None) == tmp_path / "from-env"
    assert paths.session_dir(tmp_path / "opt") == tmp_path / "opt"
    rec = _recorder(None)
    _end(rec)
    assert rec.folder.parent == tmp_path / "from-env"
    monkeypatch.delenv(paths.ENV_VAR)
    assert paths.session_dir(None) == paths.default_session_dir()
    assert paths.default_session_dir().parts[-2:] == ("gpumon", "sessions")


def test_two_recorders_in_the_same_second_get_two_folders(tmp_path) -> None:
    a, b = _recorder(tmp_path), _recorder(tmp_path)
    _end(a), _end(b)
    assert a.folder != b.folder and a.session_id != b.session_id


def test_an_artifact_outside_the_folder_is_copied_in(tmp_path) -> None:
    outside = tmp_path / "Library" / "Logs" / "python-2026-01-01-120000.ips"
    outside.parent.mkdir(parents=True)
    outside.write_text('{"bug_type":"309"}\n...')
    rec = _recorder(tmp_path / "sessions")
    art = ev.CrashArtifact(crash_id="mlx-1-42", pool="mlx", kind="ips", path=str(outside))
    rec(art)
    rec(
        ev.CrashArtifact(
            crash_id="mlx-1-42",
            pool="mlx",
            kind="ips",
            path=str(tmp_path / "gone.ips"),
            note="late",
        )
    )
    _end(rec)
    assert art.path == str(outside)  # the caller's event is untouched
    arts = [e for e in load(rec.path).events if isinstance(e, ev.CrashArtifact)]
    copied = Path(arts[0].path)
    assert copied == rec.artifacts_dir.resolve() / "imported" / "mlx-1-42" / outside.name
    assert copied.read_text() == outside.read_text()
    # A file that cannot be copied is recorded with its path and a note saying why; reading
    # the log back, that path leaves the folder, so it is refused (never read by an export).
    raw = [json.loads(x) for x in rec.path.read_bytes().splitlines()]
    assert [a["path"] for a in raw if a.get("note", "").startswith("late")] == [
        str(tmp_path / "gone.ips")
    ]
    assert arts[1].path == ""
    assert arts[1].note.startswith("late; not copied into the session folder: ")
    assert "leaves the session folder: not read" in arts[1].note


def test_a_write_failure_stops_recording_once_and_says_why(tmp_path) -> None:
    rec = _recorder(tmp_path)
    assert rec._fd is not None
    os.close(rec._fd)  # the file descriptor goes bad under the recorder: a real EBADF
    with pytest.raises(RecorderError, match="Bad file descriptor") as raised:
        rec(ev.Notice(message="one"))
    assert raised.value.path == str(rec.path)
    rec(ev.Notice(message="two"))  # quiet from then on: the bus is not flooded
    assert rec.error is not None and "Bad file descriptor" in rec.error
    rec._fd = None
    _end(rec)


# ---- decimation ----------------------------------------------------------------------------
def _sample(pool: str, t: float, ops: list[int], **kw) -> ev.Sample:
    return ev.Sample(
        t=t,
        pool=pool,
        interval=0.1,
        threads=len(ops),
        ops=ops,
        flop_per_op=2.0,
        policy="per-thread",
        workload="matmul",
        lat_count=sum(ops),
        lat_hist={40 + i: n for i, n in enumerate(ops)},
        **kw,
    )


def _feed(rec: Recorder, events) -> None:
    for e in events:
        rec(e)


def test_every_sample_is_kept_during_the_first_minutes(tmp_path) -> None:
    rec = _recorder(tmp_path)  # default: full resolution for 300 s
    t0 = rec.start_t
    _feed(rec, [_sample("a", t0 + 0.1 * i, [10, 20]) for i in range(1, 51)])
    _end(rec)
    assert sum(isinstance(e, ev.Sample) for e in load(rec.path).events) == 50


def test_long_sessions_coalesce_samples_without_losing_ops(tmp_path) -> None:
    rec = _recorder(tmp_path, full_resolution=0.0, window=1.0)
    t0 = rec.start_t
    raw = [
        _sample(
            p,
            t0 + 0.1 * i,
            [i, 2 * i],
            mem={"active": 100 + (i % 7)},
            rss=1000 + i,
            cpu_percent=50.0 + i % 3,
        )
        for i in range(1, 101)
        for p in ("a", "b")
    ]
    hosts = [
        ev.HostSample(t=t0 + 0.25 * i, cpu_percent=10, mem_used=1, mem_total=2) for i in range(40)
    ]
    # The pools were just set to 2 threads: the first second after that stays unmerged.
    changes = [ev.Control(t=t0, pool=p, command=SetThreads(threads=2)) for p in ("a", "b")]
    _feed(rec, [*changes, *sorted([*raw, *hosts], key=lambda e: e.t)])
    _end(rec)
    s = load(rec.path)
    kept = [e for e in s.events if isinstance(e, ev.Sample)]
    # 10 s of 10 Hz samples: the first second as it came, then one per second per pool.
    assert len(kept) == 2 * (10 + 9)
    assert rec.merged == 2 * 81
    for pool in ("a", "b"):
        mine = [e for e in kept if e.pool == pool]
        src = [e for e in raw if e.pool == pool]
        assert [sum(x) for x in zip(*(e.ops for e in mine), strict=True)] == [
            sum(x) for x in zip(*(e.ops for e in src), strict=True)
        ]
        assert sum(e.interval for e in mine) == pytest.approx(10.0)
        assert sum(sum(e.lat_hist.values()) for e in mine) == sum(e.lat_count for e in src)
        assert max(e.mem["active"] for e in mine) == 106 and mine[-1].rss == 1100
    # The analysis of the coalesced log counts the same operations as the raw stream.
    measured = analysis.runs(s.events)
    assert [r.ops for r in measured] == [r.ops for r in analysis.runs([*changes, *raw])]
    assert measured[0].ops > 0.9 * sum(e.total_ops for e in raw if e.pool == "a")
    hs = [e for e in s.events if isinstance(e, ev.HostSample)]
    assert len(hs) == 10 and rec.host_dropped == 30


def test_the_samples_before_a_crash_are_written_unmerged(tmp_path) -> None:
    rec = _recorder(tmp_path, full_resolution=0.0, window=1.0)
    t0 = rec.start_t
    _feed(rec, [_sample("a", t0 + 0.1 * i, [5]) for i in range(1, 16)])  # 1 window + 5 pending
    crash = ev.Crash(
        t=t0 + 1.6,
        crash_id="a-1-1",
        pool="a",
        pid=1,
        signal="SIGSEGV",
        threads=1,
        uptime=1.6,
        ops_total=75,
        policy="per-thread",
        workload="matmul",
        backend="fault",
        device="cpu",
    )
    rec(crash)
    _end(rec)
    kinds = [(type(e).__name__, getattr(e, "interval", None)) for e in load(rec.path).events]
    assert kinds[1:-1] == [("Sample", pytest.approx(1.0)), *[("Sample", 0.1)] * 5, ("Crash", None)]


def test_a_change_of_shape_cuts_the_window(tmp_path) -> None:
    rec = _recorder(tmp_path, full_resolution=0.0, window=1.0)
    t0 = rec.start_t
    _feed(rec, [_sample("a", t0 + 0.1 * i, [5]) for i in range(1, 4)])
    _feed(rec, [_sample("a", t0 + 0.1 * i, [5, 5]) for i in range(4, 7)])  # 2 threads now
    _end(rec)
    kept = [e for e in load(rec.path).events if isinstance(e, ev.Sample)]
    assert [(e.threads, e.total_ops) for e in kept] == [(1, 15), (2, 30)]


def test_controls_and_lifecycle_are_never_dropped(tmp_path) -> None:
    rec = _recorder(tmp_path, full_resolution=0.0, window=10.0)
    t0 = rec.start_t
    others = [ev.Control(t=t0 + i, pool="a", command=Pause()) for i in range(50)]
    others += [ev.Notice(t=t0 + 0.01 * i, message=f"n{i}") for i in range(50)]
    _feed(rec, others)
    _end(rec)
    got = load(rec.path).events[1:-1]
    assert [msgspec.to_builtins(e) for e in got] == [msgspec.to_builtins(e) for e in others]
