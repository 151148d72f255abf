"""The crash screen: everything gpumon knows about one worker death, crashed thread first.

Order is what a framework maintainer reads: the verdict, the crashed thread (by name) with its
driver and framework frames highlighted, threads that were inside the GPU driver at the time,
then every other thread folded (Enter or a click unfolds one), the Python stacks, the worker's
stderr tail and where each artifact is saved. Evidence keeps arriving after the death (gdb's
stacks, faulthandler's dump, later a macOS `.ips`), so the screen rebuilds itself when the
crash record grows. The same renderers back `gpumon crash` and the Markdown export.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import ClassVar

import msgspec
from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Collapsible, Footer, Static

from gpumon import events as ev
from gpumon import fmt, sanitize
from gpumon.crash import render
from gpumon.crash.model import CrashReport, Thread
from gpumon.state import CrashRecord, StallRecord
from gpumon.tui.widgets.caption_bar import CaptionBar

STDERR_LINES = 30

SYNTHETIC_NOTE = (
    "SYNTHETIC — gpumon's fault backend injected this crash on purpose (a real native fault "
    "in a CPU loop) to show the crash path; it says nothing about any GPU framework."
)


def crash_title(c: ev.Crash) -> Text:
    t = Text()
    t.append(f" CRASH #{c.crash_number} ", style="bold white on red")
    t.append(f" pool {c.pool} · ", style="bold")
    t.append(c.signal or f"exit code {c.exit_code}", style="bold red")
    t.append(
        f" · {fmt.plural(c.threads, 'thread')} · up {fmt.duration(c.uptime)} · "
        f"{c.ops_total:,} ops · policy {c.policy} · {c.workload} · {c.backend} on {c.device} · "
        f"pid {c.pid}"
    )
    if c.during != "run":
        t.append(f" · while {c.during}", style="yellow")
    return t


def versions_text(c: ev.Crash) -> Text | None:
    if not c.versions:
        return None
    t = Text("versions  ", style="bold")
    t.append(", ".join(f"{k} {v}" for k, v in sorted(c.versions.items())))
    return t


def _plain(text: str) -> Content:
    """Collapsible titles are parsed as markup; C++ frames and '[driver]' marks are not."""
    return Content(text)


def thread_fold(thread: Thread, report: CrashReport) -> Collapsible:
    return Collapsible(
        Static(render.thread_renderable(thread, report, full=True)),
        title=_plain(render.thread_summary(thread, report)),  # type: ignore[arg-type]
        collapsed=True,
    )


def inside(path: str, folder: Path | None) -> str:
    """`artifacts/fault-1/stderr.log` for a file in the session folder, else the path."""
    if folder is not None:
        with contextlib.suppress(ValueError):
            return Path(path).relative_to(folder).as_posix()
    return path


def shown_dir(folder: Path) -> str:
    """The folder relative to the working directory when it is below it (shorter, and the
    same wherever the repository is checked out), else absolute."""
    with contextlib.suppress(ValueError, OSError):
        return folder.resolve().relative_to(Path.cwd().resolve()).as_posix()
    return str(folder)


def ordered(report: CrashReport) -> tuple[Thread | None, list[Thread]]:
    crashed = report.crashed_thread
    return crashed, [t for t in report.threads if t is not crashed]


class CrashScreen(Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,backspace", "app.pop_screen", "back"),
        Binding("a", "toggle_all", "fold/unfold all"),
    ]

    def __init__(self, crash_id: str) -> None:
        super().__init__(classes="crash-screen")
        self.crash_id = crash_id
        self.shown_artifacts = -1

    @property
    def record(self) -> CrashRecord | None:
        return self.app.state.crashes.get(self.crash_id)  # type: ignore[attr-defined]

    def compose(self) -> ComposeResult:
        rec = self.record
        if rec is None:
            yield Static(Text(f"crash {self.crash_id} is not in this session (yet)"))
            yield Footer()
            return
        self.shown_artifacts = len(rec.artifacts)
        c = rec.crash
        yield CaptionBar(id="caption")  # a scenario's caption stays in view over its crash
        yield Static(crash_title(c), id="crash-title")
        yield Static(
            Text.assemble(("Verdict: ", "bold"), (rec.verdict, "bold yellow")), id="crash-verdict"
        )
        with VerticalScroll(id="crash-body"):
            if c.backend == "fault":
                yield Static(
                    Text(SYNTHETIC_NOTE, style="bold black on yellow"), classes="synthetic"
                )
            v = versions_text(c)
            if v is not None:
                yield Static(v)
            yield from self._reports(rec)
            yield from self._stderr(rec)
            yield Static(self._artifacts(rec), classes="crash-section")
        yield Footer()

    def _reports(self, rec: CrashRecord) -> ComposeResult:
        native, python = rec.native, rec.python
        main = native or python
        if main is None:
            waiting = "collecting stacks…" if not rec.artifacts else "no stacks were captured"
            yield Static(Text(waiting, style="italic"), classes="crash-section")
            return
        source = "native stacks" if native is not None else "Python stacks (faulthandler)"
        yield Static(
            Group(
                Text(source, style="bold underline"), render.header_renderable(self._portable(main))
            ),
            classes="crash-section",
        )
        crashed, others = ordered(main)
        if crashed is not None:
            yield Static(render.thread_renderable(crashed, main), classes="crash-thread")
        else:
            yield Static(Text("the report names no crashed thread", style="italic"))
        in_driver = [t for t in others if any(f.kind == "driver" for f in t.frames)]
        for t in in_driver:
            yield Static(render.driver_frames_renderable(t, main), classes="crash-section")
        if others:
            yield Static(
                Text(f"Other threads ({len(others)}) — Enter or click to unfold", style="bold"),
                classes="crash-section",
            )
            for t in others:
                yield thread_fold(t, main)
        if native is not None and python is not None:
            py_crashed, py_others = ordered(python)
            title = f"Python stacks (faulthandler): {fmt.plural(len(python.threads), 'thread')}"
            parts: list[Static | Collapsible] = []
            if py_crashed is not None:
                parts.append(Static(render.thread_renderable(py_crashed, python)))
            parts += [thread_fold(t, python) for t in py_others]
            yield Collapsible(
                *parts,
                title=_plain(title),  # type: ignore[arg-type]  # Content renders as markup-free
                collapsed=False,
                classes="crash-section",
            )

    def _portable(self, report: CrashReport) -> CrashReport:
        """The report with its file named inside the session folder, as the artifacts are."""
        if not report.source_path:
            return report
        folder = self.app.source.session_dir  # type: ignore[attr-defined]
        return msgspec.structs.replace(report, source_path=inside(report.source_path, folder))

    def _stderr(self, rec: CrashRecord) -> ComposeResult:
        text = rec.text("stderr")
        if not text.strip():
            return
        lines = text.rstrip("\n").splitlines()[-STDERR_LINES:]
        yield Collapsible(
            Static(Text("\n".join(lines), style="dim")),
            title=_plain(f"worker stderr (last {len(lines)} lines)"),  # type: ignore[arg-type]
            collapsed=False,
            classes="crash-section",
        )

    def _artifacts(self, rec: CrashRecord) -> RenderableType:
        source = self.app.source  # type: ignore[attr-defined]
        folder = source.session_dir
        t = Text("Artifacts", style="bold")
        if folder is not None:
            t.append(f" (paths inside the session folder {shown_dir(folder)})", style="dim")
        t.append("\n")
        shown = False
        for a in rec.artifacts:
            if a.path:
                shown = True
                t.append(f"  {a.kind:<13}", style="bold")
                t.append(f"{inside(a.path, folder)}\n")
        if not shown:
            t.append("  none saved yet\n", style="dim")
        for note in rec.notes:
            t.append(f"  note: {note}\n", style="italic")
        return t

    # ---- live updates ---------------------------------------------------------------
    async def sync(self) -> None:
        """Called on the app's refresh tick: rebuild when new evidence has arrived."""
        rec = self.record
        n = len(rec.artifacts) if rec is not None else -1
        if n != self.shown_artifacts:
            await self.recompose()

    def action_toggle_all(self) -> None:
        folds = list(self.query(Collapsible))
        expand = any(f.collapsed for f in folds)
        for f in folds:
            f.collapsed = not expand


class StallScreen(Screen[None]):
    """What a silent worker was doing: its Python stacks (and native ones under gdb)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,backspace", "app.pop_screen", "back")]

    def __init__(self, record: StallRecord) -> None:
        super().__init__(classes="crash-screen")
        self.record = record

    def compose(self) -> ComposeResult:
        rec = self.record
        s = rec.stall
        title = Text()
        title.append(" STALL ", style="bold white on red")
        title.append(
            f" pool {s.pool} · no message for {s.silent_for:.1f} s · "
            f"{fmt.plural(s.threads, 'thread')}"
        )
        yield Static(title, id="crash-title")
        native, stacks = rec.native, rec.text("faulthandler")
        with VerticalScroll(id="crash-body"):
            if native is not None:
                yield Static(render.render_report(native))
            if stacks.strip():
                yield Static(
                    Group(
                        Text("Python stacks (faulthandler)", style="bold"),
                        Text(sanitize.text(stacks.rstrip())),
                    )
                )
            for note in rec.notes:
                yield Static(Text(sanitize.text(note), style="italic"))
            if native is None and not stacks.strip() and not rec.notes:
                yield Static(Text("collecting stacks…", style="italic"))
        yield Footer()
