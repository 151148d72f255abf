"""Hypothesis fuzzing: whatever the text, every parser returns a CrashReport or raises
CrashParseError, and whatever it returns can be classified, judged, rendered and encoded.

Inputs: arbitrary text; every real fixture mutated (truncated, lines deleted or duplicated,
bytes flipped, junk inserted); .ips bodies with values of the wrong type at random places.
Budgets are small so the whole crash suite stays well under a minute on two cores.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from gpumon.crash.classify import driver_threads, verdict
from gpumon.crash.faulthandler import parse_faulthandler
from gpumon.crash.gdb import parse_gdb
from gpumon.crash.ips import parse_ips
from gpumon.crash.model import CrashParseError, CrashReport
from gpumon.crash.parse import decode, parse_report
from gpumon.crash.render import markdown_summary, render_report, stack_lines
from gpumon.crash.text import parse_text

TESTS = Path(__file__).resolve().parents[1]
CORPUS = sorted(
    [
        *(TESTS / "fixtures" / "crash-reports").glob("*.ips"),
        *(TESTS / "fixtures" / "crash-reports").glob("*.crash"),
        *(TESTS / "fixtures" / "crash-reports").glob("*.md"),
        *(TESTS / "fixtures" / "native").glob("*.txt"),
        *(Path(__file__).parent / "samples").glob("*.txt"),
    ]
)
# The big 59-thread .ips is kept for the structural tests; mutating it is slow and adds little
# over its smaller siblings of the same format.
SMALL = [p for p in CORPUS if p.stat().st_size < 64_000]
CORPUS_BYTES = {p.name: p.read_bytes() for p in CORPUS}
PARSERS: list[Callable[..., CrashReport]] = [
    parse_report,
    parse_ips,
    parse_text,
    parse_faulthandler,
    parse_gdb,
]
# GPUMON_FUZZ_SCALE=50 runs a long fuzz by hand; the default keeps CI fast.
SCALE = int(os.environ.get("GPUMON_FUZZ_SCALE", "1"))


def budget(n: int) -> settings:
    return settings(
        max_examples=n * SCALE, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )


FAST = budget(60)


def exercise(report: CrashReport) -> None:
    """Everything `gpumon crash` and the exporters do with a report."""
    assert isinstance(report, CrashReport)
    line = verdict(report)
    assert isinstance(line, str) and "\n" not in line
    driver_threads(report)
    for t in report.threads[:5]:
        stack_lines(t, limit=20)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(render_report(report))
    markdown_summary(report)
    msgspec.json.decode(msgspec.json.encode(report), type=CrashReport)


def check(parser: Callable[..., CrashReport], data: str) -> None:
    try:
        report = parser(data)
    except CrashParseError as e:
        message = str(e)
        assert message and "\n" not in message
        return
    exercise(report)


@FAST
@given(st.text(max_size=3000), st.sampled_from(PARSERS))
def test_arbitrary_text(data: str, parser: Callable[..., CrashReport]) -> None:
    check(parser, data)


# Lines that steer the sniffer into each parser, so arbitrary text reaches the parsers' depths.
STEER = st.sampled_from(
    [
        "gpumon-native-stacks 1\nkind: fatal\nlwp: 1\nsignal: SIGSEGV (11)\n\n",
        '{"bug_type":"309","app_name":"x"}\n{',
        '{"bug_type":"109"}\nProcess: x [1]\n',
        "Process: x [1]\nTriggered by Thread: 0\nThread 0 Crashed::\n0   a   0x1 b + 1\n",
        "Fatal Python error: Segmentation fault\n\n"
        "Current thread 0x1 [n] (most recent call first):\n",
        'Current thread\'s C stack trace (most recent call first):\n  Binary file "/x", at ',
        'Thread 1 (Thread 0x1 (LWP 1) "w"):\n#0  ',
        "Thread 0 Crashed:\n0   ",
    ]
)


@FAST
@given(STEER, st.text(max_size=1500))
def test_steered_text(prefix: str, data: str) -> None:
    check(parse_report, prefix + data)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from([p.name for p in SMALL]))
    raw = bytearray(CORPUS_BYTES[name])
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "delete", "duplicate", "flip", "insert"]))
        if not raw:
            break
        if op == "truncate":
            del raw[draw(st.integers(0, len(raw))) :]
        elif op == "flip":
            for _ in range(draw(st.integers(1, 16))):
                i = draw(st.integers(0, len(raw) - 1))
                raw[i] = draw(st.integers(0, 255))
        elif op == "insert":
            i = draw(st.integers(0, len(raw)))
            raw[i:i] = draw(st.binary(max_size=40))
        else:
            lines = bytes(raw).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = min(len(lines), i + draw(st.integers(1, 20)))
            if op == "delete":
                del lines[i:j]
            else:
                lines[j:j] = lines[i:j]
            raw = bytearray(b"\n".join(lines))
    return decode(bytes(raw))


@budget(120)
@given(mutated(), st.sampled_from(PARSERS))
def test_mutated_fixtures(data: str, parser: Callable[..., CrashReport]) -> None:
    check(parser, data)


@FAST
@given(st.sampled_from(CORPUS), st.floats(0.0, 1.0))
def test_every_fixture_truncated_anywhere(path: Path, where: float) -> None:
    raw = CORPUS_BYTES[path.name]
    check(parse_report, decode(raw[: int(len(raw) * where)]))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
LLVM = (TESTS / "fixtures" / "crash-reports" / "llvm__multithread-test.ips").read_text()
LLVM_HEADER, LLVM_BODY = LLVM.split("\n", 1)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


BODY_PATHS = [p for p in _paths(json.loads(LLVM_BODY)) if p]


@budget(150)
@given(st.lists(st.tuples(st.sampled_from(BODY_PATHS), JSON_VALUES), min_size=1, max_size=4))
def test_ips_values_of_the_wrong_type(edits: list[tuple[tuple[Any, ...], Any]]) -> None:
    body = json.loads(LLVM_BODY)
    for path, value in edits:
        node = body
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier edit replaced a parent: fine, skip this one
    check(parse_ips, LLVM_HEADER + "\n" + json.dumps(body))


# Hostile long lines: each once made a line regex backtrack quadratically (minutes on a
# 200 KB line). Linear parsing takes milliseconds; the bound only catches a regression.
N = 200_000
HOSTILE = {
    "text frame, long space run": "Process: x [1]\nThread 0 Crashed:\n0 a" + " " * N + "b\n",
    "text frame symbol spaces": "Thread 0 Crashed:\n0   img   0x1   sym" + " " * N + "x\n",
    "text image spaces": "Process: x [1]\nBinary Images:\n0x1 - 0x2 a" + " " * N + "b\n",
    "text offsets": "Thread 0 Crashed:\n0   img   0x1   sym" + " + " * N + "x\n",
    "text sources": "Thread 0 Crashed:\n0   img   0x1   sym" + " (a:1" * N + "\n",
    "gdb at": "Thread 1 (LWP 1):\n#0  f ()" + " at x" * N + "\n",
    "gdb from": "Thread 1 (LWP 1):\n#0  f ()" + " from x" * N + " y\n",
    "gdb spaces": "Thread 1 (LWP 1):\n#0  f" + " " * N + "x\n",
    "gdb name quotes": "Thread 1 (LWP 1" + ' "x' * N + "):\n#0  f ()\n",
    "faulthandler fatal spaces": "Fatal Python error: x" + " " * N + "y\n",
    "faulthandler file": 'Current thread 0x1 (most recent call first):\n  File "'
    + '", line 1 in ' * N
    + "\n",
    "faulthandler c stack": "Fatal Python error: x\nCurrent thread's C stack trace (most recent "
    'call first):\n  Binary file "' + '", at +0x1' * N + " [\n",
    "ips header": "{" + '"bug_type":1,' * N + "\n",
    "ips strings": '{"bug_type":"309"}\n{"a":"' + "\\\\" * N,
    "huge thread numbers": "Process: x [1]\nThread 999999999999 Crashed:\n0   a   0x1   b\n",
    "text and ips headers alternating": 'Crashed Thread: 1\n{"bug_type":"109"}\n' * 20_000,
    "ips with text bodies holding ips headers": (
        '{"bug_type":"109"}\nProcess: x [1]\nCrashed Thread: 0\n' * 20_000
    ),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_long_lines_parse_in_linear_time(name: str) -> None:
    # A guard against quadratic or backtracking parsing, not a speed target: at N = 200,000 a
    # quadratic parse takes minutes, a linear one under a second. The bound is on this thread's
    # CPU time, which other jobs on the machine do not inflate (the wall clock, at load 8-15 on
    # two cores, did: the 5 s wall bound failed runs that took 0.6 s alone).
    t0 = time.thread_time()
    check(parse_report, HOSTILE[name])
    assert time.thread_time() - t0 < 5.0
