"""Record a real MLX threading crash as a gpumon session (for the evidence report and replay).

    python benchmarks/record_mlx_crash.py --pool mlx:gpu --cycles 4 --session-dir out/

Each cycle grows the pool to `--high` threads, lets it run, then shrinks it to `--low`: on
MLX 0.32.4's CUDA backend shrinking from 8 threads to 1 killed the worker in 6 of 6 runs in the
brief's measurements. Auto-restart brings the pool back between cycles. The session log and
every artifact (faulthandler, stderr, native stacks) land in the session folder.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def record(args: argparse.Namespace) -> int:
    from gpumon import events as ev
    from gpumon.control import SetThreads
    from gpumon.live_session import open_session
    from gpumon.spec import parse_pool
    from gpumon.supervisor.backoff import RestartPolicy

    seen: list[ev.Event] = []

    def say(e: ev.Event) -> None:
        seen.append(e)
        if not isinstance(e, (ev.Sample, ev.HostSample)):
            print(
                f"  {type(e).__name__}: {getattr(e, 'pool', '')} "
                f"{getattr(e, 'signal', '') or getattr(e, 'detail', '') or ''}",
                flush=True,
            )

    pool = parse_pool(args.pool)
    name = pool.name
    async with open_session(
        [pool],
        mode="record",
        argv=["python", *sys.argv],
        session_dir=args.session_dir,
        restart=RestartPolicy(enabled=True, base_delay=0.5, max_delay=2.0),
        listeners=[say],
        end_reason="recording finished",
    ) as session:
        sup = session.supervisor
        for cycle in range(args.cycles):
            print(f"cycle {cycle + 1}: waiting for the pool", flush=True)
            for _ in range(1200):
                if sup.pools[name].state == "running":
                    break
                await asyncio.sleep(0.1)
            await sup.command(name, SetThreads(threads=args.high), source="cli")
            await asyncio.sleep(args.run)
            await sup.command(name, SetThreads(threads=args.low), source="cli")
            await asyncio.sleep(args.run)
    crashes = [e for e in seen if isinstance(e, ev.Crash)]
    print(
        f"session: {session.log_path}\ncrashes: {len(crashes)} "
        f"({', '.join(f'{c.signal or c.exit_code} during {c.during}' for c in crashes)})"
    )
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pool", default="mlx:gpu,size=4096,dtype=bfloat16")
    p.add_argument("--cycles", type=int, default=4)
    p.add_argument("--high", type=int, default=8)
    p.add_argument("--low", type=int, default=1)
    p.add_argument("--run", type=float, default=3.0, help="seconds at each thread count")
    p.add_argument("--session-dir", type=Path, default=None)
    return asyncio.run(record(p.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
