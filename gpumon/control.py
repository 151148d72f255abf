"""Pool commands as types: what a user, a scenario or `sweep` can ask of a pool.

One tagged union serves every hop — the TUI's keys build these, the supervisor routes them,
the worker `match`es on them, and the session log records them inside `Control` events — so no
reader ever parses a command back out of text. `Restart` is answered by the supervisor (a new
process); every other command travels to the worker.
"""

from __future__ import annotations

from typing import Union

import msgspec

from gpumon.fmt import plural
from gpumon.spec import PoolConfig, parse_key, validate_size, validate_threads


class Command(msgspec.Struct, tag_field="op", frozen=True, kw_only=True, omit_defaults=True):
    pass


class SetThreads(Command, tag="set_threads", frozen=True, kw_only=True):
    threads: int


class Pause(Command, tag="pause", frozen=True):
    pass


class Resume(Command, tag="resume", frozen=True):
    pass


class Stop(Command, tag="stop", frozen=True):
    pass


class SetWorkload(Command, tag="set_workload", frozen=True, kw_only=True):
    """Any field left None keeps the current value."""

    workload: str | None = None
    size: int | None = None
    dtype: str | None = None


class SetPolicy(Command, tag="set_policy", frozen=True, kw_only=True):
    policy: str


class Restart(Command, tag="restart", frozen=True):
    pass


WorkerCommand = Union[SetThreads, Pause, Resume, Stop, SetWorkload, SetPolicy]  # noqa: UP007
PoolCommand = Union[  # noqa: UP007 - msgspec needs a real Union of tagged Structs
    SetThreads, Pause, Resume, Stop, SetWorkload, SetPolicy, Restart
]

# Commands after which a pool measures a new configuration (analysis starts a new run).
RECONFIGURING = (SetThreads, SetPolicy, SetWorkload, Resume)


def op(cmd: Command) -> str:
    """The command's wire name (`set_threads`)."""
    return str(cmd.__struct_config__.tag)


def describe(cmd: Command) -> str:
    """A short human form for event lines and reports: `threads 8`, `workload mlp 512`."""
    match cmd:
        case SetThreads(threads=n):
            return f"threads {n}"
        case SetPolicy(policy=p):
            return f"policy {p}"
        case SetWorkload(workload=w, size=s, dtype=d):
            parts = [str(x) for x in (w, s, d) if x is not None]
            return "workload " + " ".join(parts) if parts else "workload"
        case _:
            return op(cmd)


def remembered(config: PoolConfig, cmd: PoolCommand) -> tuple[PoolConfig, str] | None:
    """A command to a pool with no worker (crashed, stopped, failed) that its next start can
    carry out: the config it will start with and how to say so; None for the others. Values
    are checked as the command line checks them (a SpecError is one line)."""
    replace = msgspec.structs.replace
    match cmd:
        case SetThreads(threads=n):
            return replace(config, threads=validate_threads(n)), f"with {plural(n, 'thread')}"
        case SetPolicy(policy=p):
            return replace(config, policy=str(parse_key("policy", p))), f"with policy {p}"
        case SetWorkload(workload=w, size=s, dtype=d):
            later = replace(
                config,
                workload=str(parse_key("workload", w)) if w else config.workload,
                size=validate_size(s) if s else config.size,
                dtype=str(parse_key("dtype", d)) if d else config.dtype,
            )
            return later, f"with {later.workload} {later.size or ''} {later.dtype or ''}".rstrip()
    return None
