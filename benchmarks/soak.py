"""Survive N consecutive worker crashes with auto-restart; record each exactly once.

    python benchmarks/soak.py --crashes 200            # the brief's target
    python benchmarks/soak.py --crashes 200 --native gdb
    python benchmarks/soak.py --crashes 50 --kill-after 20   # then SIGKILL the monitor

A synthetic fault pool (2 threads, segfaults at once) restarts after every death with a short
backoff while a Recorder writes the session log. At the end the log is loaded back and checked:
N Crash events, numbered 1..N, unique ids, each with its artifacts, one restart per crash but
the last. With --kill-after K the soak runs in a child process that is killed with SIGKILL
after K crashes, and the log it left behind must still load with every complete event.
The short version runs in the test suite (tests/engine/test_soak.py).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def soak(crashes: int, native: str, session_dir: Path, announce: bool = False) -> Path:
    """Run until `crashes` crashes are recorded; returns the session log path."""
    from gpumon import events as ev
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool
    from gpumon.supervisor.backoff import RestartPolicy

    seen = 0

    def count(e: ev.Event) -> None:
        nonlocal seen
        if isinstance(e, ev.Crash):
            seen += 1
            if announce:
                print(f"CRASH {seen}", flush=True)

    spec = f"fault,threads=2,fault-rate=100,native={native}"
    async with open_session(
        [parse_pool(spec)],
        mode="soak",
        argv=sys.argv,
        session_dir=session_dir,
        restart=RestartPolicy(
            enabled=True,
            base_delay=0.02,
            max_delay=0.1,
            max_restarts=crashes - 1,
            loop_crashes=None,  # a crash storm is the point here
        ),
        listeners=[count],
        end_reason="soak finished",
    ) as session:
        if announce:
            print(f"LOG {session.log_path}", flush=True)
        pool = session.supervisor.pools["fault"]
        while seen < crashes or not pool.exited.is_set():
            await asyncio.sleep(0.02)
    assert session.log_path is not None
    return session.log_path


def check(log: Path, expected: int | None, killed: bool = False) -> dict[str, object]:
    """`killed`: the monitor died mid-session, so the last crash may lack its artifacts."""
    from gpumon import events as ev
    from gpumon.session.log import load

    s = load(log)
    crashes = [e for e in s.events if isinstance(e, ev.Crash)]
    ids = [c.crash_id for c in crashes]
    numbers = [c.crash_number for c in crashes]
    arts = {a.crash_id for a in s.events if isinstance(a, ev.CrashArtifact)}
    restarts = [e for e in s.events if isinstance(e, ev.PoolRestart)]
    need_artifacts = ids[:-1] if killed else ids
    ok = (
        len(set(ids)) == len(ids)
        and numbers == list(range(1, len(numbers) + 1))
        and all(i in arts for i in need_artifacts)
        and (expected is None or len(crashes) == expected)
    )
    return {
        "log": str(log),
        "events": len(s.events),
        "warnings": s.warnings,
        "crashes": len(crashes),
        "unique_ids": len(set(ids)),
        "restarts": len(restarts),
        "crashes_with_artifacts": sum(i in arts for i in ids),
        "ok": ok,
    }


def killed_run(crashes: int, kill_after: int, native: str, session_dir: Path) -> dict[str, object]:
    code = (
        f"import asyncio, sys; sys.path.insert(0, {str(ROOT)!r}); "
        f"sys.path.insert(0, {str(ROOT / 'benchmarks')!r}); import soak; "
        f"asyncio.run(soak.soak({crashes}, {native!r}, "
        f"__import__('pathlib').Path({str(session_dir)!r}), announce=True))"
    )
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    log = None
    for line in child.stdout:
        if line.startswith("LOG "):
            log = Path(line[4:].strip())
        if line.strip() == f"CRASH {kill_after}":
            break
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert log is not None
    time.sleep(0.5)  # orphaned workers exit by themselves; nothing more will be written
    result = check(log, None, killed=True)
    result["killed_after_crash"] = kill_after
    result["ok"] = bool(result["ok"]) and int(result["crashes"]) >= kill_after  # type: ignore[call-overload]
    return result


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--crashes", type=int, default=200)
    p.add_argument("--native", choices=("off", "gdb"), default="off")
    p.add_argument("--kill-after", type=int, default=None)
    p.add_argument("--session-dir", type=Path, default=None)
    args = p.parse_args()
    where = args.session_dir or Path(tempfile.mkdtemp(prefix="gpumon-soak-"))
    t0 = time.monotonic()
    if args.kill_after:
        result = killed_run(args.crashes, args.kill_after, args.native, where)
    else:
        result = check(asyncio.run(soak(args.crashes, args.native, where)), args.crashes)
    result["seconds"] = round(time.monotonic() - t0, 1)
    result["config"] = vars(args) | {"session_dir": str(where)}
    print(json.dumps(result, default=str))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
