"""Smoke test of the real `gpumon` binary in a real terminal (tmux): it draws, takes keys,
shows a crash, quits cleanly, and leaves no worker behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from .helpers import ROOT

pytestmark = [
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
    pytest.mark.timeout(180),
]


def tmux(*args: str) -> str:
    """tmux on a server of the session's own (`-L <session>`): when one test kills its last
    session the shared server exits, and a next test's new session could land on it while it
    went (an empty screen for 120 s in one full-suite run); nor does a developer's server count."""
    flag = next(i for i, a in enumerate(args) if a in ("-t", "-s"))
    server = args[flag + 1]
    return subprocess.run(
        ["tmux", "-L", server, *args], capture_output=True, text=True, check=False
    ).stdout


def wait_screen(session: str, pred, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = tmux("capture-pane", "-p", "-t", session)
        if pred(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s; the screen was:\n{screen}")


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
    session = f"gpumon-smoke-{os.getpid()}"
    cmd = (
        # COLUMNS/LINES set by the test process would override the terminal's real size.
        f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m gpumon --pool fault "
        f"--pool torch:cpu,size=64 --session-dir {tmp_path} --no-restart; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", cmd)
    try:
        screen = wait_screen(session, lambda s: len(re.findall(r"\d k?ops/s", s)) >= 2, 120)
        assert "SYNTHETIC" in screen and "live · 2 pools" in screen
        assert "q quit" in screen  # the footer
        assert workers_using(tmp_path)

        tmux("send-keys", "-t", session, "1", "+")
        screen = wait_screen(session, lambda s: "CRASH SIGSEGV" in s, 60)
        assert "crashed 1 time" in screen

        tmux("send-keys", "-t", session, "?")
        wait_screen(session, lambda s: "gpumon keys" in s, 10)
        tmux("send-keys", "-t", session, "Escape")
        wait_screen(session, lambda s: "gpumon keys" not in s, 10)

        tmux("send-keys", "-t", session, "q")
        screen = wait_screen(session, lambda s: "EXIT=" in s, 60)
        assert "EXIT=0" in screen
        assert "gpumon: session log" in screen
        assert_no_worker_left(tmp_path)
    finally:
        tmux("kill-session", "-t", session)


def test_sigterm_quits_like_q(tmp_path: Path) -> None:
    """`kill <pid>` stops the pools and closes the session log (session_end written)."""
    session = f"gpumon-term-{os.getpid()}"
    cmd = (
        f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m gpumon --pool fault "
        f"--session-dir {tmp_path}; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", cmd)
    try:
        wait_screen(session, lambda s: re.search(r"\d k?ops/s", s) is not None, 120)
        (monitor,) = [
            p
            for p in psutil.process_iter(["cmdline"])
            if (p.info["cmdline"] or [])[:3] == [sys.executable, "-m", "gpumon"]
            and str(tmp_path) in " ".join(p.info["cmdline"])
        ]
        monitor.terminate()
        screen = wait_screen(session, lambda s: "EXIT=" in s, 60)
        assert "EXIT=0" in screen
        (log,) = tmp_path.glob("*/session.jsonl")
        assert log.read_text().splitlines()[-1].startswith('{"type":"session_end"')
        assert_no_worker_left(tmp_path)
    finally:
        tmux("kill-session", "-t", session)


def test_keys_typed_right_after_t_reach_the_thread_entry(tmp_path: Path) -> None:
    """`t6⏎` sent in one go, as a presenter types it: the pool goes to 6 threads, and no
    digit lands on the main screen (6 would select a pool, the Enter open nothing)."""
    session = f"gpumon-chord-{os.getpid()}"
    cmd = (
        f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m gpumon "
        f"--pool fault,fault-at-threads=64 --no-record; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", cmd)
    try:
        wait_screen(session, lambda s: re.search(r"\d k?ops/s", s) is not None, 120)
        tmux("send-keys", "-t", session, "t6", "Enter")
        screen = wait_screen(session, lambda s: "6 threads" in s, 30)
        assert "there is no pool 6" not in screen
        tmux("send-keys", "-t", session, "q")
        wait_screen(session, lambda s: "EXIT=0" in s, 60)
    finally:
        tmux("kill-session", "-t", session)


def test_a_presenter_runs_the_demo(tmp_path: Path) -> None:
    """`gpumon demo fault-threads --readonly`: the caption bar tells the story, the crash
    screen opens by itself, the presenter's space goes on, pool keys are off."""
    session = f"gpumon-demo-{os.getpid()}"
    cmd = (
        f"cd {ROOT} && env -u COLUMNS -u LINES {sys.executable} -m gpumon demo fault-threads "
        f"--readonly --session-dir {tmp_path}; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "36", cmd)
    try:
        screen = wait_screen(session, lambda s: "step 1/6" in s, 120)
        assert "SYNTHETIC" in screen
        # The crash screen opened by itself, with the bar's hint over it.
        screen = wait_screen(
            session,
            lambda s: "step 4/6" in s and "press space to go on" in s and "fault_worker" in s,
            60,
        )
        assert "SIGSEGV" in screen and "Verdict:" in screen
        tmux("send-keys", "-t", session, "+")  # read-only: refused, nothing changes
        tmux("send-keys", "-t", session, "Space")
        wait_screen(session, lambda s: "step 5/6" in s or "step 6/6" in s, 30)
        tmux("send-keys", "-t", session, "q")
        wait_screen(session, lambda s: "EXIT=" in s, 60)
        (log,) = tmp_path.glob("*/session.jsonl")
        text = log.read_text()
        assert '"type":"scenario_step"' in text and '"source":"scenario"' in text
        assert '"source":"user"' not in text  # the + was refused before it became a command
        assert_no_worker_left(tmp_path)
    finally:
        tmux("kill-session", "-t", session)


def test_gpumon_demo_shows_the_real_mlx_crash(tmp_path: Path, mlx_env) -> None:
    """The default demo on this machine: MLX 0.31.1 dies at 2 threads and the crash screen
    shows MLX's own native frame (gdb, where installed) and the named crashed thread."""
    pytest.importorskip("mlx.core")
    mlx_env("0.31.1")
    session = f"gpumon-mlxdemo-{os.getpid()}"
    cmd = (
        f"cd {ROOT} && env -u COLUMNS -u LINES GPUMON_ENV_DIR={os.environ['GPUMON_ENV_DIR']} "
        f"{sys.executable} -m gpumon demo --session-dir {tmp_path}; echo EXIT=$?; sleep 60"
    )
    tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "48", cmd)
    frame = "mlx::core::eval" if shutil.which("gdb") else "mlx_generate.py"
    try:
        screen = wait_screen(session, lambda s: "press space to go on" in s and frame in s, 180)
        assert "SIGSEGV" in screen and "mlx_worker" in screen
        assert "SYNTHETIC" not in screen  # the real thing, not the fallback
        tmux("send-keys", "-t", session, "q")
        wait_screen(session, lambda s: "EXIT=" in s, 60)
        assert_no_worker_left(tmp_path)
    finally:
        tmux("kill-session", "-t", session)
