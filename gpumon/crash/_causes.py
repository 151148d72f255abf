"""Lines in which a runtime states why the process is dying, as opposed to ordinary output.

Pastes carry whatever the program printed before it died: training progress, log lines, the
shell prompt. Only a runtime's own last words say why it died (`terminate called after
throwing an instance of 'c10::Error'`, `what():  ...`, a failed assertion, libc's heap check),
so only those become the report's application-specific information; anything else before a
dump is context, and taking it as the cause would put a progress bar into the verdict.
"""

from __future__ import annotations

import re

_CAUSE = re.compile(
    r"""(?:
        terminate\ called\                           # libstdc++: after throwing ..., without ...
      | \s*what\(\):\s                               # ... and the exception's message
      | libc\+\+abi(?:\.dylib)?:\ terminat           # libc++: terminating due to uncaught ...
      | \*\*\*\ Terminating\ app\ due\ to\ uncaught
      | .*Assertion\ [`'].*'\ failed\.?\s*$          # glibc assert()
      | Assertion\ failed:\ .*\ file\ .*\ line\ \d+  # macOS assert()
      | .*\bassertion\ .*\ failed\b                   # libc++ hardening / verbose_abort
      | .*\bfailed\ assertion\ [`']                  # Metal API validation
      | \*\*\*\ Error\ in\ [`']                      # glibc heap corruption ...
      | Fatal\ glibc\ error:[ ]
      | (?:free|malloc|realloc)\(\):\ \S
      | double\ free\ or\ corruption
      | corrupted\ (?:size|double-linked)
      | munmap_chunk\(\):[ ]
      | \*\*\*\ stack\ smashing\ detected
      | ASSERT\ failure\ in\                          # Qt
      | Check\ failed:\                               # glog / Chromium CHECK
      | F\d{4}\ [\d:.]+\ +\d+\ \S+:\d+\]\ Check\ failed
    )""",
    re.X,
)
_MAX_LINE = 2000  # a cause is a sentence; a megabyte "line" is not one (and must stay fast)


def is_cause(line: str) -> bool:
    """True when `line` is a runtime's statement of why the process is dying."""
    stripped = line.strip()
    if not stripped or len(stripped) > _MAX_LINE:
        return False
    return _CAUSE.match(stripped) is not None or stripped.startswith("what():")


def causes(lines: list[str]) -> list[str]:
    """The cause lines among `lines`, stripped, in order (the `what():` line after a
    `terminate called` line belongs to it and is kept with it)."""
    return [line.strip() for line in lines if is_cause(line)]


_GLIBC_ASSERT = re.compile(r"^(?P<where>\S+?:\d+): .*?(?P<what>Assertion [`'].*' failed)\.?\s*$")
_SHORT = 160


def short_cause(line: str) -> str:
    """A cause line short enough for a verdict: glibc's assertion line names the function
    with all its template arguments, so only `Assertion '...' failed (file:line)` is kept."""
    m = _GLIBC_ASSERT.match(line.strip()) if len(line) <= _MAX_LINE else None
    if m is not None:
        where = m.group("where").rsplit("/", 1)[-1]
        return f"{m.group('what')} ({where})"
    line = line.strip()
    return line if len(line) <= _SHORT else line[: _SHORT - 1] + "…"
