"""Frame kinds, short names and the verdict, in one place for callers outside the parsers.

The pieces live in `kinds` (which layer a frame belongs to), `symbols` (a frame in a few
words) and `verdict` (the one-line statement); this module re-exports them so the TUI, the
exporters and the tests import one name.
"""

from __future__ import annotations

from gpumon.crash.kinds import classify_frame, classify_image, classify_report
from gpumon.crash.symbols import (
    demangle_name,
    elide_symbol,
    frame_label,
    is_python_source,
    short_path,
    short_symbol,
    thread_label,
    trap_message,
)
from gpumon.crash.verdict import (
    called_from_code,
    crash_frames,
    driver_entry,
    driver_threads,
    first_interesting,
    verdict,
)

__all__ = [
    "called_from_code",
    "classify_frame",
    "classify_image",
    "classify_report",
    "crash_frames",
    "demangle_name",
    "driver_entry",
    "driver_threads",
    "elide_symbol",
    "first_interesting",
    "frame_label",
    "is_python_source",
    "short_path",
    "short_symbol",
    "thread_label",
    "trap_message",
    "verdict",
]
