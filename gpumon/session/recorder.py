"""Records one session's events to an append-only JSON Lines log that survives `kill -9`.

Durability: lines are written whole with `os.write` to a file opened with O_APPEND. Sample and
host-sample lines (nearly all of a log, up to thousands a second) are batched: they wait in
memory until `FLUSH_BYTES` have gathered, `FLUSH_EVERY` seconds have passed (a background
thread), or any other event is recorded — the batch and that event's line go out in one write,
so every other event is in the kernel once `__call__` returns, behind every sample before it.
A SIGKILL of the monitor can therefore lose at most the last batch of samples (≤ 0.2 s), never
a crash, a control or a lifecycle line; SessionEnd, `close()`, `flush()` and interpreter exit
write the batch. Crash and CrashArtifact lines (and the start and end lines) are also fsynced,
so the evidence survives a power cut or a kernel panic too. A kill can at worst tear the
write in progress; `gpumon.session.log.load` skips a torn last line and says so.

Disk bound (see docs/session-log.md, "Decimation"): every sample is kept for the first
`full_resolution` seconds. After that a pool's samples are *coalesced* into windows of at least
`window` seconds — ops summed, latency histograms merged, memory and RSS peaks kept — so no
operation is ever lost from the totals; host samples are thinned to one per window. The raw
samples still pending when any other event of that pool arrives (a crash, a stall, a control
change, a restart) are written unmerged first, and so are the samples of the `window` seconds
after it: the moments right before a crash and right after a change keep full resolution.
Crashes, controls and lifecycle events are never dropped or merged.

Artifact paths: a CrashArtifact whose file is outside the session folder (a macOS `.ips` in
~/Library) is copied into `artifacts/imported/`; paths inside the folder are written relative
to it, so a session folder can be moved, zipped and exported elsewhere.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path

import msgspec

from gpumon import events as ev
from gpumon import layout
from gpumon.bus import StreamWriteError
from gpumon.latency import hist_percentile, merge

FULL_RESOLUTION = 300.0  # seconds from the start during which every sample is written
WINDOW = 1.0  # afterwards: at most one sample line per pool (and host) per this many seconds
MAX_PENDING = 256  # samples held for one window, whatever their intervals claim
# Sample lines batched into one write: one os.write per sample line was half of the monitor's
# CPU while ingesting (docs/performance.md, "Issue 15"). What a SIGKILL can lose is bounded by
# both: at most FLUSH_EVERY seconds and FLUSH_BYTES of samples.
FLUSH_EVERY = 0.2
FLUSH_BYTES = 1 << 16


class RecorderError(StreamWriteError):
    """The log could not be written (disk full, folder removed); recording stopped."""


class Recorder:
    """A consumer of the bus that writes every event to `<folder>/session.jsonl`.

    `session_dir` is the sessions root (None: --session-dir / $GPUMON_SESSION_DIR / the
    platform default); the session gets its own folder inside it, and the workers' evidence
    goes to its `artifacts_dir`. gpumon.live_session wires it; SessionEnd closes it.
    """

    def __init__(
        self,
        session_dir: Path | None = None,
        *,
        full_resolution: float = FULL_RESOLUTION,
        window: float = WINDOW,
        flush_every: float = FLUSH_EVERY,
    ) -> None:
        """Create the session's folder and log file; raises RecorderError (one sentence) when
        the sessions dir cannot hold them. The first event given must be SessionStart."""
        self.full_resolution = full_resolution
        self.window = window
        root = layout.session_dir(session_dir)
        why = layout.check_writable_dir(root, "session dir")
        if why is not None:
            raise RecorderError(why, str(root))
        started = time.time()
        try:
            layout.make_private_dir(root)
            # A fresh id per attempt: two monitors started in the same second get two folders.
            while True:
                self.session_id = secrets.token_hex(6)
                self.folder = root / layout.folder_name(started, self.session_id)
                try:
                    self.folder.mkdir(mode=layout.DIR_MODE)
                    break
                except FileExistsError:
                    continue
            self.path = layout.log_path(self.folder)
            self.artifacts_dir = self.folder / layout.ARTIFACTS_NAME
            self.artifacts_dir.mkdir(mode=layout.DIR_MODE)
            self._fd: int | None = os.open(
                self.path,
                os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL | _O_CLOEXEC,
                layout.FILE_MODE,
            )
        except OSError as e:
            raise RecorderError(
                f"cannot create a session in {root}: {e.strerror or e}", str(root)
            ) from e
        self._lock = threading.Lock()
        self._closed = False
        self.error: str | None = None
        self.start_t = started
        self.lines = 0  # lines written
        self.bytes = 0
        self.merged = 0  # samples folded into a coalesced window (not lost: summed)
        self.host_dropped = 0  # host samples thinned away
        self.ignored = 0  # events given after close()
        self._pending: dict[str, list[ev.Sample]] = {}
        self._detail_until: dict[str, float] = {}
        self._last_host_t: float | None = None
        self._batch = bytearray()  # sample lines not yet written
        self.flush_every = flush_every
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        self._deferred: RecorderError | None = None  # the flusher's failure, for the next call
        self._pid = os.getpid()  # a forked child must not write the parent's batch at exit
        _open.add(self)

    # ---- the listener --------------------------------------------------------------
    def __call__(self, event: ev.Event) -> None:
        with self._lock:
            if self._closed:
                self.ignored += 1
                return
            if self._deferred is not None:  # the background flush failed: say so on the bus
                err, self._deferred = self._deferred, None
                raise err
            if isinstance(event, ev.Sample):
                self._sample(event)
            elif isinstance(event, ev.HostSample):
                self._host(event)
            elif isinstance(event, ev.SessionStart):
                self.start_t = event.t
                self._write(event, sync=True)
                _fsync_dir(self.folder)  # the name must survive a power cut, not just the data
            elif isinstance(event, ev.SessionEnd):
                self._end(event)
            else:
                pool = getattr(event, "pool", "")
                if pool:
                    # Whatever happens to a pool, its samples up to that moment come first,
                    # unmerged: the last second before a crash is what a maintainer reads.
                    self._flush_pool(pool, merged=False)
                    # And the window after it stays at full resolution too: a change's effect
                    # shows in the first samples, and the analysis's warm-up cut (0.3 s) must
                    # not swallow a whole merged window.
                    self._detail_until[pool] = event.t + self.window
                event = self._localise(event)
                self._write(event, sync=isinstance(event, (ev.Crash, ev.CrashArtifact)))

    def _end(self, end: ev.SessionEnd) -> None:
        """Pending samples first, then SessionEnd, then the file is closed."""
        try:
            for pool in list(self._pending):
                self._flush_pool(pool, merged=True)
            self._write(end, sync=True)
        finally:
            self._close_file()

    def close(self) -> None:
        """Write what is batched and close the file (SessionEnd closes it the normal way)."""
        with self._lock:
            self._close_file()

    def flush(self) -> None:
        """Write the batched sample lines now (before reading the live log, say)."""
        with self._lock:
            if not self._closed:
                self._flush()

    def _close_file(self) -> None:
        self._closed = True
        self._stop.set()
        _open.discard(self)
        with contextlib.suppress(RecorderError):
            self._flush()  # nothing recorded is lost on a normal exit
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    @property
    def closed(self) -> bool:
        return self._closed

    # ---- decimation ----------------------------------------------------------------
    def _decimating(self, t: float) -> bool:
        return t - self.start_t >= self.full_resolution

    def _sample(self, s: ev.Sample) -> None:
        pending = self._pending.get(s.pool)
        full = not self._decimating(s.t) or s.t <= self._detail_until.get(s.pool, s.t - 1)
        if full and not pending:
            self._write(s)
            return
        if pending and not _same_window_shape(pending[0], s):
            self._flush_pool(s.pool, merged=True)
            pending = None
        if pending is None:
            pending = self._pending[s.pool] = []
        pending.append(s)
        if sum(p.interval for p in pending) >= self.window - 1e-9 or len(pending) >= MAX_PENDING:
            self._flush_pool(s.pool, merged=True)

    def _flush_pool(self, pool: str, *, merged: bool) -> None:
        pending = self._pending.pop(pool, None)
        if not pending:
            return
        if merged:
            self.merged += len(pending) - 1
            self._write(coalesce(pending))
        else:
            for s in pending:
                self._write(s)

    def _host(self, h: ev.HostSample) -> None:
        if (
            self._decimating(h.t)
            and self._last_host_t is not None
            and h.t - self._last_host_t < self.window
        ):
            self.host_dropped += 1  # a snapshot, not a counter: thinning loses no total
            return
        self._last_host_t = h.t
        self._write(h)

    # ---- artifacts -----------------------------------------------------------------
    def _localise(self, e: ev.Event) -> ev.Event:
        """Never mutates `e` (the TUI holds the same object): returns a copy to write."""
        if isinstance(e, ev.CrashArtifact) and e.path:
            rel, note = self._adopt(Path(e.path), e.crash_id)
            if rel is None:
                return msgspec.structs.replace(e, note=_join(e.note, note))
            report = e.report
            if report is not None and report.source_path:
                src_rel = (
                    rel
                    if report.source_path == e.path
                    else self._relative(Path(report.source_path))
                )
                if src_rel is not None:
                    report = msgspec.structs.replace(report, source_path=src_rel)
            return msgspec.structs.replace(e, path=rel, report=report)
        if isinstance(e, ev.PoolReady | ev.Crash) and e.artifacts_dir:
            rel = self._relative(Path(e.artifacts_dir))
            if rel is not None:
                return msgspec.structs.replace(e, artifacts_dir=rel)
        return e

    def _relative(self, p: Path) -> str | None:
        try:
            return p.resolve().relative_to(self.folder.resolve()).as_posix()
        except (ValueError, OSError):
            return None

    def _adopt(self, src: Path, crash_id: str) -> tuple[str | None, str]:
        """(path relative to the folder, "") or (None, why it could not be brought in)."""
        rel = self._relative(src)
        if rel is not None:
            return rel, ""
        dest_dir = self.artifacts_dir / layout.IMPORTED / layout.safe_name(crash_id)
        dest = dest_dir / src.name
        try:
            layout.make_private_dir(dest_dir)
            shutil.copyfile(src, dest)
            os.chmod(dest, layout.FILE_MODE)
        except OSError as e:
            return None, f"not copied into the session folder: {e.strerror or e}"
        return dest.relative_to(self.folder).as_posix(), ""

    # ---- the file ------------------------------------------------------------------
    def _write(self, e: ev.Event, sync: bool = False) -> None:
        if self._fd is None or self.error is not None:
            return
        line = encode_line(e)
        self._batch += line
        self.lines += 1
        self.bytes += len(line)
        kind = type(e)
        if not sync and (kind is ev.Sample or kind is ev.HostSample):
            if len(self._batch) >= FLUSH_BYTES:
                self._flush()
            elif self._flusher is None:
                self._start_flusher()
            return
        self._flush(sync)  # the batch, then this line, in one write

    def _flush(self, sync: bool = False) -> None:
        if not self._batch or self._fd is None or self.error is not None:
            return
        try:
            view = memoryview(self._batch)
            try:
                while view:  # os.write may write less than asked (signals, some filesystems)
                    n = os.write(self._fd, view)
                    view = view[n:]
            finally:
                view.release()  # a bytearray with a live view cannot be resized
            del self._batch[:]
            if sync:
                os.fsync(self._fd)
        except OSError as err:
            self.error = f"{err.strerror or err}"
            # The bus turns this into one RecordingStopped event; later events are ignored
            # quietly (self.error says why) rather than failing the same way 10 times a second.
            raise RecorderError(self.error, str(self.path)) from err

    def _start_flusher(self) -> None:
        self._flusher = threading.Thread(
            target=self._flush_now_and_then, name="gpumon-recorder-flush", daemon=True
        )
        self._flusher.start()

    def _flush_now_and_then(self) -> None:
        """The batch's age bound: a quiet session's last samples do not wait for the next
        event. A failure is kept for the next `__call__`, which raises it on the bus."""
        while not self._stop.wait(self.flush_every):
            with self._lock:
                if self._closed:
                    return
                try:
                    self._flush()
                except RecorderError as err:
                    self._deferred = err
                    return


_open: weakref.WeakSet[Recorder] = weakref.WeakSet()  # recorders whose file is open


@atexit.register
def _flush_at_exit() -> None:
    """A monitor that ends without SessionEnd or close() (an uncaught exception, a script that
    forgot) still writes its last batch: only a kill can lose it."""
    for rec in list(_open):
        if rec._pid == os.getpid():
            with contextlib.suppress(Exception):
                rec.close()


def encode_line(e: ev.Event) -> bytes:
    """One log line. SessionStart always spells out `schema`: the event's default would be
    omitted by msgspec (omit_defaults), and a reader must never have to guess the version."""
    if isinstance(e, ev.SessionStart):
        d = msgspec.to_builtins(e)
        d = {"type": d.pop("type"), "schema": e.schema, **d}
        return msgspec.json.encode(d) + b"\n"
    return ev.encode(e) + b"\n"


def coalesce(samples: Sequence[ev.Sample]) -> ev.Sample:
    """One sample covering consecutive windows of one pool in one configuration."""
    if len(samples) == 1:
        return samples[0]
    last = samples[-1]
    ops = [sum(col) for col in zip(*(s.ops for s in samples), strict=True)]
    hist: dict[int, int] = {}
    mem: dict[str, int] = {}
    for s in samples:
        merge(hist, s.lat_hist)
        for k, v in s.mem.items():
            mem[k] = max(mem.get(k, v), v)  # a peak inside the window must not vanish
    interval = sum(s.interval for s in samples)
    cpu = [(s.cpu_percent, s.interval) for s in samples if s.cpu_percent is not None]
    cpu_weight = sum(w for _, w in cpu)
    lat_max = [s.lat_max for s in samples if s.lat_max is not None]
    rss = [s.rss for s in samples if s.rss is not None]
    gpu_mem = [s.gpu_mem for s in samples if s.gpu_mem is not None]
    return msgspec.structs.replace(
        last,
        interval=interval,
        ops=ops,
        lat_count=sum(s.lat_count for s in samples),
        lat_hist=hist,
        # Exact per-window percentiles cannot be combined; the merged histogram's (±4.5%)
        # are what `sweep` and the report use anyway.
        lat_p50=hist_percentile(hist, 50),
        lat_p99=hist_percentile(hist, 99),
        lat_max=max(lat_max) if lat_max else None,
        lat_every=max(s.lat_every for s in samples),
        mem=mem,
        cpu_percent=(sum(c * w for c, w in cpu) / cpu_weight) if cpu_weight > 0 else None,
        rss=max(rss) if rss else None,
        gpu_mem=max(gpu_mem) if gpu_mem else None,
    )


def _same_window_shape(a: ev.Sample, b: ev.Sample) -> bool:
    return (a.threads, a.policy, a.workload, a.state, len(a.ops), a.flop_per_op) == (
        b.threads,
        b.policy,
        b.workload,
        b.state,
        len(b.ops),
        b.flop_per_op,
    )


def _join(note: str, extra: str) -> str:
    return f"{note}; {extra}" if note and extra else note or extra


def _fsync_dir(folder: Path) -> None:
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
