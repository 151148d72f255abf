"""Numbers as the screen shows them: every figure with its unit, in a fixed width.

Fixed widths matter at 10 updates a second: a value that changes length makes the line jump.
"""

from __future__ import annotations

_SI = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))
_IEC = ((1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"))


def si(value: float | None, unit: str, *, digits: int = 3) -> str:
    """`12.3 kops/s`, `4.56 TFLOP/s`: three significant digits and an SI prefix."""
    if value is None:
        return f"– {unit}"
    for scale, prefix in _SI:
        if abs(value) >= scale:
            return f"{_sig(value / scale, digits)} {prefix}{unit}"
    return f"{_sig(value, digits)} {unit}"


def _sig(x: float, digits: int) -> str:
    if x == 0:
        return "0"
    if abs(x) >= 10 ** (digits - 1):
        return f"{x:.0f}"
    if abs(x) >= 10 ** (digits - 2):
        return f"{x:.{max(digits - 2, 0)}f}"
    return f"{x:.{max(digits - 1, 0)}f}"


def nbytes(value: int | float | None) -> str:
    """Binary units, as the frameworks and the OS count memory: `1.25 GiB`."""
    if value is None:
        return "– B"
    for scale, unit in _IEC:
        if abs(value) >= scale:
            return f"{_sig(value / scale, 3)} {unit}"
    return f"{int(value)} B"


def seconds(value: float | None) -> str:
    """An op's latency: `850 µs`, `1.20 ms`, `2.31 s`."""
    if value is None:
        return "–"
    if value < 1e-3:
        return f"{value * 1e6:.0f} µs"
    if value < 1:
        return f"{_sig(value * 1e3, 3)} ms"
    return f"{_sig(value, 3)} s"


def duration(value: float) -> str:
    """A wall-clock span: `4.4 s`, `2 m 05 s`, `1 h 02 m`."""
    value = max(value, 0.0)
    if value < 60:
        return f"{value:.1f} s"
    m, s = divmod(int(value), 60)
    if m < 60:
        return f"{m} m {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} m"


def uptime(value: float) -> str:
    """Whole seconds: an uptime ticking in tenths would repaint its line 10 times a second."""
    value = max(value, 0.0)
    return f"{int(value)} s" if value < 60 else duration(value)


def clock(value: float) -> str:
    """Session-relative time for the event log and the replay bar: `03:07.4`."""
    value = max(value, 0.0)
    m, s = divmod(value, 60)
    if m >= 60:
        h, m = divmod(int(m), 60)
        return f"{h}:{m:02d}:{s:04.1f}"
    return f"{int(m):02d}:{s:04.1f}"


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}%"


def plural(n: int, word: str) -> str:
    if n == 1:
        return f"{n} {word}"
    return f"{n} {word}" + ("es" if word.endswith(("s", "sh", "ch", "x")) else "s")
