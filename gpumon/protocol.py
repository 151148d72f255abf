"""Messages between a worker process and the supervisor, one JSON object per line.

They travel over a dedicated socketpair fd, never stdout/stderr: native libraries write there
(Metal assertions, CUDA errors) and those streams are captured to files for the crash record.
Lines are small and self-delimiting, so a torn or garbage line costs one message, not the
stream. `Hello.protocol` is checked by the supervisor; a worker from another gpumon version is
refused with a clear error rather than misread.

Version 2: commands are typed (gpumon.control), and an Ack carries the worker's whole state
after the command (`WorkerState`), so the supervisor never reads a result back out of text.
"""

from __future__ import annotations

from typing import Union

import msgspec

from gpumon.control import WorkerCommand
from gpumon.events import Sample

PROTOCOL_VERSION = 2
MAX_LINE = 1 << 20  # a line longer than this is garbage, not a message


class Msg(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    pass


# ---- worker -> supervisor ---------------------------------------------------------------


class Hello(Msg, tag="hello", kw_only=True):
    protocol: int
    pid: int
    backend: str
    device: str
    device_name: str
    device_reason: str
    framework: str
    versions: dict[str, str] = msgspec.field(default_factory=dict)
    policies: dict[str, str] = msgspec.field(default_factory=dict)
    policy: str = ""  # the policy it runs: the requested one, or the framework's own default
    policy_meanings: dict[str, str] = msgspec.field(default_factory=dict)
    size: int
    dtype: str
    flop_per_op: float
    threads: int


class Fatal(Msg, tag="fatal", kw_only=True):
    """The worker cannot start (framework missing, device unavailable, bad size ...)."""

    message: str
    fix: str = ""


class WorkerState(msgspec.Struct, kw_only=True, frozen=True):
    """What the worker is doing after a command: the pool's live configuration."""

    threads: int
    state: str  # running | paused | stopping
    policy: str
    workload: str
    size: int
    dtype: str
    flop_per_op: float


class Ack(Msg, tag="ack", kw_only=True):
    id: int
    ok: bool = True
    detail: str = ""  # for people: "2 -> 4 threads", or why the command was refused
    state: WorkerState


class ThreadFailed(Msg, tag="thread_failed", kw_only=True):
    """A worker thread died of a Python-level framework error; the process lives on."""

    slot: int
    error: str


class Bye(Msg, tag="bye", kw_only=True):
    reason: str = "stopped"
    ops_total: int = 0


# Written by gpumon/supervisor/gdb_driver.py from inside gdb on the same socket.
class Dying(Msg, tag="dying", kw_only=True):
    signal: str
    signo: int


class NativeReady(Msg, tag="native_ready", kw_only=True):
    path: str


class SnapshotReady(Msg, tag="snapshot_ready", kw_only=True):
    path: str


class Exited(Msg, tag="exited", kw_only=True):
    exit_code: int | None = None
    signo: int | None = None


class DebuggerError(Msg, tag="debugger_error", kw_only=True):
    message: str


# ---- supervisor -> worker ---------------------------------------------------------------


class Request(Msg, tag="request", kw_only=True):
    id: int
    command: WorkerCommand


WorkerMsg = Union[  # noqa: UP007 - msgspec needs a real Union of tagged Structs
    Hello,
    Fatal,
    Ack,
    ThreadFailed,
    Bye,
    Sample,
    Dying,
    NativeReady,
    SnapshotReady,
    Exited,
    DebuggerError,
]

_enc = msgspec.json.Encoder()
_worker_dec = msgspec.json.Decoder(WorkerMsg)
_request_dec = msgspec.json.Decoder(Request)


def encode(msg: msgspec.Struct) -> bytes:
    return _enc.encode(msg) + b"\n"


def decode_worker(line: bytes) -> Msg | Sample:
    """Raises msgspec.DecodeError / ValidationError on garbage: the caller counts and skips."""
    return _worker_dec.decode(line)


def decode_request(line: bytes) -> Request:
    return _request_dec.decode(line)
