"""What each concurrency policy means on the installed MLX version, and the streams it uses.

MLX changed its thread model twice, so one policy name maps to different mechanisms:

  version          per-thread                         shared                           default
  < 0.31.2         one mx.new_stream per thread,      the default stream every thread  shared
                   made on that thread                shares (MLX's own behaviour)
  0.31.2 - 0.31.x  each thread's own default stream   one mx.new_stream used by every  per-thread
                                                      thread, if this version lets a
                                                      stream cross threads (probed)
  >= 0.32.0        each thread's own default stream   one mx.new_thread_unsafe_stream  per-thread

`locked` is the same stream choice as MLX's default plus gpumon's process-wide lock around
submission, so it works everywhere. A framework's own default is never refused; any other
policy is offered only after a probe on this device shows it runs, and when it does not, the
reason is the error the framework gave.

`plan()` is a pure function of the version and the probe results, tested without processes;
the probes and `Streams` are the parts that touch MLX.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

PER_THREAD_DEFAULT_STREAMS = (0, 31, 2)  # first release with a default stream per thread
UNSAFE_STREAM_RELEASE = "0.32.0"  # first release with mx.new_thread_unsafe_stream
PROBE_TIMEOUT = 10.0


def version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split(".")[:3]:
        digits = ""
        for ch in part:
            if not ch.isdigit():
                break  # "0rc1" is 0, not 1
            digits += ch
        out.append(int(digits) if digits else 0)
    while len(out) < 3:
        out.append(0)
    return tuple(out)


def shares_default_stream(version: str) -> bool:
    """True where every thread shares one default stream by design (MLX < 0.31.2)."""
    return version_tuple(version) < PER_THREAD_DEFAULT_STREAMS


@dataclass(frozen=True)
class Plan:
    # True where every thread shares one default stream by design (MLX < 0.31.2)
    shared_default_stream: bool
    default: str
    # policy -> "" when available, else why not (shown to the user as is)
    reasons: dict[str, str]
    # policy -> the mechanism it uses on this version, for the worker's log and the docs
    how: dict[str, str]

    def available(self) -> list[str]:
        return [p for p, why in self.reasons.items() if not why]


def plan(
    version: str,
    has_unsafe_stream: bool,
    per_thread_error: str | None = None,
    shared_error: str | None = None,
) -> Plan:
    """Decide the policies of one MLX version.

    `per_thread_error`: what a stream made with mx.new_stream on a worker thread raised there
    (only probed where every thread shares the default stream); `shared_error`: what a stream
    made on one thread raised when another thread used it (only probed on 0.31.2 - 0.31.x).
    None means the probe passed or was not needed.
    """
    v = version
    locked_how = "the default stream, with gpumon's process-wide lock around each submission"
    if shares_default_stream(v):
        how = {
            "shared": f"the one default stream every thread shares: MLX's own behaviour before "
            f"0.31.2 (mlx {v}), no lock",
            "per-thread": "one mx.new_stream per thread, made on that thread",
            "locked": locked_how,
        }
        reasons = {"per-thread": "", "shared": "", "locked": ""}
        if per_thread_error:
            reasons["per-thread"] = (
                f"mlx {v} shares one default stream between threads (a default stream per "
                f"thread arrived in 0.31.2), and a stream of its own made with mx.new_stream "
                f"failed on a worker thread: {per_thread_error}"
            )
        return Plan(True, "shared", reasons, how)
    how = {
        "per-thread": f"each thread's own default stream: MLX's own behaviour since 0.31.2 "
        f"(mlx {v})",
        "locked": f"each thread's own default stream, with gpumon's process-wide lock "
        f"around each submission (mlx {v})",
    }
    reasons = {"per-thread": "", "shared": "", "locked": ""}
    if has_unsafe_stream:
        how["shared"] = "one mx.new_thread_unsafe_stream used by every thread, no lock"
    else:
        how["shared"] = "one mx.new_stream made once and used by every thread, no lock"
        if shared_error:
            reasons["shared"] = (
                f"mlx {v} gives every thread its own streams, and one made on another thread "
                f"cannot be used here ({shared_error}); mx.new_thread_unsafe_stream, which "
                f"can be shared, arrived in {UNSAFE_STREAM_RELEASE}"
            )
    return Plan(False, "per-thread", reasons, how)


# ---- probes: small real runs on a helper thread -------------------------------------------


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def _on_helper_thread(mx: Any, fn: Any) -> str | None:
    """Run fn() on a fresh thread; the error it raised as one line, or None if it worked."""
    box: list[str | None] = [f"did not finish within {PROBE_TIMEOUT:.0f} s"]

    def run() -> None:
        try:
            fn()
            box[0] = None
        except Exception as e:  # any framework error is the answer, not a worker failure
            box[0] = _first_line(e)
        finally:
            if hasattr(mx, "clear_streams"):  # 0.32 aborts at exit otherwise
                mx.clear_streams()

    th = threading.Thread(target=run, name="gpumon_mlx_probe", daemon=True)
    th.start()
    th.join(PROBE_TIMEOUT)
    return box[0]


def probe_own_stream(mx: Any, device: Any) -> str | None:
    """Can a worker thread make a stream with mx.new_stream and evaluate on it?"""

    def fn() -> None:
        s = mx.new_stream(device)
        mx.eval(mx.ones((4, 4), stream=s) + 1)

    return _on_helper_thread(mx, fn)


def probe_cross_thread_stream(mx: Any, device: Any) -> tuple[Any, str | None]:
    """Make one mx.new_stream here and use it on another thread. Returns the stream (to be the
    shared one when the probe passes) and the error, if any."""
    try:
        s = mx.new_stream(device)
    except Exception as e:
        return None, _first_line(e)
    return s, _on_helper_thread(mx, lambda: mx.eval(mx.ones((4, 4), stream=s) + 1))


class Streams:
    """Hands each worker thread the stream its policy means on this version. Called on the
    worker thread itself: MLX streams (0.31.2+) belong to the thread that made them."""

    def __init__(self, mx: Any, device: Any, p: Plan, shared: Any = None) -> None:
        self.mx = mx
        self.device = device
        self.plan = p
        self.legacy = p.shared_default_stream
        self._shared = shared
        self._lock = threading.Lock()
        self._local = threading.local()

    def for_policy(self, policy: str) -> Any:
        mx = self.mx
        if policy == "per-thread" and self.legacy:
            # One per thread, reused across workload changes: old MLX cannot free streams.
            s = getattr(self._local, "stream", None)
            if s is None:
                s = self._local.stream = mx.new_stream(self.device)
            return s
        if policy == "shared" and not self.legacy:
            with self._lock:  # two threads starting together must not make two streams
                if self._shared is None:
                    make = getattr(mx, "new_thread_unsafe_stream", None) or mx.new_stream
                    self._shared = make(self.device)
                return self._shared
        # A Device as stream argument means "this thread's default stream on that device":
        # shared by every thread before 0.31.2, the thread's own since.
        return self.device
