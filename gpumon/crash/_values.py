"""Type-checked reads from untrusted parsed JSON and small text helpers shared by the parsers.

Crash reports come from other machines, get hand-edited and get truncated; a field with the
wrong type must become "missing", never an exception deep inside a parser.
"""

from __future__ import annotations

from typing import Any


def as_int(value: Any) -> int | None:
    # bool is an int subclass; `true` is never a pid or an offset.
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            return int(text, 16) if text.lower().startswith("0x") else int(text)
        except ValueError:
            return None
    return None


def as_str(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def basename(path: str) -> str:
    """Last component of a POSIX or Windows path ("/a/b/libx.so" -> "libx.so")."""
    stripped = path.rstrip("/\\")
    for sep in ("/", "\\"):
        if sep in stripped:
            stripped = stripped.rsplit(sep, 1)[-1]
    return stripped or path


def parse_hex(text: str | None) -> int | None:
    if not text:
        return None
    try:
        return int(text, 16)
    except ValueError:
        return None
