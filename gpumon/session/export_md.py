"""Markdown export: the evidence report a framework maintainer can act on.

It states what the session measured and captured, and nothing it cannot support: environment
and versions (as the pools loaded them), the command that started the session and the changes
made during it, throughput vs threads and crash rates from gpumon.analysis (the same numbers as
`gpumon sweep` and the live screen), and for each distinct crash signature the verdict line and
the stacks as gpumon.crash.render prints them (crashed thread first, driver and framework
frames marked). Every figure carries its unit and its source. The output depends only on the
log (UTC times, paths relative to the session folder), so it is the same bytes wherever and
whenever it is exported.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from gpumon import analysis, control, sanitize
from gpumon import events as ev
from gpumon.crash.model import SYSTEM, UNKNOWN
from gpumon.fmt import duration, nbytes, plural, seconds, si
from gpumon.session.log import LoadedSession
from gpumon.session.times import utc_human
from gpumon.state import CrashRecord, SessionState

# The fault backend's own words for itself (PoolReady.framework); repeated wherever it appears
# so no reader mistakes a synthetic crash for a framework bug.
SYNTHETIC = "synthetic (fault backend)"
TIMELINE_MAX = 200  # rows; a long session's timeline is cut, with a count of the rest
STDERR_LINES = 30
SIGNATURE_FRAMES = 3  # crashed-thread frames that, with the signal, identify a signature


@dataclass
class _Signature:
    key: tuple[str, tuple[str, ...]]
    records: list[CrashRecord] = field(default_factory=list)


def export_md(session: LoadedSession) -> str:
    r = _Report(session)
    return r.render()


class _Report:
    def __init__(self, session: LoadedSession) -> None:
        self.s = session
        self.t0 = session.first_t
        self.ready: dict[str, list[ev.PoolReady]] = {}
        self.backend: dict[str, str] = {}
        # The screen's own reducer gathers each crash with its artifacts, so the report and
        # the crash screen cannot pair them differently.
        state = SessionState()
        for e in session.events:
            state.apply(e)
            if isinstance(e, ev.PoolStarting):
                self.backend.setdefault(e.pool, e.config.backend)
            elif isinstance(e, ev.PoolReady):
                self.ready.setdefault(e.pool, []).append(e)
                self.backend[e.pool] = e.backend
        self.crashes: dict[str, CrashRecord] = state.crashes
        self.cells = analysis.cells(analysis.runs(session.events))
        self.out: list[str] = []

    # ---- helpers -------------------------------------------------------------------
    def rel(self, t: float) -> str:
        return f"+{t - self.t0:.3f} s"

    def pool(self, name: str) -> str:
        """`fault` — synthetic (fault backend), wherever a fault pool is named."""
        label = f"`{name}`"
        if self.backend.get(name) == "fault":
            label += f" — {SYNTHETIC}"
        return label

    def add(self, *lines: str) -> None:
        self.out.extend(lines)

    def render(self) -> str:
        self.header()
        self.environment()
        self.reproduce()
        self.throughput()
        self.crash_rates()
        self.crash_signatures()
        self.stalls()
        self.other_events()
        text = "\n".join(self.out).rstrip("\n") + "\n"
        return text

    # ---- sections ------------------------------------------------------------------
    def header(self) -> None:
        s, start, end = self.s, self.s.start, self.s.end
        self.add(
            "# gpumon evidence report",
            "",
            f"Session `{start.session_id}`, recorded {utc_human(start.t)} for "
            f"{duration(s.duration)} by gpumon {start.gpumon_version} (mode: {start.mode}). "
            f"Log: `{s.folder.name}/{s.path.name}` (schema {start.schema}, "
            f"{plural(len(s.events), 'event')}).",
            "",
        )
        if end is None:
            self.add(
                "The log ends without a session_end event: the monitor was killed, or was "
                "still running when this report was made.",
                "",
            )
        if s.warnings:
            self.add("Log warnings (the loader skipped what it could not read):", "")
            self.add(*[f"- {w}" for w in s.warnings], "")
        self.add(
            "Everything below was measured or captured in this session, on this machine; "
            "the report draws no conclusion beyond it.",
            "",
        )

    def environment(self) -> None:
        h = self.s.start.host
        fw = ", ".join(f"{k} {v}" for k, v in sorted(h.frameworks.items())) or "none found"
        self.add("## Environment", "")
        self.add(
            *_table(
                ["Machine", "As recorded when the session started"],
                [
                    ["Host", h.hostname],
                    ["OS", f"{h.os_version} ({h.os}, {h.machine})"],
                    ["Chip", h.chip],
                    [
                        "CPU cores, memory",
                        f"{plural(h.cpu_count, 'core')}, {nbytes(h.mem_total)} (psutil)",
                    ],
                    ["GPUs", ", ".join(h.gpus) or "none found"],
                    ["Python (monitor)", h.python],
                    ["Frameworks installed (package metadata, monitor side)", fw],
                ],
            ),
            "",
        )
        rows: list[list[str]] = []
        seen: set[tuple[object, ...]] = set()
        for name, readies in self.ready.items():
            for r in readies:
                key = (
                    name,
                    r.backend,
                    r.device,
                    r.device_name,
                    r.framework,
                    tuple(sorted(r.versions.items())),
                    r.native_capture,
                )
                if key in seen:
                    continue  # a restart that came back the same is not a new fact
                seen.add(key)
                versions = ", ".join(f"{k} {v}" for k, v in sorted(r.versions.items()))
                rows.append(
                    [
                        self.pool(name),
                        f"{r.backend}:{r.device} — {r.device_name}",
                        r.device_reason,
                        r.framework,
                        versions or "—",
                        r.native_capture or "—",
                    ]
                )
        self.add("### Pools as the workers loaded them", "")
        if rows:
            self.add(
                *_table(
                    [
                        "Pool",
                        "Device",
                        "Chosen because",
                        "Framework as loaded",
                        "Versions (worker)",
                        "Native stacks on a crash",
                    ],
                    rows,
                ),
                "",
            )
        else:
            self.add("No pool reported ready in this session.", "")
        failed = [e for e in self.s.events if isinstance(e, ev.PoolFailed)]
        if failed:
            self.add("Pools that could not start:", "")
            self.add(
                *[
                    f"- {self.pool(e.pool)} ({self.rel(e.t)}): {e.message}"
                    + (f" — fix: {e.fix}" if e.fix else "")
                    for e in failed
                ],
                "",
            )

    def reproduce(self) -> None:
        start = self.s.start
        self.add("## Reproduce", "", "The command that started this session:", "", "```sh")
        if start.cwd and start.cwd != "?":
            self.add(f"cd {shlex.quote(start.cwd)}")
        self.add(command_line(start.argv), "```", "")
        rows = [row for e in self.s.events if (row := self.timeline_row(e)) is not None]
        if not rows:
            return
        self.add("What happened after it started (controls, crashes, restarts, in order):", "")
        shown = rows[:TIMELINE_MAX]
        self.add(*_table(["Time", "Pool", "Event", "Detail"], shown))
        if len(rows) > TIMELINE_MAX:
            self.add("", f"… and {len(rows) - TIMELINE_MAX} more (see the log).")
        self.add("")

    def timeline_row(self, e: ev.Event) -> list[str] | None:
        t = self.rel(e.t)
        if isinstance(e, ev.Control):
            result = ("ok" if e.ok else "refused") + (f": {e.detail}" if e.detail else "")
            return [
                t,
                self.pool(e.pool),
                control.describe(e.command),
                f"{result} (from {e.source})",
            ]
        if isinstance(e, ev.PoolReady):
            return [t, self.pool(e.pool), "ready", f"pid {e.pid}, {e.size} {e.dtype}"]
        if isinstance(e, ev.Crash):
            how = e.signal or f"exit code {e.exit_code}"
            return [
                t,
                self.pool(e.pool),
                f"crash {how}",
                f"`{e.crash_id}` at {plural(e.threads, 'thread')}, {e.policy}, during "
                f"{e.during}, {e.uptime:.3f} s after ready",
            ]
        if isinstance(e, ev.PoolRestart):
            return [
                t,
                self.pool(e.pool),
                "restart",
                f"attempt {e.attempt} after {e.delay:g} s backoff ({plural(e.crashes, 'crash')}"
                " so far)",
            ]
        if isinstance(e, ev.Stall):
            return [
                t,
                self.pool(e.pool),
                "stall",
                f"no message for {e.silent_for:.1f} s at {plural(e.threads, 'thread')}",
            ]
        if isinstance(e, ev.PoolFailed):
            return [t, self.pool(e.pool), "failed", e.message]
        if isinstance(e, ev.PoolStopped):
            return [t, self.pool(e.pool), "stopped", e.reason]
        if isinstance(e, ev.SessionEnd):
            return [t, "", "session end", e.reason]
        return None

    def throughput(self) -> None:
        cells = self.cells
        self.add("## Throughput vs threads", "")
        if not cells:
            self.add("No measured samples in this session.", "")
            return
        mem_sources = _mem_sources(self.s.events)
        for (pool, policy), group in _by_pool_policy(cells).items():
            first = group[0].first
            self.add(
                f"### Pool {self.pool(pool)}, policy `{policy}` ({first.backend}:{first.device})",
                "",
            )
            rows = []
            for c in group:
                r = c.first
                rng = c.ops_per_s_range
                ops = si(c.ops_per_s, "ops/s")
                if rng and len(c.measured) > 1:
                    ops += f" [{si(rng[0], '')}–{si(rng[1], '')}]".replace(" ]", "]")
                if r.backend == "fault":
                    flops = "n/a (synthetic)"
                elif c.flops is None:
                    flops = "—"
                else:
                    flops = si(c.flops, "FLOP/s")
                mem = ", ".join(f"{k} {nbytes(v)}" for k, v in sorted(c.mem_peak.items()))
                rows.append(
                    [
                        str(r.threads),
                        f"{r.workload} {r.size} {r.dtype}",
                        str(len(c.runs)),
                        duration(sum(x.seconds for x in c.runs)),
                        ops if c.ops_per_s is not None else "—",
                        flops,
                        seconds(c.latency(50)),
                        seconds(c.latency(99)),
                        mem or "—",
                        nbytes(c.rss_peak) if c.rss_peak else "—",
                    ]
                )
            self.add(
                *_table(
                    [
                        "Threads",
                        "Workload",
                        "Runs",
                        "Measured",
                        "ops/s (median)",
                        "FLOP/s (median)",
                        "Latency p50",
                        "Latency p99",
                        "Framework memory peak",
                        "RSS peak",
                    ],
                    rows,
                ),
                "",
            )
            src = mem_sources.get(pool)
            self.add(
                "Source: ops counted by the worker threads over the measured windows of each "
                f"run (the first {analysis.WARMUP:g} s after a start or change are not "
                "measured); a run is one configuration until it changes, stops or crashes; "
                "ops/s is the median over runs [min–max]. FLOP/s = ops/s × the workload's "
                "analytic FLOP count per op. Latency: wall time per op in the worker, "
                "percentiles of the merged log histogram (±4.5%). Framework memory: "
                f"{src or 'none reported'}. RSS: whole worker process (psutil).",
                "",
            )

    def crash_rates(self) -> None:
        cells = self.cells
        if not cells:
            return
        self.add("## Crash rate per thread count", "")
        rows = []
        for c in cells:
            r = c.first
            signals: dict[str, int] = {}
            for run in c.runs:
                if run.crashed:
                    sig = run.crash_signal or "unknown"
                    signals[sig] = signals.get(sig, 0) + 1
            after = c.first_crash_after
            rows.append(
                [
                    self.pool(r.pool),
                    r.policy,
                    f"{r.workload} {r.size} {r.dtype}",
                    str(r.threads),
                    f"{c.crashes} / {len(c.runs)}",
                    f"{after:.3f} s" if after is not None else "—",
                    ", ".join(f"{k} ×{n}" for k, n in sorted(signals.items())) or "—",
                ]
            )
        self.add(
            *_table(
                [
                    "Pool",
                    "Policy",
                    "Workload",
                    "Threads",
                    "Crashes / runs",
                    "Time to first crash",
                    "Signals",
                ],
                rows,
            ),
            "",
        )
        self.add(
            "A run is one pool configuration from its start (or the change that began "
            "it) to the next change, a stop or a crash; the time to first crash is "
            "measured from that start.",
            "",
        )

    def crash_signatures(self) -> None:
        if not self.crashes:
            self.add("## Crashes", "", "No worker crashed in this session.", "")
            return
        sigs: dict[tuple[str, tuple[str, ...]], _Signature] = {}
        for rec in self.crashes.values():
            key = signature(rec)
            sigs.setdefault(key, _Signature(key)).records.append(rec)
        self.add(
            "## Crashes",
            "",
            f"{plural(len(self.crashes), 'crash')}, "
            f"{plural(len(sigs), 'distinct signature')} (signal + the crashed thread's top "
            f"{SIGNATURE_FRAMES} non-system frames).",
            "",
        )
        for n, sig in enumerate(sigs.values(), start=1):
            self.signature_section(n, sig)

    def signature_section(self, n: int, sig: _Signature) -> None:
        head, frames = sig.key
        where = f" in {frames[0]}" if frames else ""
        pools = sorted({r.crash.pool for r in sig.records})
        self.add(f"### Signature {n}: {head}{where} — {plural(len(sig.records), 'crash')}", "")
        self.add("Pools: " + ", ".join(self.pool(p) for p in pools), "")
        self.add(
            *_table(
                [
                    "Crash",
                    "Time",
                    "Pool",
                    "Threads",
                    "Policy",
                    "Workload",
                    "Up for",
                    "Ops before",
                    "Detected by",
                    "During",
                ],
                [
                    [
                        f"`{c.crash_id}`",
                        self.rel(c.t),
                        self.pool(c.pool),
                        str(c.threads),
                        c.policy,
                        c.workload,
                        f"{c.uptime:.3f} s",
                        str(c.ops_total),
                        c.detected_by,
                        c.during,
                    ]
                    for c in (r.crash for r in sig.records)
                ],
            ),
            "",
        )
        first = sig.records[0]
        native, python = first.native, first.python
        report = native or python
        self.add(
            f"Stacks of the first occurrence (`{first.crash.crash_id}`, pid {first.crash.pid}):", ""
        )
        if report is not None:
            from gpumon.crash.render import markdown_summary

            self.add(
                markdown_summary(
                    self.s.portable_report(report),
                    self.s.portable_report(python)
                    if native is not None and python is not None
                    else None,
                ).rstrip("\n"),
                "",
            )
        else:
            self.add(f"**Verdict:** {head}; no stacks were captured.", "")
        notes = [a.note for a in first.artifacts if a.note]
        if notes:
            self.add("Capture notes:", "", *[f"- {sanitize.md_cell(x)}" for x in notes], "")
        stderr = first.text("stderr")
        if stderr.strip():
            tail = stderr.rstrip("\n").splitlines()[-STDERR_LINES:]
            self.add(
                f"Worker stderr (last {plural(len(tail), 'line')}):",
                "",
                *sanitize.md_code("\n".join(tail)),
                "",
            )
        arts = [(r.crash.crash_id, a) for r in sig.records for a in r.artifacts if a.path]
        if arts:
            self.add("Artifacts (in the session folder):", "")
            for cid, a in arts:
                size = _size(a.path)
                self.add(
                    f"- `{self.s.relative(a.path)}` — {a.kind} of `{cid}`"
                    + (f", {size}" if size else "")
                )
            self.add("")

    def stalls(self) -> None:
        stalls = [e for e in self.s.events if isinstance(e, ev.Stall)]
        if not stalls:
            return
        evidence: dict[str, list[ev.StallArtifact]] = {}
        for a in self.s.events:
            if isinstance(a, ev.StallArtifact):
                evidence.setdefault(a.stall_id, []).append(a)
        self.add("## Stalls", "")
        for e in stalls:
            self.add(
                f"### {self.pool(e.pool)} at {self.rel(e.t)}: no message for "
                f"{e.silent_for:.1f} s at {plural(e.threads, 'thread')}",
                "",
            )
            for a in evidence.get(e.stall_id, []):
                if a.kind == "native" and a.report is not None:
                    from gpumon.crash.render import markdown_summary

                    self.add(markdown_summary(self.s.portable_report(a.report)).rstrip("\n"), "")
                elif a.kind == "faulthandler" and a.text.strip():
                    self.add(
                        "Python stacks (faulthandler, on demand):",
                        "",
                        *sanitize.md_code(a.text.rstrip("\n")),
                        "",
                    )
                elif a.note:
                    self.add(f"- {sanitize.md_cell(a.note)}", "")

    def other_events(self) -> None:
        failures = [e for e in self.s.events if isinstance(e, ev.ThreadFailed)]
        notices = [
            e for e in self.s.events if isinstance(e, ev.Notice) and e.level in ("warning", "error")
        ]
        if failures:
            self.add("## Worker threads that raised", "")
            self.add(
                *_table(
                    ["Time", "Pool", "Slot", "Error"],
                    [
                        [self.rel(e.t), self.pool(e.pool), str(e.slot), e.error]
                        for e in failures[:TIMELINE_MAX]
                    ],
                ),
                "",
            )
        if notices:
            self.add("## Warnings and errors from the monitor", "")
            self.add(
                *_table(
                    ["Time", "Pool", "Level", "Message"],
                    [
                        [self.rel(e.t), self.pool(e.pool) if e.pool else "", e.level, e.message]
                        for e in notices[:TIMELINE_MAX]
                    ],
                ),
                "",
            )


def command_line(argv: Sequence[str]) -> str:
    """The recorded argv as one shell line, run as `gpumon ...` whatever path started it."""
    if not argv:
        return "gpumon"
    first = os.path.basename(argv[0])
    rest = list(argv[1:])
    if first in ("gpumon", "__main__.py") or first.startswith("python"):
        if first.startswith("python") and rest[:2] == ["-m", "gpumon"]:
            rest = rest[2:]
        elif first.startswith("python"):
            return shlex.join(argv)  # a script of the user's own: keep it as it was
        return shlex.join(["gpumon", *rest])
    if first.endswith(".py"):
        # sys.argv of a script run as `python3 script.py` has lost the interpreter.
        return shlex.join(["python3", *argv])
    return shlex.join(argv)


def signature(rec: CrashRecord) -> tuple[str, tuple[str, ...]]:
    """(signal, top frames of the crashed thread): crashes that share it are one finding."""
    from gpumon.crash.classify import crash_frames, frame_label

    c = rec.crash
    head = c.signal or (f"exit code {c.exit_code}" if c.exit_code is not None else "death")
    report = rec.native or rec.python
    thread = report.crashed_thread if report is not None else None
    if thread is None:
        return head, ()
    labels = [
        frame_label(f)
        for f in crash_frames(thread)
        if f.kind not in (SYSTEM, UNKNOWN) and (f.symbol or f.image)
    ]
    return head, tuple(labels[:SIGNATURE_FRAMES])


def _by_pool_policy(cells: Iterable[analysis.Cell]) -> dict[tuple[str, str], list[analysis.Cell]]:
    """Cells grouped per (pool, policy), groups in the order the session first ran them."""
    out: dict[tuple[str, str], list[analysis.Cell]] = {}
    for c in cells:
        out.setdefault((c.first.pool, c.first.policy), []).append(c)
    first = {k: min(r.start_t for c in v for r in c.runs) for k, v in out.items()}
    return dict(sorted(out.items(), key=lambda kv: (first[kv[0]], kv[0])))


def _mem_sources(events: Iterable[ev.Event]) -> dict[str, str]:
    out: dict[str, list[str]] = {}
    for e in events:
        if isinstance(e, ev.Sample) and e.mem_source:
            seen = out.setdefault(e.pool, [])
            if e.mem_source not in seen:
                seen.append(e.mem_source)
    return {k: "; ".join(v) for k, v in out.items()}


def _size(path: str) -> str:
    try:
        return nbytes(os.path.getsize(path))
    except OSError:
        return "missing"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ").strip() or " "


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines
