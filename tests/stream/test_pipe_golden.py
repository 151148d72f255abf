"""`gpumon pipe`'s lines are a contract: the same committed sessions always give the same bytes.

The sessions are replayed on their own clock through the real PipeWriter. Regenerate after an
intended change with GPUMON_UPDATE_GOLDEN=1, read the diff, and update docs/pipe.md with it.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest

from gpumon.pipe import PIPE_SCHEMA, PipeWriter

from .replay import replay, tick_at

GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "pipe"
UPDATE = os.environ.get("GPUMON_UPDATE_GOLDEN") == "1"
# A normal run, a crash under gdb, a hang, and a real MLX CUDA crash with GPU memory figures.
CASES = ["torch-cpu", "fault-gdb", "fault-hang", "h200-mlx-shrink"]


def _lines(name: str) -> str:
    out = io.StringIO()
    w = PipeWriter(out, interval=1.0, clock=lambda: tick_at[0])
    replay(name, w, 1.0, w.tick)
    return out.getvalue()


@pytest.mark.parametrize("name", CASES)
def test_pipe_lines_match_golden(name: str) -> None:
    got = _lines(name)
    golden = GOLDEN / f"{name}.jsonl"
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with GPUMON_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")


def test_every_line_is_schema_versioned_json_with_stable_keys() -> None:
    keys_by_type: dict[str, set[frozenset[str]]] = {}
    for name in CASES:
        for raw in _lines(name).splitlines():
            line = json.loads(raw)
            assert line["schema"] == PIPE_SCHEMA and isinstance(line["t"], float)
            keys_by_type.setdefault(line["type"], set()).add(frozenset(line))
    # one key set per line type, whatever the values: a jq filter never meets a missing key
    assert all(len(v) == 1 for v in keys_by_type.values()), keys_by_type
    assert {"session_start", "pool", "crash", "hang", "session_end"} <= set(keys_by_type)


def test_docs_name_every_field() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "pipe.md").read_text()
    for name in CASES:
        for raw in _lines(name).splitlines():
            line = json.loads(raw)
            assert f"`{line['type']}`" in doc
            for key in line:
                assert f"`{key}`" in doc, f"docs/pipe.md does not describe {key!r}"


def test_a_crash_line_comes_before_the_interval_that_shows_it() -> None:
    lines = [json.loads(x) for x in _lines("fault-gdb").splitlines()]
    crash = next(i for i, x in enumerate(lines) if x["type"] == "crash")
    after = [x for x in lines[crash:] if x["type"] == "pool"]
    assert after and after[0]["crashes"] == 1 and after[0]["state"] in ("crashed", "stopped")
    assert after[0]["crash_signals"] == {lines[crash]["signal"]: 1}
