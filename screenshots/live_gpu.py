"""Screenshots of the live monitor on a real GPU host (the H200 ones in this folder).

    python3 screenshots/live_gpu.py OUTDIR

Three pools: torch on CUDA and MLX on its GPU, both at 4 threads with per-thread streams, and
an MLX pool on one shared stream (no lock), which dies and is restarted by the monitor again
and again (or loses a thread to a CUDA error). Saves `gpu-live.svg` (the three panels) and
`gpu-crash.svg` (the crash screen of the shared-stream pool), and records the session in
OUTDIR/sessions.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpumon.spec import parse_pool  # noqa: E402
from gpumon.tui.app import live_app  # noqa: E402
from gpumon.tui.screens.crash import CrashScreen  # noqa: E402


async def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"live_gpu.py: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def main(out: Path) -> None:
    specs = (
        os.environ.get("GPUMON_SHOT_POOLS")
        or "torch:cuda,threads=4;mlx:gpu,threads=4;"
        "mlx:gpu,name=mlx-shared,policy=shared,threads=8,native=off"
    ).split(";")
    pools = [parse_pool(s) for s in specs]
    first, second = pools[0].name, pools[1].name
    app = live_app(
        pools,
        session_dir=out / "sessions",
        restart=True,
        argv=["gpumon", *(f"--pool={p.name}" for p in pools)],
    )
    async with app.run_test(size=(160, 48)) as pilot:
        st = app.state.pools
        await wait_for(
            lambda: st.get(first) and st[first].last and st.get(second) and st[second].last,
            240,
            "the GPU pools",
        )
        # One shared stream fails one of two ways: the worker dies (SIGSEGV/SIGABRT) or a
        # thread gets a CUDA error as a Python exception; either is shown.
        shared = pools[2].name
        await wait_for(
            lambda: app.state.crashes or st[shared].thread_errors, 90, "the shared stream to fail"
        )
        await asyncio.sleep(15)  # history in the charts, a few crashes and restarts
        app.save_screenshot("gpu-live.svg", str(out))
        if not app.state.crashes:
            await pilot.press("q")
            return
        rec = next(iter(app.state.crashes.values()))
        await wait_for(lambda: rec.python is not None, 30, "the crash's stacks")
        await pilot.press("3", "x")
        await wait_for(lambda: isinstance(app.screen, CrashScreen), 10, "the crash screen")
        await pilot.pause(0.5)
        app.save_screenshot("gpu-crash.svg", str(out))
        await pilot.press("escape", "q")
        await wait_for(lambda: app.return_code is not None, 120, "the monitor to quit")
    print("crashes:", len(app.state.crashes))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
