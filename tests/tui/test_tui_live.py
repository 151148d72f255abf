"""End to end with real worker processes: keys in, real crashes out, nothing left behind."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psutil
import pytest

from gpumon import events as ev
from gpumon.spec import parse_pool
from gpumon.tui.app import GpumonApp, live_app
from gpumon.tui.screens.crash import CrashScreen
from gpumon.tui.source import LiveSource
from gpumon.tui.widgets.event_log import EventLog

from .helpers import ROOT, screen_text, wait_for

pytestmark = pytest.mark.timeout(180)


def gone(pids: list[int]) -> bool:
    return not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)


def panel_text(app: GpumonApp, pool: str) -> str:
    return "\n".join(t.plain for t in app.main.panels[pool]._lines)


def worker_pids(app: GpumonApp) -> list[int]:
    """Every process the pools run (workers and, where used, gdb around them)."""
    src = app.source
    assert isinstance(src, LiveSource) and src.session is not None
    pids = []
    for pool in src.session.supervisor.pools.values():
        w = pool.worker
        if w is not None:
            pids += [w.proc.pid, w.pid]
    return pids


async def test_fault_pool_crashes_at_two_threads_while_torch_carries_on(tmp_path: Path) -> None:
    pools = [parse_pool("fault,threads=1"), parse_pool("torch:cpu,size=64")]
    app = live_app(pools, session_dir=tmp_path, restart=False)
    answers: list[GpumonApp.CommandAnswered] = []

    def hook(message: object) -> None:
        if isinstance(message, GpumonApp.CommandAnswered):
            answers.append(message)

    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        fault, torch = app.state.pools["fault"], app.state.pools["torch:cpu"]
        await wait_for(lambda: fault.last and torch.last, 120, "samples from both pools")
        # A measured figure, not the "– ops/s" placeholder a pool shows before its samples.
        await wait_for(
            lambda: re.search(r"now\s+\d[\d.]* [kMG]?ops/s", panel_text(app, "torch:cpu")),
            10,
            "a measured ops/s figure on the torch panel",
        )

        await pilot.press("1", "plus")  # the fault pool, one more thread: armed at 2
        await wait_for(lambda: app.state.crashes, 30, "the crash")
        (rec,) = app.state.crashes.values()
        assert rec.crash.pool == "fault" and rec.crash.signal == "SIGSEGV"
        assert rec.crash.threads == 2
        assert app.state.pools["fault"].state == "crashed"
        log = app.main.query_one(EventLog)
        await wait_for(
            lambda: any(isinstance(log.event_at(i), ev.Crash) for i in range(log.option_count)),
            5,
            "the crash line",
        )

        # the other pool keeps measuring
        before = torch.ops_total
        await wait_for(lambda: torch.ops_total > before and torch.state == "running", 30)

        # the crash screen, with the stacks once they are attached
        await wait_for(lambda: rec.python is not None or rec.native is not None, 20, "stacks")
        await pilot.press("x")
        await wait_for(lambda: isinstance(app.screen, CrashScreen), 10)
        await wait_for(lambda: "fault_worker-" in screen_text(app), 20, "the crashed thread")
        text = screen_text(app)
        assert "SIGSEGV" in text and "Verdict:" in text and "SYNTHETIC" in text
        await pilot.press("escape")

        # threads changed while the pool is down: remembered for its next start
        await pilot.press("minus")
        await wait_for(lambda: any(a.op == "set_threads" for a in answers), 30)
        (answer,) = [a for a in answers if a.op == "set_threads"][-1:]
        assert answer.answer is not None and answer.answer.ok
        assert "1" in answer.answer.detail
        await wait_for(
            lambda: (
                "1 thread next start" in "\n".join(t.plain for t in app.main.panels["fault"]._lines)
            ),
            5,
        )

        # restart: a new worker, at the remembered thread count, and it stays up
        await pilot.press("r")
        await wait_for(
            lambda: (
                fault.state == "running"
                and fault.attempt == 2
                and fault.last
                and fault.last.threads == 1
            ),
            60,
            "the restarted pool",
        )
        pids = worker_pids(app)
        assert pids

        await pilot.press("q")
        await wait_for(lambda: app.return_code is not None, 40, "the app to exit")
    assert app.return_code == 0
    assert gone(pids), "a worker outlived the monitor"
    # the session log was closed cleanly and says so
    (log_file,) = tmp_path.glob("*/session.jsonl")
    last = json.loads(log_file.read_text().splitlines()[-1])
    assert last["type"] == "session_end" and last.get("reason", "quit") == "quit"


async def test_a_pool_that_cannot_start_says_why_and_the_others_carry_on() -> None:
    pools = [parse_pool("mlx:cuda"), parse_pool("fault,threads=1")]
    app = live_app(pools, record=False)
    async with app.run_test(size=(120, 36)) as pilot:
        mlx, fault = app.state.pools["mlx:cuda"], app.state.pools["fault"]
        await wait_for(lambda: mlx.state == "failed" and fault.last, 60)
        assert mlx.failure is not None
        # the panel catches up on the next refresh tick
        await wait_for(
            lambda: f"error    {mlx.failure.message}"[:40] in panel_text(app, "mlx:cuda"),
            10,
            "the failure in the panel",
        )
        assert "fix" in panel_text(app, "mlx:cuda")
        assert app.main.panels["mlx:cuda"].has_class("-alarm")
        pids = worker_pids(app)
        await pilot.press("q")
        await wait_for(lambda: gone(pids), 40)


def test_the_monitor_process_never_imports_torch_or_mlx() -> None:
    """Run the app with a real torch pool in a fresh interpreter and look at sys.modules."""
    probe = textwrap.dedent("""
        import asyncio, json, sys
        from gpumon.spec import parse_pool
        from gpumon.tui.app import live_app, replay_app

        async def main():
            app = live_app([parse_pool("torch:cpu,size=64"), parse_pool("mlx:cpu,size=64"),
                                  parse_pool("fault")], record=False)
            async with app.run_test(size=(120, 36)) as pilot:
                pools = app.state.pools.values()
                while not all(p.last or p.state == "failed" for p in pools):
                    await asyncio.sleep(0.1)
                states = {p.name: p.state for p in pools}
                await pilot.press("q")
                while app.is_running:
                    await asyncio.sleep(0.1)
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "mlx"))
            print(json.dumps({"states": states, "loaded": loaded}))

        asyncio.run(main())
    """)
    out = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=170,
        cwd=ROOT,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["states"]["torch:cpu"] == "running", result
    assert result["loaded"] == [], result["loaded"]


async def test_pool_keys_drive_a_real_torch_pool() -> None:
    app = live_app([parse_pool("torch:cpu,size=64")], record=False)
    answers: list[GpumonApp.CommandAnswered] = []

    def hook(message: object) -> None:
        if isinstance(message, GpumonApp.CommandAnswered):
            answers.append(message)

    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        torch = app.state.pools["torch:cpu"]
        await wait_for(lambda: torch.last is not None, 120, "torch samples")

        await pilot.press("t")  # the thread box opens with the current count selected
        await pilot.press("3", "enter")
        await wait_for(lambda: torch.last.threads == 3, 30, "3 threads")
        await wait_for(lambda: "3 threads" in panel_text(app, "torch:cpu"), 10, "the panel")

        await pilot.press("p")
        await wait_for(lambda: torch.state == "paused", 15, "paused")
        await pilot.press("p")
        await wait_for(lambda: torch.state == "running", 15, "resumed")

        # per-thread → shared is unavailable for torch on the CPU (it says why) → locked
        assert torch.ready is not None and torch.ready.policies["shared"]
        await pilot.press("c")
        await wait_for(lambda: torch.policy == "locked", 30, "the locked policy")

        await pilot.press("w")
        await wait_for(lambda: torch.workload == "mlp", 30, "the mlp workload")
        assert {a.op for a in answers} >= {
            "set_threads",
            "pause",
            "resume",
            "set_policy",
            "set_workload",
        }
        assert all(a.answer is not None and a.answer.ok for a in answers)
        pids = worker_pids(app)
        await pilot.press("q")
        await wait_for(lambda: app.return_code is not None, 40)
    assert gone(pids)


async def test_two_mlx_versions_side_by_side(tmp_path: Path, mlx_env) -> None:
    """`gpumon --pool mlx@0.31.1 --pool mlx --workload generate --threads 2`: the old release
    dies with SIGSEGV in its own env, the installed one carries on, each panel names the
    version its worker imported."""
    pytest.importorskip("mlx.core")
    mlx_env("0.31.1")
    pools = [
        parse_pool("mlx@0.31.1:cpu,workload=generate,threads=2,size=64,native=off"),
        parse_pool("mlx:cpu,workload=generate,threads=2,size=64,native=off"),
    ]
    app = live_app(pools, session_dir=tmp_path, restart=False)
    async with app.run_test(size=(160, 48)) as pilot:
        old, new = app.state.pools["mlx@0.31.1:cpu"], app.state.pools["mlx:cpu"]
        await wait_for(lambda: app.state.crashes and new.last, 120, "the old crash, new samples")
        (rec,) = app.state.crashes.values()
        assert rec.crash.pool == "mlx@0.31.1:cpu" and rec.crash.signal == "SIGSEGV"
        assert rec.crash.versions["mlx"] == "0.31.1" and rec.crash.policy == "shared"
        assert old.ready is not None and "mlx 0.31.1" in old.ready.env
        await pilot.pause(0.5)
        text = screen_text(app)
        assert "mlx 0.31.1" in text and "tokens/s" in text
        assert new.state == "running" and new.ready is not None and new.ready.env == ""
        before = new.ops_total
        await wait_for(lambda: new.ops_total > before, 30, "the current MLX to keep going")
