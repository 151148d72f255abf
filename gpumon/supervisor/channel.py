"""The monitor's end of one worker's message socket: reading lines, and commands with timeouts.

Lines are decoded into protocol messages; what cannot be decoded is garbage, counted and
reported at a bounded rate (a worker spraying bytes must not flood the session log). A command
waits for its Ack with a timeout that depends on what it asks, and never hangs on a dead worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import AsyncIterator, Callable

import msgspec

from gpumon import protocol
from gpumon.control import SetPolicy, SetThreads, SetWorkload, Stop, WorkerCommand

COMMAND_TIMEOUT = 5.0
START_COMMAND_TIMEOUT = 120.0  # a command sent while torch is still importing waits for it
JOIN_EXTRA = 15.0  # commands that join worker threads wait for their current op
NOISE_SHOWN = 3  # unreadable lines reported one by one; the rest are counted
NOISE_EVERY = 5.0  # seconds between "N more unreadable lines" notices


def timeout_for(cmd: WorkerCommand, starting: bool) -> float:
    base = START_COMMAND_TIMEOUT if starting else COMMAND_TIMEOUT
    if isinstance(cmd, (SetThreads, Stop, SetWorkload, SetPolicy)):
        base += JOIN_EXTRA
    return base


class NoiseCounter:
    """Unreadable worker output, reported without flooding: the first few lines in full, then a
    count at most every NOISE_EVERY seconds (`report` returns the notice text, or "")."""

    def __init__(self) -> None:
        self.count = 0
        self.reported = 0
        self.last_report = 0.0

    def add(self, line: bytes, now: float) -> str:
        self.count += 1
        if self.count <= NOISE_SHOWN:
            self.reported = self.count
            self.last_report = now
            shown = line[:80].decode(errors="replace").rstrip()
            return f"unreadable line #{self.count} from the worker ignored: {shown!r}"
        if now - self.last_report >= NOISE_EVERY:
            return self.flush(now)
        return ""

    def flush(self, now: float) -> str:
        """The count of lines not yet reported, or "" when there are none."""
        new = self.count - self.reported
        if new <= 0:
            return ""
        self.reported, self.last_report = self.count, now
        return f"{new} more unreadable lines from the worker ignored ({self.count} in all)"


class Channel:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_noise: Callable[[str], None],
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.on_noise = on_noise
        self.noise = NoiseCounter()
        self.last_msg = time.monotonic()
        self.gap = 0.0  # the silence before the latest message, in seconds
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[protocol.Ack | None]] = {}
        self._on_ack: dict[int, Callable[[protocol.Ack], None]] = {}

    async def messages(self) -> AsyncIterator[msgspec.Struct]:
        """Decoded messages until the worker (and gdb) close the socket."""
        while True:
            try:
                line = await self.reader.readline()
            except (ValueError, asyncio.LimitOverrunError):
                # Over-long line: not ours. Skip to the next newline and keep going.
                self._garbage(b"<line longer than 1 MiB>")
                with contextlib.suppress(
                    ValueError, asyncio.LimitOverrunError, asyncio.IncompleteReadError
                ):
                    await self.reader.readuntil(b"\n")
                continue
            except ConnectionError:
                break
            if not line:
                break  # EOF
            now = time.monotonic()
            self.gap, self.last_msg = now - self.last_msg, now
            try:
                msg = protocol.decode_worker(line)
            except (msgspec.DecodeError, msgspec.ValidationError):
                self._garbage(line)
                continue
            if isinstance(msg, protocol.Ack):
                # Before the next line is read: a death the command caused comes after its Ack
                # on the socket, and the events must keep that order.
                if (hook := self._on_ack.pop(msg.id, None)) is not None:
                    hook(msg)
                fut = self._pending.pop(msg.id, None)
                if fut is not None and not fut.done():
                    fut.set_result(msg)
                continue
            yield msg
        if text := self.noise.flush(time.monotonic()):
            self.on_noise(text)

    def _garbage(self, line: bytes) -> None:
        if text := self.noise.add(line, time.monotonic()):
            self.on_noise(text)

    async def request(
        self,
        cmd: WorkerCommand,
        timeout: float,
        on_ack: Callable[[protocol.Ack], None] | None = None,
    ) -> protocol.Ack | str:
        """Send a command and wait for its Ack; a str says why there is none. `on_ack` runs
        as the Ack is read, before any message the worker sent after it is handled."""
        cid = next(self._ids)
        fut: asyncio.Future[protocol.Ack | None] = asyncio.get_running_loop().create_future()
        self._pending[cid] = fut
        if on_ack is not None:
            self._on_ack[cid] = on_ack
        try:
            self.writer.write(protocol.encode(protocol.Request(id=cid, command=cmd)))
            await self.writer.drain()
        except (ConnectionError, OSError):
            self._pending.pop(cid, None)
            self._on_ack.pop(cid, None)
            return "worker is gone"
        try:
            ack = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            self._pending.pop(cid, None)
            self._on_ack.pop(cid, None)
            return f"no answer from the worker in {timeout:.0f} s (stalled?)"
        return ack if ack is not None else "worker died before answering"

    def close(self) -> None:
        """The worker is gone: every command still waiting gets "died before answering"."""
        for fut in self._pending.values():
            if not fut.done():
                fut.set_result(None)
        self._pending.clear()
        self._on_ack.clear()
