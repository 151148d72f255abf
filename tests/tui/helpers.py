"""Test helpers for the TUI: wait on predicates (a live monitor never goes idle), read the
screen as text, and find the committed demo recording."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual.app import App

from tests.conftest import wait_for  # noqa: F401 - the one wait helper, re-exported

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "tests" / "fixtures" / "tui" / "demo"
DEMO_LOG = DEMO / "session.jsonl"


def screen_text(app: App) -> str:
    """What the terminal shows, as plain text (one line per row)."""
    update = app.screen._compositor.render_full_update()
    return "\n".join("".join(strip.text for strip in line) for line in update.strips)


def copy_demo(dest: Path) -> Path:
    """A writable copy of the demo session folder (exports write next to the log)."""
    folder = dest / "demo"
    shutil.copytree(DEMO, folder)
    return folder / "session.jsonl"


SESSIONS = ROOT / "tests" / "fixtures" / "sessions"  # the session-log engineer's recordings
