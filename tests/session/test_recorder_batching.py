"""The recorder batches sample lines into one write; nothing recorded is lost on a normal exit,
and a crash or kill of the monitor loses at most the last batch of samples — never a crash,
control or lifecycle line, which are written (with every sample before them) at once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gpumon import events as ev
from gpumon.live_session import start_event
from gpumon.session.log import load
from gpumon.session.recorder import FLUSH_BYTES, Recorder
from tests.conftest import wait_until
from tests.test_folds import crash  # the suite's Crash event of a fault pool

ROOT = Path(__file__).resolve().parents[2]


def _sample(t: float, n: int = 16) -> ev.Sample:
    return ev.Sample(t=t, pool="p", interval=0.1, threads=n, ops=list(range(n)), flop_per_op=0.0)


def _lines(rec: Recorder) -> list[bytes]:
    return rec.path.read_bytes().splitlines()


def _recorder(tmp_path: Path, **kw) -> Recorder:
    rec = Recorder(tmp_path, **kw)
    rec(start_event(rec.session_id, "test", ["gpumon"]))
    return rec


def test_samples_wait_in_the_batch_and_any_other_event_writes_them_first(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=3600)  # no timer flush in this test
    t = rec.start_t
    for k in range(5):
        rec(_sample(t + k * 0.1))
    assert len(_lines(rec)) == 1  # only the start line: the samples are batched
    rec(ev.Notice(t=t + 1, pool="p", message="a notice"))  # not a sample: written at once
    lines = _lines(rec)
    assert len(lines) == 7 and b'"notice"' in lines[-1]  # in order, behind its samples
    assert rec.lines == 7
    rec.close()


def test_a_crash_line_is_never_batched(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=3600)
    rec(_sample(rec.start_t + 0.1))
    rec(crash(rec.start_t + 0.2))
    assert [x.split(b",")[0] for x in _lines(rec)[1:]] == [b'{"type":"sample"', b'{"type":"crash"']
    rec.close()


def test_a_full_batch_is_written_without_waiting(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=3600)
    k = 0
    while rec.bytes < 2 * FLUSH_BYTES:
        rec(_sample(rec.start_t + k * 0.1))
        k += 1
    on_disk = rec.path.stat().st_size
    assert FLUSH_BYTES <= on_disk <= rec.bytes  # at most one batch still in memory
    assert rec.bytes - on_disk < FLUSH_BYTES
    rec.close()
    assert rec.path.stat().st_size == rec.bytes


def test_the_timer_writes_a_quiet_sessions_last_samples(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=0.01)
    rec(_sample(rec.start_t + 0.1))
    wait_until(lambda: len(_lines(rec)) == 2, 30, "the timer's flush")
    rec.close()


def test_session_end_and_close_write_the_batch(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=3600)
    for k in range(3):
        rec(_sample(rec.start_t + k * 0.1))
    rec(ev.SessionEnd(t=rec.start_t + 1, reason="quit"))
    s = load(rec.path)
    assert [type(e) for e in s.events] == [ev.SessionStart, *[ev.Sample] * 3, ev.SessionEnd]
    rec2 = _recorder(tmp_path / "two", flush_every=3600)
    rec2(_sample(rec2.start_t + 0.1))
    rec2.close()
    assert len(_lines(rec2)) == 2
    assert rec2.path.stat().st_size == rec2.bytes


def test_flush_writes_now(tmp_path) -> None:
    rec = _recorder(tmp_path, flush_every=3600)
    rec(_sample(rec.start_t + 0.1))
    rec.flush()
    assert len(_lines(rec)) == 2
    rec.close()


def test_a_failed_timer_flush_stops_recording_on_the_next_event(tmp_path) -> None:
    from gpumon.session.recorder import RecorderError

    rec = _recorder(tmp_path, flush_every=0.01)
    assert rec._fd is not None
    os.close(rec._fd)  # the descriptor goes bad under the recorder: the timer's write fails
    rec(_sample(rec.start_t + 0.1))
    wait_until(lambda: rec.error is not None, 30, "the timer's failed write")
    with pytest.raises(RecorderError, match="Bad file descriptor"):
        rec(ev.Notice(message="next"))
    rec(ev.Notice(message="and quiet after"))
    rec._fd = None
    rec.close()


CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from gpumon import events as ev
    from gpumon.live_session import start_event
    from gpumon.session.recorder import Recorder

    how = sys.argv[2]
    rec = Recorder(Path(sys.argv[1]), flush_every=3600)  # only the events flush the batch
    print(rec.path, flush=True)
    rec(start_event(rec.session_id, "test", ["gpumon"]))
    t = rec.start_t
    def sample(k):
        return ev.Sample(t=t + k * 0.1, pool="p", interval=0.1, threads=4, ops=[1, 2, 3, 4],
                         flop_per_op=0.0)
    for k in range(50):
        rec(sample(k))
    rec(ev.Crash(t=t + 5, pool="p", crash_id="p-1", signal="SIGSEGV", pid=1, threads=4,
                 uptime=5.0, ops_total=500, policy="", workload="", backend="", device=""))
    for k in range(50, 60):
        rec(sample(k))  # the last batch: in memory only
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "raise":
        raise RuntimeError("the monitor failed")
    sys.exit(0)  # a normal exit without SessionEnd or close()
""")


@pytest.mark.parametrize("how", ["exit", "raise", "kill"])
def test_what_a_monitor_that_dies_leaves_in_the_log(tmp_path, how: str) -> None:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    p = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), how],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert p.returncode == (-signal.SIGKILL if how == "kill" else 1 if how == "raise" else 0)
    s = load(p.stdout.strip())
    assert s.warnings == []
    kinds = [type(e) for e in s.events]
    # Everything up to the crash line is there whatever happened: it flushed the batch.
    assert kinds[:52] == [ev.SessionStart, *[ev.Sample] * 50, ev.Crash]
    if how == "kill":
        assert kinds == kinds[:52]  # a SIGKILL loses the last batch (10 samples), no more
    else:
        assert kinds == kinds[:52] + [ev.Sample] * 10  # a normal exit loses nothing
