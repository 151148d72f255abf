"""Makes the SVG screenshots in this folder (embedded in docs/tui.md).

    python3 screenshots/make.py          # all of them
    python3 screenshots/make.py replay   # the ones whose name contains "replay"

`live-*` run the real monitor headless over real pools on this machine (a synthetic `fault`
pool and `torch:cpu`), drive it with the same keys a user presses, and save what it shows, so
they are real but differ run to run. The others replay the committed demo recording
(tests/fixtures/tui/demo) pinned to one moment, like the snapshot tests, so they only change
when the screens do.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)  # artifact folders are shown relative to the working directory

from gpumon.spec import parse_pool  # noqa: E402
from gpumon.tui.app import GpumonApp, live_app, replay_app  # noqa: E402
from gpumon.tui.screens.crash import CrashScreen  # noqa: E402

DEMO_LOG = ROOT / "tests" / "fixtures" / "tui" / "demo" / "session.jsonl"
# A real MLX abort on an NVIDIA H200, recorded by the session-log work (see its record.py).
H200_LOG = ROOT / "tests" / "fixtures" / "sessions" / "h200-mlx-shrink" / "session.jsonl"
# `gpumon run mlx-threads` on a 2-core CPU box: MLX 0.31.1 dies at 2 threads (gdb's stacks).
MLX_DEMO_LOG = ROOT / "tests" / "fixtures" / "tui" / "mlx-demo" / "session.jsonl"


async def wait_for(pred: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise SystemExit(f"make.py: timed out waiting for {what}")
        await asyncio.sleep(0.05)


def save(app: GpumonApp, name: str) -> None:
    app.save_screenshot(f"{name}.svg", str(HERE))
    print(f"screenshots/{name}.svg")


async def live(only: str) -> None:
    """Two real pools; then the fault pool is raised to 2 threads and crashes."""
    if only and "live" not in only and "crash" not in only:
        return
    with tempfile.TemporaryDirectory(prefix="gpumon-shots-") as tmp:
        pools = [parse_pool("fault"), parse_pool("torch:cpu,size=128")]
        app = live_app(pools, session_dir=Path(tmp), restart=False)
        async with app.run_test(size=(120, 36)) as pilot:
            fault, torch = app.state.pools["fault"], app.state.pools["torch:cpu"]
            await wait_for(lambda: fault.last and torch.last, 120, "both pools")
            await pilot.press("2", "plus")  # torch to 2 threads
            await asyncio.sleep(12)  # some history in the charts
            await pilot.press("1")
            await pilot.pause(0.3)
            if not only or "live" in only:
                save(app, "live-two-pools")
            await pilot.press("plus")  # the fault pool to 2 threads: it segfaults
            await wait_for(lambda: app.state.crashes, 30, "the crash")
            (rec,) = app.state.crashes.values()
            await wait_for(lambda: rec.native is not None and rec.text("stderr"), 20, "stacks")
            await pilot.press("x")
            await wait_for(lambda: isinstance(app.screen, CrashScreen), 5, "the crash screen")
            await pilot.pause(0.5)
            if not only or "crash" in only:
                save(app, "live-crash-screen")
            await pilot.press("escape", "q")
            await wait_for(lambda: app.return_code is not None, 60, "the monitor to quit")


async def pinned(
    name: str,
    position: float,
    size: tuple[int, int],
    only: str,
    keys: tuple[str, ...] = (),
    log: Path = DEMO_LOG,
) -> None:
    if only and only not in name:
        return
    if not log.is_file():
        print(f"make.py: {log} is missing; {name}.svg not made", file=sys.stderr)
        return
    app = replay_app(log, position=position, paused=True)
    async with app.run_test(size=size) as pilot:
        await wait_for(lambda: app.main.panels, 10, "the panels")
        await pilot.pause(0.3)
        if keys:
            await pilot.press(*keys)
            await pilot.pause(0.3)
        save(app, name)


async def main(only: str) -> None:
    steps: list[Awaitable[None]] = [
        live(only),
        pinned("replay-restarting", 11.8, (120, 36), only),
        pinned("replay-crash-screen", 18.0, (120, 36), only, ("x",)),
        pinned("small-80x24", 18.0, (80, 24), only),
        pinned("help", 9.5, (120, 36), only, ("question_mark",)),
        pinned("replay-h200-mlx-crash", 11.6, (120, 36), only, ("x",), H200_LOG),
        pinned("demo-mlx-0311-crash", 10.18, (160, 48), only, ("x",), MLX_DEMO_LOG),
        pinned("demo-mlx-threads", 10.18, (160, 48), only, (), MLX_DEMO_LOG),
    ]
    for step in steps:
        await step


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else ""))
