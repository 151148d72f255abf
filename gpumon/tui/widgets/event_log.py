"""The event log: one line per thing that happened to a pool, newest at the bottom.

Lines are added in batches on the refresh tick (a crash storm adds dozens at once without a
re-layout per event). A crash line is selectable: Enter opens the crash screen. Times are
session-relative (`+mm:ss.s`), so a replay on another machine, in another time zone, shows the
same log.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from gpumon import control, fmt
from gpumon import events as ev

MAX_LINES = 1000  # the widget's own bound; SessionState keeps more for the crash screens
TRIM_TO = 800

KIND_STYLE = {"crash": "bold white on red", "stall": "bold white on red", "failed": "bold red"}


def shown_path(path: str, base: Path | None) -> str:
    """Artifact paths relative to the session folder: shorter, and the same on every machine."""
    if base is not None:
        with contextlib.suppress(ValueError):
            return Path(path).relative_to(base).as_posix()
    return path


def crash_text(e: ev.Crash, evidence: Sequence[str] = ()) -> Text:
    """One line per crash; the evidence it has so far fills in as it arrives."""
    t = Text()
    t.append(f" CRASH {e.signal or f'exit {e.exit_code}'} ", style=KIND_STYLE["crash"])
    t.append(
        f" #{e.crash_number} at {fmt.plural(e.threads, 'thread')}, up "
        f"{fmt.duration(e.uptime)}, {e.ops_total:,} ops, {e.policy}"
    )
    if e.during != "run":
        t.append(f", while {e.during}", style="yellow")
    if evidence:
        t.append(f" · {', '.join(evidence)}", style="dim")
    t.append("  ⏎ details", style="dim")
    return t


EVIDENCE_NAMES = {"faulthandler": "Python stacks", "native": "native stacks", "ips": ".ips"}


def describe(e: ev.Event, base: Path | None = None) -> tuple[str, Text] | None:
    """(kind, message) for an event worth a log line; None for the rest (samples, host, and
    a crash's artifacts, which fill in the crash's own line)."""
    if isinstance(e, ev.SessionStart):
        h = e.host
        return "session", Text(
            f"session {e.session_id} started ({e.mode}) on {h.hostname}: {h.os_version}, "
            f"{h.chip}, Python {h.python}"
        )
    if isinstance(e, ev.SessionEnd):
        return "session", Text(f"session ended ({e.reason})")
    if isinstance(e, ev.PoolStarting):
        c = e.config
        runs = f"{c.backend}:{c.device or 'auto'}, {fmt.plural(c.threads, 'thread')}, {c.policy}"
        first = "starting" if e.attempt == 1 else f"starting again (attempt {e.attempt})"
        return "start", Text(f"{first}: {runs}")
    if isinstance(e, ev.PoolPreparing):
        if e.phase not in ("waiting", "creating"):
            return None  # one line per build; the panel shows its progress
        doing = "waiting for another build of" if e.phase == "waiting" else "building"
        return "start", Text(f"{doing} environment {e.env}", style="yellow")
    if isinstance(e, ev.PoolReady):
        t = Text(
            f"ready: pid {e.pid}, {e.framework} on {e.device} ({e.device_reason}), "
            f"size {e.size} {e.dtype}, policy {e.policy or '?'}"
        )
        if e.env:
            t.append(f" · env {e.env}", style="dim")
        return "ready", t
    if isinstance(e, ev.PoolFailed):
        return "failed", Text(f"failed to start: {e.message}" + (f" — {e.fix}" if e.fix else ""))
    if isinstance(e, ev.Control):
        if e.source == "supervisor":
            return None  # the stop that quitting sends: PoolStopped says it better
        t = Text(control.describe(e.command))
        detail = e.detail or ("" if e.ok else "failed")
        if detail:
            t.append(": ")
            t.append(detail, style="" if e.ok else "bold red")
        if e.source != "user":
            t.append(f" ({e.source})", style="dim")
        return "control", t
    if isinstance(e, ev.ThreadFailed):
        return "failed", Text(f"thread {e.slot} failed: {e.error}")
    if isinstance(e, ev.Crash):
        return "crash", crash_text(e)
    if isinstance(e, ev.Stall):
        t = Text()
        t.append(" STALL ", style=KIND_STYLE["stall"])
        t.append(f" no heartbeat for {e.silent_for:.1f} s at {fmt.plural(e.threads, 'thread')}")
        t.append("  ⏎ stacks", style="dim")
        return "stall", t
    if isinstance(e, ev.StallArtifact):
        if e.kind == "note":
            return "artifact", Text(f"  note: {e.note}", style="dim")
        where = f": {shown_path(e.path, base)}" if e.path else ""
        return "artifact", Text(f"  stall: attached {e.kind} stacks{where}", style="dim")
    if isinstance(e, ev.StallCleared):
        return "stall", Text(f"answered again after {e.silent_for:.1f} s of silence")
    if isinstance(e, ev.RecordingStopped):
        return "failed", Text(f"recording stopped: {e.reason}", style="bold red")
    if isinstance(e, ev.PoolRestart):
        return "restart", Text(
            f"restarting in {e.delay:.1f} s (attempt {e.attempt}, "
            f"{fmt.plural(e.crashes, 'crash')} so far)",
            style="yellow",
        )
    if isinstance(e, ev.PoolStopped):
        return "stopped", Text(f"stopped: {e.reason}, {e.ops_total:,} ops in the session")
    if isinstance(e, ev.Notice):
        style = {"warning": "yellow", "error": "bold red"}.get(e.level, "")
        return "notice", Text(e.message, style=style)
    return None


class EventLog(OptionList):
    """Selectable log lines; crash and stall lines open their details."""

    class Open(Message):
        """The user asked for the details behind a log line (a crash or a stall)."""

        def __init__(self, event: ev.Event) -> None:
            super().__init__()
            self.event = event

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.t0: float | None = None
        self.base: Path | None = None  # the session folder, for relative artifact paths
        self._events: dict[str, ev.Event] = {}
        # crash id -> (its line's option id, the crash, the evidence named on it so far)
        self._crash_lines: dict[str, tuple[str, ev.Crash, list[str]]] = {}
        self._seq = 0
        self.lines = 0

    def _prefix(self, e: ev.Event) -> Text:
        pool = getattr(e, "pool", "")
        t = Text(f"+{fmt.clock(e.t - (self.t0 or e.t))} ", style="dim")
        if pool:
            t.append(f"{pool:<10.10} ", style="bold")
        return t

    def _line(self, e: ev.Event, msg: Text) -> Text:
        t = self._prefix(e)
        t.append_text(msg)
        t.no_wrap = True
        t.overflow = "ellipsis"
        return t

    def line_for(self, e: ev.Event) -> Option | None:
        d = describe(e, self.base)
        if d is None:
            return None
        self._seq += 1
        oid = f"e{self._seq}"
        self._events[oid] = e
        if isinstance(e, ev.Crash):
            self._crash_lines[e.crash_id] = (oid, e, [])
        return Option(self._line(e, d[1]), id=oid, disabled=False)

    def _fill_in(self, a: ev.CrashArtifact) -> None:
        """Fill a crash's line in with the evidence that arrived for it."""
        entry = self._crash_lines.get(a.crash_id)
        name = EVIDENCE_NAMES.get(a.kind, a.kind)
        if entry is None or a.kind == "note" or name in entry[2]:
            return
        oid, crash, evidence = entry
        evidence.append(name)
        with contextlib.suppress(Exception):  # the line may have been trimmed away
            self.replace_option_prompt(oid, self._line(crash, crash_text(crash, evidence)))

    def add_events(self, events: Iterable[ev.Event]) -> None:
        events = list(events)
        options = [o for o in (self.line_for(e) for e in events) if o is not None]
        if options:
            self._add(options)
        for e in events:
            if isinstance(e, ev.CrashArtifact):
                self._fill_in(e)

    def _add(self, options: list[Option]) -> None:
        follow = self.highlighted is None or self.highlighted >= self.option_count - 1
        at_bottom = self.scroll_y >= self.max_scroll_y
        if self.option_count + len(options) > MAX_LINES:
            self._rebuild(options)
        else:
            self.add_options(options)
        self.lines = self.option_count
        if follow and self.highlighted is not None:
            self.highlighted = self.option_count - 1
        elif at_bottom:
            # After the new lines are laid out: before that there is nothing to scroll to.
            self.call_after_refresh(self.scroll_end, animate=False)

    def _rebuild(self, new: list[Option]) -> None:
        keep = [self.get_option_at_index(i) for i in range(self.option_count)] + new
        keep = keep[-TRIM_TO:]
        self._events = {o.id: self._events[o.id] for o in keep if o.id in self._events}
        self.clear_options()
        self.add_options(keep)

    def reset(self, events: Iterable[ev.Event], t0: float | None) -> None:
        self.clear_options()
        self._events.clear()
        self._crash_lines.clear()
        self.t0 = t0
        self.add_events(events)

    def event_at(self, index: int | None) -> ev.Event | None:
        if index is None or not 0 <= index < self.option_count:
            return None
        oid = self.get_option_at_index(index).id
        return self._events.get(oid) if oid else None

    def on_focus(self) -> None:
        # Focusing the log jumps to the latest crash (what one nearly always wants next),
        # else to the newest line.
        if self.highlighted is not None:
            return
        for i in range(self.option_count - 1, -1, -1):
            if isinstance(self.event_at(i), ev.Crash):
                self.highlighted = i
                return
        if self.option_count:
            self.highlighted = self.option_count - 1

    def on_option_list_option_selected(self, message: OptionList.OptionSelected) -> None:
        message.stop()
        e = self._events.get(message.option_id or "")
        if isinstance(e, ev.CrashArtifact | ev.Crash | ev.Stall | ev.StallArtifact):
            self.post_message(self.Open(e))
        elif e is not None:
            self.app.notify("only crash and stall lines have details", timeout=2)
