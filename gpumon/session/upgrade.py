"""Reads logs of older schemas into today's events, so every reader sees one shape.

Schema 1 (gpumon before the typed commands) differs in three ways, each mapped here and only
here:
  - a `control` line carried the command as text (`"command": "set_threads"`, `"args": {...}`)
    and a set_workload's resolved size and dtype only in its `detail` ("matmul 512 float32");
    it becomes a typed command, and `config` (the pool's configuration after the command) is
    rebuilt by folding the pool's start, ready and earlier commands;
  - a stall's recovery was a notice whose text said "answered again"; it becomes StallCleared;
  - a stall carried its stacks inline; they become StallArtifact events of that stall.
"""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from gpumon import control
from gpumon import events as ev

_CLEARED = "answered again after a stall"


def decode_v1(line: bytes) -> list[ev.Event]:
    """One schema-1 line as today's events; raises msgspec errors like ev.decode."""
    if (
        b'"type":"control"' not in line
        and b'"type":"notice"' not in line
        and (b'"type":"stall"' not in line)
    ):
        return [ev.decode(line)]
    raw = msgspec.json.decode(line)
    if not isinstance(raw, dict):
        return [ev.decode(line)]
    kind = raw.get("type")
    if kind == "control":
        return [_control(raw)]
    if kind == "notice" and _CLEARED in str(raw.get("message", "")):
        return [ev.StallCleared(t=float(raw.get("t", 0.0)), pool=str(raw.get("pool", "")))]
    if kind == "stall":
        return _stall(ev.decode(line))
    return [ev.decode(line)]


def _control(raw: dict[str, object]) -> ev.Event:
    args = raw.pop("args", None) or {}
    name = raw.pop("command", "")
    if not isinstance(args, dict):
        args = {}
    fields = {k: v for k, v in args.items() if v is not None}
    if name == "set_workload" and raw.get("ok", True):
        # The only place schema 1 said which size and dtype a workload change resolved to.
        parts = str(raw.get("detail", "")).split()
        if len(parts) == 3 and parts[1].isdigit():
            fields.update(workload=parts[0], size=int(parts[1]), dtype=parts[2])
    raw["command"] = {"op": name, **fields}
    return msgspec.convert(raw, ev.AnyEvent)


def _stall(e: ev.Event) -> list[ev.Event]:
    assert isinstance(e, ev.Stall)
    e.stall_id = e.stall_id or f"{e.pool}-stall-{int(e.t * 1000)}"
    out: list[ev.Event] = [e]
    if e.stacks:
        out.append(
            ev.StallArtifact(
                t=e.t, stall_id=e.stall_id, pool=e.pool, kind="faulthandler", text=e.stacks
            )
        )
    if e.native is not None:
        out.append(
            ev.StallArtifact(
                t=e.t, stall_id=e.stall_id, pool=e.pool, kind="native", report=e.native
            )
        )
    e.stacks, e.native = "", None
    return out


def fill_configs(events: Iterable[ev.Event]) -> None:
    """Give each schema-1 Control the pool's configuration after it (in place)."""
    fill = ConfigFill()
    for e in events:
        fill.apply(e)


class ConfigFill:
    """fill_configs one event at a time, for a reader that never holds the whole log: each
    pool's configuration is folded from its start, ready and earlier commands."""

    def __init__(self) -> None:
        self.configs: dict[str, ev.PoolConfig] = {}

    def apply(self, e: ev.Event) -> None:
        configs = self.configs
        replace = msgspec.structs.replace
        if isinstance(e, ev.PoolStarting):
            configs[e.pool] = e.config
        elif isinstance(e, ev.PoolReady) and e.pool in configs:
            configs[e.pool] = replace(configs[e.pool], size=e.size, dtype=e.dtype)
        elif isinstance(e, ev.Control) and e.pool in configs:
            cfg = configs[e.pool]
            if e.ok:
                match e.command:
                    case control.SetThreads(threads=n):
                        cfg = replace(cfg, threads=n)
                    case control.SetPolicy(policy=p):
                        cfg = replace(cfg, policy=p)
                    case control.SetWorkload(workload=w, size=s, dtype=d):
                        cfg = replace(
                            cfg,
                            workload=w or cfg.workload,
                            size=s or cfg.size,
                            dtype=d or cfg.dtype,
                        )
            configs[e.pool] = cfg
            e.config = cfg
