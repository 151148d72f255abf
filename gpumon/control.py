"""Pool commands as types: what a user, a scenario or `sweep` can ask of a pool.

One tagged union serves every hop — the TUI's keys build these, the supervisor routes them,
the worker `match`es on them, and the session log records them inside `Control` events — so no
reader ever parses a command back out of text. `Restart` is answered by the supervisor (a new
process); every other command travels to the worker.
"""

from __future__ import annotations

from typing import Union

import msgspec


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
