"""SVG snapshots of the screens, rendered by replaying the committed demo recording.

Deterministic because nothing here reads a clock that moves: the replay is pinned to a position
and paused, so uptimes, countdowns, the history chart and the log's relative times all come
from the recording. Paths are shown relative to the working directory, hence the chdir.
Update after an intended change with `pytest tests/tui --snapshot-update` and look at the SVGs.
"""

from __future__ import annotations

import pytest

from gpumon.tui.app import replay_app

from .helpers import DEMO_LOG, ROOT

MID_RUN = 9.5  # both pools running, torch at 2 threads, the fault pool about to be raised
RESTARTING = 11.8  # the fault pool crashed, restarting in 0.8 s at the remembered 1 thread
RECOVERED = 18.0  # back up at 1 thread; torch on the locked policy


@pytest.fixture(autouse=True)
def _in_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)


def pinned(position: float):
    return replay_app(DEMO_LOG, position=position, paused=True)


def test_pools_mid_run(snap_compare) -> None:
    assert snap_compare(pinned(MID_RUN), terminal_size=(120, 36))


def test_crash_and_restart_countdown(snap_compare) -> None:
    assert snap_compare(pinned(RESTARTING), terminal_size=(120, 36))


def test_crash_screen(snap_compare) -> None:
    assert snap_compare(pinned(RECOVERED), press=["x"], terminal_size=(120, 36))


def test_help_screen(snap_compare) -> None:
    assert snap_compare(pinned(MID_RUN), press=["question_mark"], terminal_size=(120, 36))


def test_small_terminal_80x24(snap_compare) -> None:
    assert snap_compare(pinned(RECOVERED), terminal_size=(80, 24))


# A scenario (gpumon run mlx-threads, recorded here with the real MLX 0.31.1 and the installed
# MLX): the caption bar tells the story above the pools, and over the crash screen.
SCENARIO_LOG = ROOT / "tests" / "fixtures" / "tui" / "mlx-demo" / "session.jsonl"
AFTER_CRASH = 10.18  # 0.31.1 died at 2 threads, its stacks are in; the presenter is next
SURVIVED = 20.5  # locked 0.31.1 and the installed MLX at 2 threads: the measured comparison


def test_scenario_caption_after_the_crash(snap_compare) -> None:
    app = replay_app(SCENARIO_LOG, position=AFTER_CRASH, paused=True)
    assert snap_compare(app, terminal_size=(160, 48))


def test_scenario_caption_over_the_crash_screen(snap_compare) -> None:
    app = replay_app(SCENARIO_LOG, position=AFTER_CRASH, paused=True)
    assert snap_compare(app, press=["x"], terminal_size=(160, 48))


def test_scenario_caption_at_the_end(snap_compare) -> None:
    app = replay_app(SCENARIO_LOG, position=SURVIVED, paused=True)
    assert snap_compare(app, terminal_size=(160, 48))
