"""Running a repro script K times, each in a fresh process, and counting what happened.

What a run's end means is the script's contract (repro.py): a signal is the native crash, exit
3 a worker thread raised, exit 0 nothing happened, exit 2 another framework version; any other
exit is the script failing to run (a missing module, an edited script's error) and is counted
as neither. A run still going after the timeout is killed with its whole process group and
counted as reproduced by a hang — a hang is the bug showing too, and the output says so.
Classifying an end is pure (`outcome`); `run_once` is the part with a process.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from gpumon import sanitize, stats

EXIT_RAISED = 3
EXIT_WRONG_VERSION = 2
TAIL_LINES = 20
REPRODUCED = ("signal", "hang", "raised")


@dataclass(frozen=True)
class RunOutcome:
    index: int  # 1-based
    seconds: float
    exit_code: int | None  # None: a signal ended it, or it was killed after the timeout
    signal: str | None  # SIGSEGV ...; None when it exited or hung
    hung: bool
    tail: str  # the last lines of its stderr (untrusted text: sanitise before showing)

    @property
    def kind(self) -> str:
        if self.hung:
            return "hang"
        if self.signal is not None:
            return "signal"
        if self.exit_code == 0:
            return "clean"
        if self.exit_code == EXIT_RAISED:
            return "raised"
        if self.exit_code == EXIT_WRONG_VERSION and "--any-version" in self.tail:
            return "wrong-version"
        return "error"

    @property
    def reproduced(self) -> bool:
        return self.kind in REPRODUCED

    @property
    def label(self) -> str:
        """What ended it, short: SIGSEGV, hang, exit 3, exit 0."""
        if self.hung:
            return "hang"
        return self.signal or f"exit {self.exit_code}"

    def describe(self, timeout: float) -> str:
        last = sanitize.line(_last_line(self.tail))
        match self.kind:
            case "hang":
                return (
                    f"hang: still running after {timeout:g} s, killed (counted as reproduced "
                    "by a hang)"
                )
            case "signal":
                return f"{self.signal} after {self.seconds:.2f} s"
            case "raised":
                return f"exit 3 after {self.seconds:.2f} s: a worker thread raised: {last}"
            case "clean":
                return f"exit 0 after {self.seconds:.2f} s: nothing happened"
            case "wrong-version":
                return f"exit 2: {last}"
        return f"exit {self.exit_code} after {self.seconds:.2f} s: the script failed: {last}"


def outcome(
    index: int, returncode: int | None, seconds: float, hung: bool, tail: str
) -> RunOutcome:
    """A run's end from its return code (negative: the signal that killed it)."""
    if hung or returncode is None:
        return RunOutcome(index, seconds, None, None, True, tail)
    if returncode < 0:
        return RunOutcome(index, seconds, None, _signal_name(-returncode), False, tail)
    return RunOutcome(index, seconds, returncode, None, False, tail)


def _signal_name(n: int) -> str:
    try:
        return signal.Signals(n).name
    except ValueError:
        return f"signal {n}"


def _last_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no output)"


@dataclass(frozen=True)
class Summary:
    runs: tuple[RunOutcome, ...]

    @property
    def reproduced(self) -> int:
        return sum(r.reproduced for r in self.runs)

    @property
    def counted(self) -> int:
        """Runs that could have shown the bug (a script that failed to run could not)."""
        return sum(r.kind in (*REPRODUCED, "clean") for r in self.runs)

    @property
    def how(self) -> collections.Counter[str]:
        return collections.Counter(r.label for r in self.runs if r.reproduced)

    def interval(self) -> tuple[float, float]:
        return stats.wilson(self.reproduced, len(self.runs))

    def same_as(self, recorded: str | None) -> int:
        """Runs that ended the way the session's pool did (the same signal or exit code)."""
        return sum(r.reproduced and r.label == recorded for r in self.runs) if recorded else 0

    def line(self, recorded: str | None = None) -> str:
        """`reproduced 5/5 (SIGSEGV ×5, as recorded); 95% Wilson interval 57%–100% of runs`."""
        k, n = self.reproduced, len(self.runs)
        how = ", ".join(f"{label} ×{c}" for label, c in sorted(self.how.items()))
        if recorded and k:
            same = self.same_as(recorded)
            how += ", as recorded" if same == k else f"; {same} ended as recorded, {recorded}"
        lo, hi = self.interval()
        text = f"reproduced {k}/{n}" + (f" ({how})" if how else "")
        return text + f"; 95% Wilson interval {lo:.0%}–{hi:.0%} of runs"


def child_environ(base: dict[str, str], isolated: bool) -> dict[str, str]:
    """The script needs nothing of gpumon's: no PYTHONPATH of ours; for an isolated env's
    interpreter, no user site-packages either (they could shadow the pinned framework)."""
    drop = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE", "VIRTUAL_ENV")
    env = {k: v for k, v in base.items() if k not in drop}
    if isolated:
        env["PYTHONNOUSERSITE"] = "1"
    return env


def _no_core_files() -> None:
    """K crashing runs must not leave K core files (each can be GBs) wherever they ran."""
    import resource

    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def run_once(
    index: int, python: str, script: Path, timeout: float, env: dict[str, str]
) -> RunOutcome:
    started = time.monotonic()
    proc = subprocess.Popen(
        [python, str(script)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=script.parent,
        env=env,
        start_new_session=True,  # its own process group: a hang is killed whole
        preexec_fn=_no_core_files if os.name == "posix" else None,
    )
    hung = False
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        hung = True
        _kill(proc)
        _, err = proc.communicate()
    except BaseException:  # Ctrl-C: no run is left behind
        _kill(proc)
        proc.wait()
        raise
    seconds = time.monotonic() - started
    text = err.decode("utf-8", "replace")
    tail = "\n".join(text.splitlines()[-TAIL_LINES:])
    return outcome(index, proc.returncode, seconds, hung, tail)
