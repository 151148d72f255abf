"""One gdb frame line -> Frame: `#N  0xADDR in SYMBOL (ARGS) from LIB` or `... at FILE:LINE`.

gdb prints the argument list last, after a symbol that may itself contain parentheses (C++
signatures), and then either ` at FILE:LINE` (debug info) or ` from LIB` (none). A paste can
cut the line after `from` or wrap ` at FILE:LINE` onto the next line; the document parser joins
wrapped lines before they get here.
"""

from __future__ import annotations

import re

from gpumon.crash._values import basename, parse_hex
from gpumon.crash.model import Frame

FRAME = re.compile(r"^#(\d+)[ \t]+(?:(0x[0-9a-fA-F]+) in )?(.*)$")
FRAME_NUMBER = re.compile(r"^#(\d+)[ \t]")
_LINE_NUMBER = re.compile(r":(\d+)$")
SIGNAL_HANDLER = "<signal handler called>"
_MAX_ARGS_SCAN = 64 * 1024


def _split_args(text: str) -> tuple[str | None, str]:
    """`foo::bar(int) (x=1, y=<optimized out>)` -> ("foo::bar(int)", "(x=1, ...)").

    gdb prints the argument list last, so it is the final balanced parenthesis group; what is
    before it (which may itself contain parentheses: C++ signatures) is the symbol."""
    text = text.strip()
    if not text.endswith(")"):
        return (text or None), ""
    depth = 0
    # Argument lists are short; a scan that goes on this long is not one (hostile input).
    stop = max(-1, len(text) - 1 - _MAX_ARGS_SCAN)
    for i in range(len(text) - 1, stop, -1):
        ch = text[i]
        if ch == ")":
            depth += 1
        elif ch == "(":
            depth -= 1
            if depth == 0:
                symbol = text[:i].strip()
                return (symbol or None), text[i:]
    return (text or None), ""


def parse_frame_line(line: str) -> tuple[Frame, str | None] | None:
    """One `#N ...` line -> (Frame, image path or None); None when it is not a frame."""
    m = FRAME.match(line)
    if not m:
        return None
    index, address, rest = m.groups()
    rest = rest.strip()
    # A paste cut right after the keyword: "... () from" / "... () at"
    for cut in (" from", " at"):
        if rest.endswith(cut):
            rest = rest[: -len(cut)]
    path = file = None
    lineno = None
    # gdb ends a frame with " at FILE:LINE" (debug info) or " from LIB" (none); the last
    # occurrence is the real one (arguments can contain either word). Found with rfind:
    # a regex searched over a hostile line would backtrack quadratically.
    num = _LINE_NUMBER.search(rest)
    at = rest.rfind(" at ", 0, num.start()) if num else -1
    if num and at != -1 and rest[at + 4 : num.start()].strip():
        file, lineno = rest[at + 4 : num.start()].strip(), int(num.group(1))
        rest = rest[:at]
    else:
        frm = rest.rfind(" from ")
        if frm != -1 and rest[frm + 6 :].strip():
            path = rest[frm + 6 :].strip()
            rest = rest[:frm]
    if rest.strip() == SIGNAL_HANDLER:
        symbol: str | None = SIGNAL_HANDLER
    else:
        symbol, _args = _split_args(rest)
        if symbol == "??":
            symbol = None
    frame = Frame(
        index=int(index),
        image=basename(path) if path else None,
        symbol=symbol,
        address=parse_hex(address),
        file=file,
        line=lineno,
    )
    return frame, path
