"""A Prometheus endpoint for a running session (`--metrics-port` on live, pipe and sweep).

Another consumer of the one event stream: the exporter is a bus listener that folds events
into per-pool figures with gpumon.figures (the fold `gpumon pipe` prints) and counts ops,
crashes, hangs and restarts as they happen. Gauges show the last closed interval (closed by
event time, so no timer is needed: samples arrive ~10/s, host samples once a second); counters
are cumulative per label set, so `rate(gpumon_ops_total[1m])` is right across policy changes.
Metric names and labels are documented in docs/metrics.md.

prometheus-client (`gpumon[metrics]`) serves it from its own registry (never the global one, so
nothing else in the process leaks into a scrape), on a daemon thread, bound to 127.0.0.1 unless
asked otherwise. A scrape reads a copy made under a lock; the bus thread never waits on HTTP.
gpumon aggregates nothing across machines: that is what Prometheus is for.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gpumon import events as ev
from gpumon.figures import STATES, LiveFigures, PoolFigures

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

INSTALL_HINT = "pip install 'gpumon[metrics]'"
POOL_LABELS = ("pool", "backend", "device", "version", "policy")
DEFAULT_ADDR = "127.0.0.1"


class MetricsError(Exception):
    """The endpoint cannot be served (prometheus-client missing, port taken); one sentence."""


Labels = tuple[str, str, str, str, str]


def _labels(f: PoolFigures) -> Labels:
    return (f.pool, f.backend, f.device, f.version, f.policy)


@dataclass
class _Counts:
    ops: dict[Labels, int] = field(default_factory=dict)
    crashes: dict[tuple[Labels, str], int] = field(default_factory=dict)
    hangs: dict[Labels, int] = field(default_factory=dict)
    restarts: dict[Labels, int] = field(default_factory=dict)

    @staticmethod
    def add(d: dict[Any, int], key: Any, n: int = 1) -> None:
        d[key] = d.get(key, 0) + n


class MetricsState:
    """The bus listener: what a scrape shows, kept up to date event by event."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self.figures = LiveFigures()
        self.counts = _Counts()
        self.last: list[PoolFigures] = []  # the last closed interval
        self.host: ev.HostSample | None = None
        self.start: ev.SessionStart | None = None
        self._window_end: float | None = None
        self._labels: dict[str, Labels] = {}
        self.lock = threading.Lock()

    def __call__(self, e: ev.Event) -> None:
        with self.lock:
            self._apply(e)

    def _apply(self, e: ev.Event) -> None:
        self.figures(e)
        pool = getattr(e, "pool", None)
        if isinstance(e, ev.SessionStart):
            self.start = e
        elif isinstance(e, ev.HostSample):
            self.host = e
        elif pool is not None and isinstance(
            e, ev.PoolStarting | ev.PoolReady | ev.Sample | ev.Control
        ):
            # The label set a pool's counts go to: refreshed only by events that can change it.
            labels = self._labels[pool] = (pool, *self.figures.identity(pool))
            # Counters exist from the start at 0, so increase() sees the first crash or hang.
            for d in (self.counts.ops, self.counts.hangs, self.counts.restarts):
                d.setdefault(labels, 0)
        key = self._labels.get(pool or "", (pool or "", "", "", "", ""))
        c = self.counts
        if isinstance(e, ev.Sample):
            c.add(c.ops, key, e.total_ops)
        elif isinstance(e, ev.Crash):
            why = e.signal or (f"exit {e.exit_code}" if e.exit_code is not None else "death")
            c.add(c.crashes, (key, why))
        elif isinstance(e, ev.Stall):
            c.add(c.hangs, key)
        elif isinstance(e, ev.PoolRestart):
            c.add(c.restarts, key)
        if self._window_end is None:
            self._window_end = e.t + self.interval
        elif e.t >= self._window_end:
            self.last = self.figures.roll()
            self._window_end = e.t + self.interval

    def families(self) -> list[Any]:
        """The metric families of one scrape (prometheus_client objects)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        with self.lock:
            last, counts, host, start = list(self.last), self.counts, self.host, self.start
            # the latest state and thread count, even between interval closes
            now = {f.pool: f for f in self.figures.peek()}
            ops = dict(counts.ops)
            crashes = dict(counts.crashes)
            hangs, restarts = dict(counts.hangs), dict(counts.restarts)
        closed = {f.pool: f for f in last}

        def gauge(name: str, doc: str, extra: tuple[str, ...] = ()) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, doc, labels=[*POOL_LABELS, *extra])

        out: list[Any] = []
        if start is not None:
            info = GaugeMetricFamily(
                "gpumon_session_info",
                "The gpumon session this endpoint belongs to (always 1).",
                labels=["session_id", "gpumon_version", "mode", "hostname"],
            )
            info.add_metric(
                [start.session_id, start.gpumon_version, start.mode, start.host.hostname], 1
            )
            out.append(info)
        up = gauge("gpumon_pool_up", "1 while the pool's worker runs (or is paused), else 0.")
        state = gauge(
            "gpumon_pool_state", "1 for the pool's current state, 0 for the others.", ("state",)
        )
        threads = gauge("gpumon_pool_threads", "Worker threads the pool runs.")
        for f in now.values():
            lab = list(_labels(f))
            up.add_metric(lab, 1.0 if f.up else 0.0)
            threads.add_metric(lab, f.threads)
            for s in STATES:
                state.add_metric([*lab, s], 1.0 if f.state == s else 0.0)
        out += [up, state, threads]

        rate = gauge(
            "gpumon_ops_per_second", "Ops completed per second over the last interval (worker)."
        )
        flops = gauge("gpumon_flop_per_second", "FLOP/s over the last interval (not for fault).")
        lat = gauge(
            "gpumon_op_latency_seconds",
            "Per-op latency over the last interval, from merged worker histograms (~9% buckets).",
            ("quantile",),
        )
        mem = gauge(
            "gpumon_framework_memory_bytes",
            "Framework allocator memory, peak in the last interval, by the framework's name.",
            ("kind",),
        )
        gpu_mem = gauge(
            "gpumon_gpu_memory_bytes",
            "GPU memory the driver says the worker process holds (NVML, by pid).",
        )
        cpu = gauge("gpumon_worker_cpu_percent", "Worker process CPU, percent of one core.")
        rss = gauge("gpumon_worker_rss_bytes", "Worker process resident memory, interval peak.")
        for f in closed.values():
            lab = list(_labels(f))
            if f.ops_per_s is not None:
                rate.add_metric(lab, f.ops_per_s)
            if f.flop_per_s is not None:
                flops.add_metric(lab, f.flop_per_s)
            for q, v in (("0.5", f.lat_p50_s), ("0.99", f.lat_p99_s)):
                if v is not None:
                    lat.add_metric([*lab, q], v)
            for kind, v in f.mem_bytes.items():
                mem.add_metric([*lab, kind], v)
            if f.gpu_mem_bytes is not None:
                gpu_mem.add_metric(lab, f.gpu_mem_bytes)
            if f.cpu_percent is not None:
                cpu.add_metric(lab, f.cpu_percent)
            if f.rss_bytes is not None:
                rss.add_metric(lab, f.rss_bytes)
        out += [rate, flops, lat, mem, gpu_mem, cpu, rss]

        def counter(name: str, doc: str, extra: tuple[str, ...] = ()) -> CounterMetricFamily:
            return CounterMetricFamily(name, doc, labels=[*POOL_LABELS, *extra])

        ops_c = counter("gpumon_ops", "Ops completed since the session started.")
        for lab_t, n in ops.items():
            ops_c.add_metric(list(lab_t), n)
        crash_c = counter("gpumon_crashes", "Worker deaths, by signal (or exit code).", ("signal",))
        for (lab_t, why), n in crashes.items():
            crash_c.add_metric([*lab_t, why], n)
        hang_c = counter("gpumon_hangs", "Workers that stopped answering (stalls).")
        for lab_t, n in hangs.items():
            hang_c.add_metric(list(lab_t), n)
        restart_c = counter("gpumon_restarts", "Automatic restarts after a crash.")
        for lab_t, n in restarts.items():
            restart_c.add_metric(list(lab_t), n)
        out += [ops_c, crash_c, hang_c, restart_c]
        out += _host_families(host)
        return out


def _host_families(host: ev.HostSample | None) -> list[Any]:
    from prometheus_client.core import GaugeMetricFamily

    if host is None:
        return []
    cpu = GaugeMetricFamily("gpumon_host_cpu_percent", "Whole machine CPU, 100 = all cores.")
    cpu.add_metric([], host.cpu_percent)
    mem = GaugeMetricFamily("gpumon_host_memory_used_bytes", "Machine memory in use.")
    mem.add_metric([], host.mem_used)
    out = [cpu, mem]
    if host.gpus:
        labels = ["gpu", "name"]
        util = GaugeMetricFamily(
            "gpumon_gpu_utilization_percent", "NVML GPU utilisation.", labels=labels
        )
        used = GaugeMetricFamily(
            "gpumon_gpu_memory_used_bytes", "NVML memory used on the GPU.", labels=labels
        )
        power = GaugeMetricFamily("gpumon_gpu_power_watts", "NVML power draw.", labels=labels)
        temp = GaugeMetricFamily(
            "gpumon_gpu_temperature_celsius", "NVML GPU temperature.", labels=labels
        )
        for i, g in enumerate(host.gpus):
            lab = [str(g.index if g.index is not None else i), g.name]
            for fam, v in (
                (util, g.util_percent),
                (used, g.mem_used),
                (power, g.power_w),
                (temp, g.temperature_c),
            ):
                if v is not None:
                    fam.add_metric(lab, v)
        out += [util, used, power, temp]
    return out


class _Collector:
    def __init__(self, state: MetricsState) -> None:
        self.state = state

    def collect(self) -> Iterator[Any]:
        yield from self.state.families()


class Exporter:
    """The HTTP endpoint. `start()` binds (raising MetricsError), `stop()` shuts it down."""

    def __init__(self, port: int, addr: str = DEFAULT_ADDR, interval: float = 1.0) -> None:
        self.state = MetricsState(interval)
        self.requested = (addr, port)
        self.server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def listener(self) -> MetricsState:
        return self.state

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        addr = self.requested[0]
        host = f"[{addr}]" if ":" in addr else addr
        return f"http://{host}:{self.port}/metrics"

    def start(self) -> Exporter:
        try:
            from prometheus_client import CollectorRegistry, make_wsgi_app
            from prometheus_client.exposition import ThreadingWSGIServer
        except ImportError:
            raise MetricsError(f"--metrics-port needs prometheus-client: {INSTALL_HINT}") from None
        from wsgiref.simple_server import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass  # a scrape every 15 s must not scribble on the TUI or the pipe

        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Collector(self.state))
        addr, port = self.requested
        try:
            family = socket.getaddrinfo(addr, port, type=socket.SOCK_STREAM)[0][0]
        except (socket.gaierror, UnicodeError) as e:
            raise MetricsError(f"--metrics-addr {addr!r} is not an address here: {e}") from None

        class Server(ThreadingWSGIServer):
            address_family = family

        try:
            self.server = make_server(
                addr, port, make_wsgi_app(registry), Server, handler_class=Quiet
            )
        except OSError as e:
            raise MetricsError(
                f"cannot serve metrics on {addr}:{port}: {e.strerror or e}"
                + (" (choose another --metrics-port)" if e.errno == errno.EADDRINUSE else "")
            ) from None
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="gpumon metrics", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
