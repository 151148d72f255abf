"""Helpers every line-based parser shares: keeping frames under a cap, and noticing that a
frame list restarted without a thread header.

A pasted report loses thread headers (an unrecognised header, HTML on the same line, a header
cut off by the paste). Frame numbers still restart at 0 for the next thread, so a number that
does not follow the previous one starts a new, unlabelled thread instead of silently merging two
threads' frames into one.
"""

from __future__ import annotations

from gpumon.crash.model import Frame, Thread


def last_index(thread: Thread) -> int | None:
    """The number of the thread's last frame, counting frames that were only counted."""
    if not thread.frames:
        return None
    return thread.frames[-1].index + thread.frames_omitted


def restarts(thread: Thread, index: int) -> bool:
    """Would a frame numbered `index` go backwards in `thread`? (then it is another thread)"""
    last = last_index(thread)
    return last is not None and index <= last


def add_frame(thread: Thread, frame: Frame, cap: int | None) -> None:
    """Append `frame`, or only count it once the thread holds `cap` frames."""
    if cap is not None and len(thread.frames) >= cap:
        thread.frames_omitted += 1
    else:
        thread.frames.append(frame)


def full(thread: Thread, cap: int | None) -> bool:
    """True when the next frame of `thread` would only be counted."""
    return cap is not None and len(thread.frames) >= cap


class Unlabelled:
    """Numbers for threads whose header is missing: -1, -2, ... in order of appearance (a
    negative index can never be mistaken for a number the report gave)."""

    def __init__(self) -> None:
        self.count = 0

    def new(self, note: str) -> Thread:
        self.count += 1
        return Thread(index=-self.count, note=note)


NO_HEADER = "no thread header in the input"
RESTARTED = "no thread header: frame numbering restarted here"
