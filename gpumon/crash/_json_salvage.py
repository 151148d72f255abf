"""Read what a truncated JSON document holds: close it at one of its last commas.

A pasted `.ips` body is often cut short (the issue's size limit, a copy that stopped early);
everything before the cut is still exact. The document is closed after one of its last few
complete values with the brackets that are open there, and decoded. Small documents are
tokenised exactly; a large one (a 64 MiB body) is closed with C-level regular expressions
only: strings are blanked, balanced bracket pairs removed until none is left, and what
remains is the stack of open brackets.
"""

from __future__ import annotations

import json
import re
from collections import deque
from typing import Any

# Tokens that matter for closing a truncated JSON document: strings (skipped whole), brackets
# and commas. An unterminated string at the very end is matched so the scan can stop there.
# Strings are matched as "unrolled loops" (runs of plain characters, then one escape):
# an alternation per character is ~50x slower on a multi-megabyte string.
_TOKENS = re.compile(
    r'(?P<s>"[^"\\]*(?:\\.[^"\\]*)*")|(?P<u>"[^"\\]*(?:\\.[^"\\]*)*\Z)|(?P<p>[{}\[\],])', re.S
)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_PAIR = re.compile(r"\{[^{}\[\]]*\}|\[[^{}\[\]]*\]")
_TRIES = 3
_LARGE = 4 * 1024 * 1024  # above this, the C-level closing is used


def salvage(text: str, start: int) -> dict[str, Any] | None:
    """The object that `text[start:]` begins, closed after one of its last values, or None."""
    if len(text) - start > _LARGE:
        return _salvage_large(text, start)
    candidates: deque[int] = deque(maxlen=_TRIES)
    depth = 0
    for m in _TOKENS.finditer(text, start):
        if m.lastgroup == "u":
            break  # the text ends inside a string
        if m.lastgroup == "s":
            continue
        tok = m.group(0)
        if tok in "{[":
            depth += 1
        elif tok in "}]":
            depth -= 1
            if depth <= 0:
                break  # complete (or broken beyond repair): nothing to close
        elif tok == "," and depth > 0:
            candidates.append(m.start())
    for cut in reversed(candidates):
        closers = _closers(text, start, cut)
        body = _decode(text[start:cut], closers)
        if body is not None:
            return body
    return None


def _closers(text: str, start: int, cut: int) -> str | None:
    stack: list[str] = []
    for m in _TOKENS.finditer(text, start, cut):
        if m.lastgroup != "p":
            continue
        tok = m.group(0)
        if tok in "{[":
            stack.append("}" if tok == "{" else "]")
        elif tok in "}]" and (not stack or stack.pop() != tok):
            return None
    return "".join(reversed(stack))


def _decode(prefix: str, closers: str | None) -> dict[str, Any] | None:
    if closers is None:
        return None
    try:
        body = json.loads(prefix + closers)
    except (ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


def _salvage_large(text: str, start: int) -> dict[str, Any] | None:
    end = len(text)
    for _ in range(_TRIES):
        cut = max(text.rfind("},", start, end), text.rfind("],", start, end))
        if cut == -1:
            return None
        prefix = text[start : cut + 1]
        body = _decode(prefix, _closers_large(prefix))
        if body is not None:
            return body
        end = cut
    return None


def _closers_large(prefix: str) -> str | None:
    """The brackets that close `prefix`, found without a Python-level scan."""
    blanked = _STRING.sub('""', prefix)
    if blanked.count('"') % 2:
        return None  # the cut is inside a string
    while True:
        shorter = _PAIR.sub("", blanked)
        if len(shorter) == len(blanked):
            break
        blanked = shorter
    open_brackets = re.findall(r"[{}\[\]]", blanked)
    if any(b in "}]" for b in open_brackets):
        return None  # a closer without its opener: not JSON that can be closed
    return "".join("}" if b == "{" else "]" for b in reversed(open_brackets))
