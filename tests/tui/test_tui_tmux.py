"""Smoke test of the real `gpumon` binary in a real terminal (tmux): it draws, takes keys,
shows a crash, quits cleanly, and leaves no worker behind."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from .helpers import ROOT

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(180),
]


class Terminal:
    """One tmux session on a server of its own (its socket in a folder of its own): when a test
    killed its last session a shared server exited, and the next test's new session could land
    on it while it went (an empty screen for 120 s in one full-suite run); nor does a
    developer's server count."""

    def __init__(self, session: str, socket: Path) -> None:
        self.session = session
        self.socket = socket

    def tmux(self, *args: str) -> str:
        cmd = ["tmux", "-S", str(self.socket), *args]
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def wait(self, pred: Callable[[str], object], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.tmux("capture-pane", "-p", "-t", self.session)
            if pred(screen):
                return screen
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:.0f} s; the screen was:\n{screen}")


@contextlib.contextmanager
def gpumon_in_tmux(
    name: str, args: str, size: tuple[int, int] = (120, 36), env: str = ""
) -> Iterator[Terminal]:
    """`gpumon ARGS` as a user starts it in a terminal; it prints EXIT=<status> when it ends.
    COLUMNS/LINES set by the test process would override the terminal's real size."""
    folder = tempfile.mkdtemp(prefix="gpumon-tmux-")
    term = Terminal(f"gpumon-{name}-{os.getpid()}", Path(folder) / "socket")
    cmd = (
        f"cd {ROOT} && env -u COLUMNS -u LINES {env}{sys.executable} -m gpumon {args}; "
        "echo EXIT=$?; sleep 60"
    )
    term.tmux("new-session", "-d", "-s", term.session, "-x", str(size[0]), "-y", str(size[1]), cmd)
    try:
        yield term
    finally:
        term.tmux("kill-session", "-t", term.session)
        shutil.rmtree(folder, ignore_errors=True)


def workers_using(folder: Path) -> list[psutil.Process]:
    """Worker processes (or gdb around them) whose config file lies in `folder`."""
    out = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if "gpumon.worker" in cmd and str(folder) in cmd:
            out.append(p)
    return out


def assert_no_worker_left(folder: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while workers_using(folder) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not workers_using(folder), "a worker outlived the monitor"


def test_gpumon_binary_in_tmux(tmp_path: Path) -> None:
    args = f"--pool fault --pool torch:cpu,size=64 --session-dir {tmp_path} --no-restart"
    with gpumon_in_tmux("smoke", args) as t:
        screen = t.wait(lambda s: len(re.findall(r"\d k?ops/s", s)) >= 2, 120)
        assert "SYNTHETIC" in screen and "live · 2 pools" in screen
        assert "q quit" in screen  # the footer
        assert workers_using(tmp_path)

        t.keys("1", "+")
        screen = t.wait(lambda s: "CRASH SIGSEGV" in s, 60)
        assert "crashed 1 time" in screen

        t.keys("?")
        t.wait(lambda s: "gpumon keys" in s, 10)
        t.keys("Escape")
        t.wait(lambda s: "gpumon keys" not in s, 10)

        t.keys("q")
        screen = t.wait(lambda s: "EXIT=" in s, 60)
        assert "EXIT=0" in screen
        assert "gpumon: session log" in screen
        assert_no_worker_left(tmp_path)


def test_sigterm_quits_like_q(tmp_path: Path) -> None:
    """`kill <pid>` stops the pools and closes the session log (session_end written)."""
    with gpumon_in_tmux("term", f"--pool fault --session-dir {tmp_path}") as t:
        t.wait(lambda s: re.search(r"\d k?ops/s", s) is not None, 120)
        (monitor,) = [
            p
            for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [])[:3] == [sys.executable, "-m", "gpumon"]
            and str(tmp_path) in " ".join(p.info["cmdline"])
        ]
        monitor.terminate()
        screen = t.wait(lambda s: "EXIT=" in s, 60)
        assert "EXIT=0" in screen
        (log,) = tmp_path.glob("*/session.jsonl")
        assert log.read_text().splitlines()[-1].startswith('{"type":"session_end"')
        assert_no_worker_left(tmp_path)


def test_keys_typed_right_after_t_reach_the_thread_entry(tmp_path: Path) -> None:
    """`t6⏎` sent in one go, as a presenter types it: the pool goes to 6 threads, and no
    digit lands on the main screen (6 would select a pool, the Enter open nothing)."""
    with gpumon_in_tmux("chord", "--pool fault,fault-at-threads=64 --no-record") as t:
        t.wait(lambda s: re.search(r"\d k?ops/s", s) is not None, 120)
        t.keys("t6", "Enter")
        screen = t.wait(lambda s: "6 threads" in s, 30)
        assert "there is no pool 6" not in screen
        t.keys("q")
        t.wait(lambda s: "EXIT=0" in s, 60)


def test_a_presenter_runs_the_demo(tmp_path: Path) -> None:
    """`gpumon demo fault-threads --readonly`: the caption bar tells the story, the crash
    screen opens by itself, the presenter's space goes on, pool keys are off."""
    args = f"demo fault-threads --readonly --session-dir {tmp_path}"
    with gpumon_in_tmux("demo", args) as t:
        screen = t.wait(lambda s: "step 1/6" in s, 120)
        assert "SYNTHETIC" in screen
        # The crash screen opened by itself, with the bar's hint over it.
        screen = t.wait(
            lambda s: "step 4/6" in s and "press space to go on" in s and "fault_worker" in s,
            60,
        )
        assert "SIGSEGV" in screen and "Verdict:" in screen
        t.keys("+")  # read-only: refused, nothing changes
        t.keys("Space")
        t.wait(lambda s: "step 5/6" in s or "step 6/6" in s, 30)
        t.keys("q")
        t.wait(lambda s: "EXIT=" in s, 60)
        (log,) = tmp_path.glob("*/session.jsonl")
        text = log.read_text()
        assert '"type":"scenario_step"' in text and '"source":"scenario"' in text
        assert '"source":"user"' not in text  # the + was refused before it became a command
        assert_no_worker_left(tmp_path)


def test_gpumon_demo_shows_the_real_mlx_crash(tmp_path: Path, mlx_env) -> None:
    """The default demo on this machine: MLX 0.31.1 dies at 2 threads and the crash screen
    shows MLX's own native frame (gdb, where installed) and the named crashed thread."""
    pytest.importorskip("mlx.core")
    mlx_env("0.31.1")
    frame = "mlx::core::eval" if shutil.which("gdb") else "mlx_generate.py"
    env = f"GPUMON_ENV_DIR={os.environ['GPUMON_ENV_DIR']} "
    with gpumon_in_tmux("mlxdemo", f"demo --session-dir {tmp_path}", (160, 48), env) as t:
        screen = t.wait(lambda s: "press space to go on" in s and frame in s, 180)
        assert "SIGSEGV" in screen and "mlx_worker" in screen
        assert "SYNTHETIC" not in screen  # the real thing, not the fallback
        t.keys("q")
        t.wait(lambda s: "EXIT=" in s, 60)
        assert_no_worker_left(tmp_path)
