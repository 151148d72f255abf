"""Shared pieces of the report tests: the committed sessions, goldens, the CLI in-process, and
recording a real session with real pools."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gpumon import cli
from gpumon import events as ev
from gpumon.live_session import LiveSession, open_session
from gpumon.spec import parse_pool

HERE = Path(__file__).resolve().parent
FIXTURES = HERE / "fixtures"  # sweeps recorded for these tests (see fixtures/README.md)
SESSIONS = HERE.parent / "fixtures" / "sessions"  # the project's committed sessions
GOLDEN = HERE / "golden"
UPDATE = os.environ.get("GPUMON_UPDATE_GOLDEN") == "1"


def check_golden(name: str, got: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"no golden file {name}: run with GPUMON_UPDATE_GOLDEN=1"
    assert got == path.read_text(encoding="utf-8")


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def gpumon(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run `gpumon ARGS...` in this process; returns exit code, stdout, stderr."""

    def run(*args: object) -> CliResult:
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


Steps = Callable[[LiveSession, list[ev.Event]], Awaitable[None]]


async def record(root: Path, spec: str, steps: Steps) -> Path:
    """A real recorded session of one pool driven by `steps`; returns its folder."""
    events: list[ev.Event] = []
    async with open_session(
        [parse_pool(spec)],
        mode="test",
        argv=["pytest", spec],
        session_dir=root,
        listeners=[events.append],
        host_every=None,
    ) as session:
        await steps(session, events)
    assert session.folder is not None
    return session.folder
