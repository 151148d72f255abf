"""The one sanitiser for untrusted text: worker output, crash reports, logs, thread names.

Anything gpumon did not write itself may carry terminal control sequences (a crafted dump can
clear the screen or set the clipboard with OSC 52) or bidi overrides that make a frame read as
something it is not. Such text is data: before it reaches a terminal or a Markdown file, every
control character is shown as a visible escape (`\\x1b`, `\\u202e`) instead of being obeyed.
Printable text, including non-ASCII letters and C++ symbols, passes unchanged.

`text()` keeps newlines and tabs (multi-line artifacts), `line()` also escapes those (a thread
name, a table cell). `md_code()` and `md_cell()` add what Markdown needs on top.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

T = TypeVar("T")

# C0 controls, DEL and C1 controls; bidi embeddings, overrides and isolates; the Unicode line
# and paragraph separators (some terminals and renderers break lines on them); zero-width and
# other format characters that can hide text (ZWSP, ZWNJ/ZWJ are kept out of frames too).
_UNSAFE = (
    "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb"
)
_TEXT = re.compile(f"[{_UNSAFE}]")
_LINE = re.compile(f"[{_UNSAFE}\t\n]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(m: re.Match[str]) -> str:
    ch = m.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def text(s: str) -> str:
    """Multi-line untrusted text with every control character but newline and tab escaped.
    A lone carriage return (which would overwrite a line on a terminal) is escaped too; CRLF
    line ends become plain newlines."""
    if not s:
        return s
    s = s.replace("\r\n", "\n")
    return _TEXT.sub(_escape, s) if _TEXT.search(s) else s


def line(s: str) -> str:
    """One line of untrusted text: newlines and tabs escaped as well."""
    if not s:
        return s
    return _LINE.sub(_escape, s) if _LINE.search(s) else s


def is_clean(s: str) -> bool:
    """True when `text(s)` would change nothing (beyond CRLF): for tests and fast paths."""
    return _TEXT.search(s.replace("\r\n", "\n")) is None


def md_code(s: str, lang: str = "") -> list[str]:
    """A fenced Markdown code block holding untrusted text, as lines. The fence is longer than
    any run of backticks inside, so the text cannot close the block and inject Markdown."""
    body = text(s)
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    fence = "`" * max(3, longest + 1)
    return [fence + lang, *body.splitlines(), fence]


_MD_CELL = re.compile(r"([\\`*_\[\]<>|#])")


def md_cell(s: str) -> str:
    """Untrusted text inside a Markdown table cell or a line of prose: one line, control
    characters escaped, and the characters Markdown would interpret (emphasis, links, HTML,
    the cell separator) backslash-escaped so they show as written."""
    return _MD_CELL.sub(r"\\\1", line(s))


def md_inline_code(s: str) -> str:
    """Untrusted text as inline code (`like this`), one line, with a delimiter it cannot
    close. Inside code spans Markdown interprets nothing else; `|` still ends a table cell in
    GitHub's renderer, so it is escaped too."""
    body = line(s).replace("|", "\\|")
    longest = max((len(run) for run in re.findall(r"`+", body)), default=0)
    tick = "`" * (longest + 1)
    pad = " " if body.startswith("`") or body.endswith("`") else ""
    return f"{tick}{pad}{body}{pad}{tick}"


def data(obj: Any) -> Any:
    """Builtin data (dicts, lists, strings, numbers) with every string and key run through
    `text()`: what a screen may show of a whole structure."""
    if isinstance(obj, str):
        return text(obj)
    if isinstance(obj, dict):
        return {data(k): data(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [data(v) for v in obj]
    return obj


def struct(obj: T) -> T:
    """A copy of a msgspec Struct (an event, a crash report) whose strings are all inert; the
    object itself when nothing in it needed escaping (the common case costs one encode)."""
    import msgspec

    raw = msgspec.json.encode(obj)
    # JSON already escapes C0 controls as \\u00XX; the rest show up as themselves in UTF-8.
    if b"\\u00" not in raw and _TEXT.search(raw.decode("utf-8", "replace")) is None:
        return obj
    return msgspec.convert(
        data(msgspec.to_builtins(obj)),
        type(obj),
        strict=False,
    )
