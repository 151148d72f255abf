"""The pool keys: what +, -, t, p, r, c and w do to the selected pool, live.

A base of GpumonApp, so the keys are the app's actions and work over every screen. Each goes
through one guard (`_target`: the selected pool, or why there is none — a replay is a
recording) and is decided by a pure function in gpumon.tui.controls; the command then runs
in a worker and its answer comes back as a CommandAnswered message (and a Control event).
"""

from __future__ import annotations

from textual import work
from textual.app import App
from textual.message import Message

from gpumon import control, fmt, sanitize
from gpumon import events as ev
from gpumon.state import PoolView, SessionState
from gpumon.tui import controls
from gpumon.tui.source import CommandRefused, EventSource, ReplaySource
from gpumon.tui.widgets.thread_entry import ThreadEntry


class PoolKeys(App[int]):
    class CommandAnswered(Message):
        """A pool command finished (or was refused): what the user pressed and the answer."""

        def __init__(
            self,
            pool: str,
            op: str,
            control: ev.Control | None,
            refused: str = "",
        ) -> None:
            super().__init__()
            self.pool, self.op, self.answer, self.refused = pool, op, control, refused

    # Set by GpumonApp.__init__.
    source: EventSource
    state: SessionState
    selected: str | None
    _dirty: set[str]

    def __init__(self) -> None:
        super().__init__()
        self.pending_threads: dict[str, int] = {}

    def select(self, name: str) -> None:
        self.selected = name

    def _target(self) -> PoolView | None:
        """The one guard of every pool key: the selected pool, or a message why there is
        none to command (a replay, nothing selected)."""
        refused = ""
        if isinstance(self.source, ReplaySource):
            refused = ReplaySource.REFUSED
        elif getattr(self.source, "readonly", False):
            refused = "this monitor is read-only (--readonly): pool keys are off"
        if refused:
            self.notify(refused, severity="warning", timeout=3)
            self.post_message(self.CommandAnswered(self.selected or "", "", None, refused))
            return None
        view = self.state.pools.get(self.selected or "")
        if view is None:
            self.notify("no pool selected", timeout=2)
        return view

    def action_threads(self, delta: int) -> None:
        if (view := self._target()) is None:
            return
        base = self.pending_threads.get(view.name, view.threads or 1)
        target = controls.clamp_threads(base + delta)
        if target == base:
            self.notify(f"{view.name} already runs {fmt.plural(base, 'thread')}", timeout=2)
            return
        self.set_threads(view.name, target)

    def action_set_threads(self) -> None:
        if (view := self._target()) is None:
            return
        note = ""
        if view.state not in ("running", "paused", "starting"):
            note = f"{view.name} is {view.state}: it will start with this many"

        self.screen.query_one(ThreadEntry).open(view.name, view.threads or 1, note)

    def on_thread_entry_chosen(self, message: ThreadEntry.Chosen) -> None:
        self.set_threads(message.pool, message.threads)

    def set_threads(self, pool: str, n: int) -> None:
        n = controls.clamp_threads(n)
        self.pending_threads[pool] = n
        self._run_command(pool, control.SetThreads(threads=n))

    def action_pause(self) -> None:
        if (view := self._target()) is None:
            return
        paused = view.state == "paused"
        self._run_command(view.name, control.Resume() if paused else control.Pause())

    def action_restart(self) -> None:
        if (view := self._target()) is not None:
            self._run_command(view.name, control.Restart())

    def action_cycle_policy(self) -> None:
        if (view := self._target()) is None:
            return
        unavailable = view.ready.policies if view.ready else {}
        candidate, skipped = controls.next_policy(view.policy, unavailable)
        if candidate is None:
            self.notify(
                f"{view.name}: no other policy is available (" + "; ".join(skipped) + ")",
                severity="warning",
                timeout=4,
            )
            return
        if skipped:
            self.notify("skipped " + "; ".join(skipped), timeout=4)
        self._run_command(view.name, control.SetPolicy(policy=candidate))

    def action_cycle_workload(self) -> None:
        if (view := self._target()) is not None:
            nxt = controls.next_workload(view.workload)
            self._run_command(view.name, control.SetWorkload(workload=nxt))

    def action_size(self, step: int) -> None:
        if (view := self._target()) is None:
            return
        current = view.ready.size if view.ready else 0
        if view.config is not None and view.config.size:
            current = view.config.size
        if not current:
            self.notify(f"{view.name}: its size is not known yet", timeout=2)
            return
        size = controls.next_size(current, step)
        if size == current:
            self.notify(f"{view.name} is already at size {size}", timeout=2)
            return
        self._run_command(view.name, control.SetWorkload(size=size))

    def action_cycle_dtype(self) -> None:
        if (view := self._target()) is None:
            return
        current = (view.config.dtype if view.config else None) or (
            view.ready.dtype if view.ready else ""
        )
        self._run_command(view.name, control.SetWorkload(dtype=controls.next_dtype(current)))

    @work(group="commands", exit_on_error=False)
    async def _run_command(self, pool: str, cmd: control.PoolCommand) -> None:
        op = control.op(cmd)
        try:
            answer = await self.source.command(pool, cmd)
        except CommandRefused as e:
            self.notify(str(e), severity="warning", timeout=3)
            self.post_message(self.CommandAnswered(pool, op, None, str(e)))
            return
        except Exception as e:  # e.g. SpecError from a bad thread count: say it, go on
            self.notify(f"{op} failed: {e}", severity="error", timeout=5)
            self.post_message(self.CommandAnswered(pool, op, None, str(e)))
            return
        finally:
            if isinstance(cmd, control.SetThreads):
                self.pending_threads.pop(pool, None)
        detail = sanitize.line(answer.detail)  # the worker's words: inert on screen
        if not answer.ok:
            self.notify(f"{pool}: {op} refused: {detail}", severity="warning", timeout=4)
        elif "will start" in detail:
            self.notify(f"{pool}: {detail}", timeout=4)
        self._dirty.add(pool)
        self.post_message(self.CommandAnswered(pool, op, answer))
