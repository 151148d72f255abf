"""Untrusted text stays inert: a report whose thread names, frames and application-specific
information carry terminal escapes (CSI, OSC 52 clipboard writes), BEL, C1 controls and bidi
overrides must not get a single raw control character onto stdout or stderr of `gpumon crash`,
in the summary, with --full, or with --json (whose data keeps the raw text, escaped by JSON)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gpumon.crash.parse import parse_report
from gpumon.crash.render import markdown_summary

ROOT = Path(__file__).resolve().parents[2]
EVIL = "\x1b[2J\x1b]52;c;ZXZpbA==\x07\x9b31m\u202eevil\u2066\x7f"
RAW_CONTROL = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)

TEXT_REPORT = f"""Process:         ev{EVIL}il [42]
Exception Type:  EXC_BAD_ACCESS (SIGSEGV)
Crashed Thread:  0

Application Specific Information:
abort() called {EVIL}

Thread 0 Crashed::  Dispatch queue: q{EVIL}
0   libmlx.dylib   0x1000 mlx::core::{EVIL}eval_impl + 1
1   AGXMetalG16X   0x2000 AGX::{EVIL}performEnqueueKernel + 2

Thread 1:: name{EVIL}
0   libsystem_kernel.dylib   0x3000 __psynch_cvwait + 8

Binary Images:
0x1000 - 0x1fff libmlx.dylib <0123-4567> /x/libmlx{EVIL}.dylib
"""
GDB = (
    f'Thread 2 "w{EVIL}" received signal SIGSEGV, Segmentation fault.\n'
    f'Thread 2 (Thread 0x7f01 (LWP 12) "w{EVIL}"):\n'
    f"#0  0x01 in f{EVIL} () from /l/libmlx.so\n"
    f'Thread 1 (Thread 0x7f00 (LWP 11) "main{EVIL}"):\n'
    "#0  0x02 in g () from /l/libc.so.6\n"
)
FAULTHANDLER = (
    f"terminate called after throwing an instance of '{EVIL}'\n"
    "Fatal Python error: Aborted\n\n"
    f"Current thread 0x00007f3f58fc16c0 [w{EVIL}] (most recent call first):\n"
    f'  File "/w/{EVIL}.py", line 6 in work{EVIL}\n'
)
CASES = {"text": TEXT_REPORT, "gdb": GDB, "faulthandler": FAULTHANDLER}


def gpumon_crash(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "gpumon", "crash", *args, "-"],
        cwd=ROOT,
        input=stdin.encode(),
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        proc.args, proc.returncode, proc.stdout.decode(), proc.stderr.decode()
    )


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize(
    "flags", [(), ("--full",), ("--no-color",)], ids=["summary", "full", "plain"]
)
def test_no_raw_control_character_reaches_the_terminal(kind: str, flags: tuple[str, ...]) -> None:
    proc = gpumon_crash(*flags, stdin=CASES[kind])
    assert proc.returncode in (0, 4), proc.stderr
    assert "Verdict:" in proc.stdout
    for stream in (proc.stdout, proc.stderr):
        assert RAW_CONTROL.search(stream) is None, RAW_CONTROL.search(stream)
    assert "\\x1b" in proc.stdout and "\\u202e" in proc.stdout  # shown, as visible escapes


@pytest.mark.parametrize("kind", sorted(CASES))
def test_json_keeps_the_raw_text_escaped_by_json(kind: str) -> None:
    proc = gpumon_crash("--json", stdin=CASES[kind])
    assert RAW_CONTROL.search(proc.stdout) is None
    data = json.loads(proc.stdout)
    names = [t.get("name") or "" for t in data["threads"]]
    frames = [f.get("symbol") or "" for t in data["threads"] for f in t["frames"]]
    assert any(EVIL in s for s in [*names, *frames, data.get("process_name") or ""])


@pytest.mark.parametrize("kind", sorted(CASES))
def test_markdown_summary_is_inert(kind: str) -> None:
    md = markdown_summary(parse_report(CASES[kind]))
    assert RAW_CONTROL.search(md) is None
