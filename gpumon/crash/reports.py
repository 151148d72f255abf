"""Several reports in one input: read the first, count the others, say so.

People paste two crashes into one issue comment, and a log can hold a crash per restart. The
parsers read one report each, so the input is cut where a second report of the same kind
starts: a second `Process:` header, `.ips` metadata line, `Fatal Python error:`, gdb `received
signal` statement, lldb `Process N stopped`, coredump `PID:` or panic line, once the first one
has shown frames. The check is a prefix test per line, so a 100 MB dump streams through it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

# Per kind: a substring every start line contains (a C-level test that rejects nearly every
# line of a huge dump cheaply), and the full test.
_STARTS: dict[str, tuple[str, Callable[[str], bool]]] = {
    "text": (":", lambda s: s.startswith(("Process:", "Incident Identifier:"))),
    "ips": ("bug_type", lambda s: s.startswith("{") and '"bug_type"' in s),
    "faulthandler": (
        "atal ",
        lambda s: "Fatal Python error: " in s or "Windows fatal exception: " in s,
    ),
    "gdb": (
        "sig",
        lambda s: (
            s.startswith(("Program received signal ", "Program terminated with signal "))
            or (s.startswith("Thread ") and " received signal " in s)
            or s.startswith("gpumon-native-stacks")
        ),
    ),
    "lldb": (" stopped", lambda s: s.startswith("Process ") and s.rstrip().endswith(" stopped")),
    "coredump": (": ", lambda s: s.lstrip().startswith(("PID: ", "Message: Process "))),
    "panic": ("anic(", lambda s: s.lstrip().startswith(("panic(cpu ", "Panic(CPU "))),
    "c10": ("PID: ", lambda s: re.match(r"[ \t]*SIG[A-Z0-9]+\(\d+\), PID: ", s) is not None),
}
_FRAME_HINTS = ("#", "File ", "frame #", "thread #", "Binary file ", "lr: ")


def _frame_like(line: str) -> bool:
    s = line.lstrip()
    return bool(s) and (s[0].isdigit() or s.startswith(_FRAME_HINTS))


class FirstReport:
    """Iterate over the lines of the first report of `kind` in `lines`; afterwards `more()`
    reads the rest of the input and says how many further reports it holds."""

    def __init__(self, kind: str, lines: Iterable[str]) -> None:
        hint, test = _STARTS.get(kind, ("", None))
        self._hint = hint
        self._is_start = test
        self._lines = iter(lines)
        self._stopped_at: str | None = None
        self._consumed = False

    def __iter__(self) -> Iterator[str]:
        if self._is_start is None:
            yield from self._lines
            self._consumed = True
            return
        started = frames = False
        hint, is_start = self._hint, self._is_start
        for line in self._lines:
            if hint in line and is_start(line):
                if started and frames:
                    self._stopped_at = line
                    return
                started = True
            elif not frames and started and _frame_like(line):
                frames = True
            yield line
        self._consumed = True

    def more(self) -> int:
        """How many reports follow the first one (reads the remaining input)."""
        if self._stopped_at is None or self._is_start is None:
            return 0
        count = 1
        frames = False
        hint, is_start = self._hint, self._is_start
        for line in self._lines:
            if hint in line and is_start(line):
                if frames:
                    count += 1
                    frames = False
            elif not frames and _frame_like(line):
                frames = True
        return count


# The start lines again, as one multi-line pattern per kind: a C-level search says whether an
# input in memory can hold a second report before it is split into lines.
_START_PATTERNS = {
    "text": r"^(?:Process:|Incident Identifier:)",
    "ips": r'^\{.*"bug_type"',
    "faulthandler": r"Fatal Python error: |Windows fatal exception: ",
    "gdb": r"^(?:Program (?:received|terminated with) signal |Thread .* received signal |gpumon-)",
    "lldb": r"^Process \d+ stopped",
    "coredump": r"^[ \t]*(?:PID: |Message: Process )",
    "panic": r"^[ \t]*(?:panic\(cpu |Panic\(CPU )",
    "c10": r"^[ \t]*SIG[A-Z0-9]+\(\d+\), PID: ",
}
_START_RES = {kind: re.compile(pattern, re.M) for kind, pattern in _START_PATTERNS.items()}


def may_hold_several(kind: str, text: str) -> bool:
    """Could `text` hold more than one report of `kind`? (two start lines or more)"""
    pattern = _START_RES.get(kind)
    if pattern is None:
        return False
    found = pattern.finditer(text)
    return next(found, None) is not None and next(found, None) is not None
