"""Untrusted text stays inert: a log full of terminal escapes reaches no terminal raw.

The session log below carries what a hostile worker, crash report or hand-edited log can carry
(ESC/CSI, OSC 52 clipboard writes, BEL, C1 controls, bidi overrides) in every string a reader
shows: pool names, thread errors, notices, stderr, faulthandler text, crash-report thread names
and frames. Each front end — the Markdown and CSV exports, `gpumon sessions`, and the replayed
monitor — must show them as visible escapes.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon.crash.model import CrashReport, Frame, Thread
from gpumon.live_session import start_event
from gpumon.session.recorder import Recorder
from gpumon.spec import PoolConfig

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b31m\u202eevil"
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _log(root: Path) -> Path:
    host = msgspec.structs.replace(
        ev.HostInfo(
            hostname="h",
            user="u",
            home="/home/u",
            os="Linux",
            os_version="x",
            machine="x86_64",
            chip="cpu",
            cpu_count=2,
            mem_total=1,
            python="3.11",
        ),
        chip=f"chip{HOSTILE}",
    )
    rec = Recorder(root)
    rec(start_event(rec.session_id, "test", ["gpumon", HOSTILE], host))
    pool = f"p{HOSTILE}"
    cfg = PoolConfig(name=pool, backend="fault")
    report = CrashReport(
        format="faulthandler",
        signal="SIGSEGV",
        message=f"Fatal {HOSTILE}",
        crashed_thread_index=0,
        threads=[
            Thread(
                index=0,
                name=f"worker{HOSTILE}",
                crashed=True,
                frames=[Frame(index=0, symbol=f"fn{HOSTILE}", image="libx.so")],
            )
        ],
    )
    t = rec.start_t
    for e in [
        ev.PoolStarting(t=t + 0.1, pool=pool, config=cfg),
        ev.PoolReady(
            t=t + 0.2,
            pool=pool,
            pid=1,
            backend="fault",
            device="cpu",
            device_name=f"dev{HOSTILE}",
            device_reason=HOSTILE,
            framework=f"fw{HOSTILE}",
            size=64,
            dtype="float32",
            flop_per_op=0.0,
        ),
        ev.Sample(t=t + 0.3, pool=pool, interval=0.1, threads=1, ops=[5], flop_per_op=0.0),
        ev.ThreadFailed(t=t + 0.4, pool=pool, slot=0, error=f"RuntimeError: {HOSTILE}"),
        ev.Notice(t=t + 0.5, pool=pool, level="warning", message=f"notice {HOSTILE}"),
        ev.Crash(
            t=t + 0.6,
            crash_id="c-1",
            pool=pool,
            pid=1,
            signal="SIGSEGV",
            threads=1,
            uptime=0.4,
            ops_total=5,
            policy="per-thread",
            workload="matmul",
            backend="fault",
            device="cpu",
        ),
        ev.CrashArtifact(
            t=t + 0.7, crash_id="c-1", pool=pool, kind="faulthandler", text=HOSTILE, report=report
        ),
        ev.CrashArtifact(t=t + 0.7, crash_id="c-1", pool=pool, kind="stderr", text=HOSTILE),
        ev.CrashArtifact(t=t + 0.7, crash_id="c-1", pool=pool, kind="note", note=HOSTILE),
        ev.SessionEnd(t=t + 1.0, reason=HOSTILE),
    ]:
        rec(e)
    return rec.path


def _gpumon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args], capture_output=True, text=True, cwd=ROOT
    )


def test_the_log_really_holds_the_hostile_text(tmp_path: Path) -> None:
    raw = _log(tmp_path).read_text()
    assert "\\u001b]52" in raw  # JSON escapes it; every reader decodes it back to ESC


def test_exports_and_listings_show_escapes_never_obey_them(tmp_path: Path) -> None:
    log = _log(tmp_path / "sessions")
    for args in (
        ["export", str(log), "-f", "md"],
        ["export", str(log), "-f", "csv"],
        ["sessions", "--session-dir", str(tmp_path / "sessions")],
    ):
        r = _gpumon(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert not RAW.search(r.stdout), (args, repr(RAW.search(r.stdout)))
        assert not RAW.search(r.stderr), args
    md = _gpumon("export", str(log), "-f", "md").stdout
    assert "\\x1b]52;c;ZXZpbA==\\x07" in md and "\\u202eevil" in md  # shown, not lost


async def test_the_replayed_monitor_shows_escapes(tmp_path: Path) -> None:
    from gpumon.tui.app import replay_app
    from tests.tui.helpers import screen_text, wait_for

    log = _log(tmp_path)
    app = replay_app(log, paused=True, position=0.9)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(lambda: app.state.crashes, 10, "the replayed crash")
        await pilot.pause()
        text = screen_text(app)
        assert "\\x1b" in text and not RAW.search(text)
        app.open_crash("c-1")
        await pilot.pause(0.3)
        crash_screen = screen_text(app)
        assert "worker\\x1b" in crash_screen and not RAW.search(crash_screen)
