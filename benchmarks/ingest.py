"""How many worker messages a second can the monitor take in, and does its memory stay flat?

    python benchmarks/ingest.py --messages 200000

A real child process writes a Hello and then Sample messages (16 threads each) as fast as it
can on a real socketpair; the parent runs the real `Pool` reader (decode, psutil CPU/RSS of the
child per sample, event fan-out) with the real consumers attached: the `SessionState` the TUI
draws from and a `Recorder` writing the session log. 72,000 samples is one hour of a 2-pool,
10 Hz session, so the RSS readings at 10/50/100 % show whether memory grows with session length.
Target (docs/performance.md): >= 20,000 messages/s; RSS flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WRITER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from gpumon import protocol
    from gpumon.events import Sample
    fd, n = {fd}, {n}
    hello = protocol.Hello(protocol=protocol.PROTOCOL_VERSION, pid=os.getpid(), backend="fault",
        device="cpu", device_name="bench", device_reason="bench", framework="bench",
        size=64, dtype="float32", flop_per_op=0.0, threads=16)
    os.write(fd, protocol.encode(hello))
    batch = []
    for i in range(n):
        ops = [i % 97 + j for j in range(16)]
        s = Sample(t=0.0, pool="bench", interval=0.1, threads=16, ops=ops,
                   flop_per_op=0.0, lat_count=16, lat_p50=1e-3, lat_p99=2e-3, lat_max=3e-3,
                   lat_hist={{70: 10, 71: 6}}, mem={{"active": 1 << 20}}, mem_source="bench")
        batch.append(protocol.encode(s))
        if len(batch) == 256:
            os.write(fd, b"".join(batch)); batch = []
    os.write(fd, b"".join(batch))
""")


async def run(args: argparse.Namespace) -> dict[str, object]:
    from gpumon import events as ev
    from gpumon.bus import Bus
    from gpumon.live_session import start_event
    from gpumon.session.recorder import Recorder
    from gpumon.spec import parse_pool
    from gpumon.state import SessionState
    from gpumon.supervisor import capture
    from gpumon.supervisor.channel import Channel
    from gpumon.supervisor.pool import Pool, RestartPolicy, WorkerProcess

    tmp = Path(tempfile.mkdtemp(prefix="gpumon-ingest-"))
    state = SessionState()
    bus = Bus()
    rec = Recorder(tmp) if args.record else None
    if rec is not None:
        bus.subscribe(rec)
        bus.publish(start_event(rec.session_id, "benchmark", sys.argv))
    me = psutil.Process()
    marks: dict[str, int] = {}
    count = 0

    def listener(e: ev.Event) -> None:
        nonlocal count
        state.apply(e)
        if isinstance(e, ev.Sample):
            count += 1
            for frac in (0.1, 0.5, 1.0):
                if count == int(args.messages * frac):
                    marks[f"{int(frac * 100)}%"] = me.memory_info().rss

    bus.subscribe(listener)
    pool = Pool(parse_pool("fault,name=bench"), bus.publish, tmp, RestartPolicy())
    parent, child = socket.socketpair()
    code = WRITER.format(root=str(ROOT), fd=child.fileno(), n=args.messages)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, pass_fds=[child.fileno()]
    )
    child.close()
    reader, writer = await asyncio.open_unix_connection(sock=parent, limit=1 << 20)
    channel = Channel(reader, writer, lambda text: None)
    w = WorkerProcess(proc, channel, tmp, capture.NativePlan("none", "bench"), pid=proc.pid)
    t0, c0 = time.perf_counter(), time.process_time()
    async for msg in channel.messages():
        pool._handle(w, msg)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await proc.wait()
    bus.publish(ev.SessionEnd(reason="benchmark"))
    return {
        "messages": count,
        "seconds": round(elapsed, 3),
        "messages_per_s": round(count / elapsed),
        # Per CPU-second of the monitor process: what the wall rate would be on an idle core,
        # and not moved by other jobs on a shared machine.
        "messages_per_cpu_s": round(count / cpu),
        "recording": bool(args.record),
        "rss_mib": {k: round(v / (1 << 20), 1) for k, v in marks.items()},
        "log_bytes": rec.bytes if rec is not None else 0,
        "pid": os.getpid(),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--messages", type=int, default=200_000)
    p.add_argument("--no-record", dest="record", action="store_false")
    print(json.dumps(asyncio.run(run(p.parse_args()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
