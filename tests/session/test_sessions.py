"""`gpumon sessions`: every recorded session, newest first; a broken one listed, not fatal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from gpumon import layout as paths
from gpumon.session.log import load
from gpumon.session.sessions import list_sessions

from .conftest import FIXTURES


def _root(tmp_path: Path) -> Path:
    root = tmp_path / "sessions"
    root.mkdir()
    for name in ("fault-off", "torch-cpu", "fault-gdb"):
        shutil.copytree(FIXTURES / name, root / name)
    (root / "broken").mkdir()
    (root / "broken" / "session.jsonl").write_bytes(b"")
    (root / "not-a-session").mkdir()
    (root / "notes.txt").write_text("ignored")
    return root


def test_listing_is_newest_first_with_errors_last(tmp_path) -> None:
    found = list_sessions(_root(tmp_path))
    readable = [s for s in found if s.error is None]
    starts = [s.start_t for s in readable]
    assert starts == sorted(starts, reverse=True) and len(readable) == 3
    off = next(s for s in found if s.path.parent.name == "fault-off")
    assert (off.mode, off.pools, off.crashes, off.ended) == ("test", ["fault"], 2, True)
    assert off.duration is not None and 2 < off.duration < 30
    errors = {
        s.path.name if s.path.is_dir() else s.path.parent.name: s.error for s in found if s.error
    }
    assert list(found[-2:]) == [s for s in found if s.error]
    assert "is empty" in errors["broken"]
    assert "not a gpumon session folder" in errors["not-a-session"]


def test_cli_table_and_json(tmp_path, gpumon) -> None:
    root = _root(tmp_path)
    r = gpumon("sessions", "--session-dir", root)
    assert r.code == 0 and r.err == ""
    lines = r.out.splitlines()
    assert lines[0].split()[:3] == ["started", "(local", "time)"]
    assert len(lines) == 6
    assert any("unreadable" in x and "is empty" in x for x in lines)
    assert any(x.rstrip().endswith(str(root / "fault-off")) and "fault" in x for x in lines)
    j = gpumon("sessions", "--session-dir", root, "--json")
    data = json.loads(j.out)
    assert [d["error"] is None for d in data] == [True, True, True, False, False]
    ids = {load(FIXTURES / n).start.session_id for n in ("fault-off", "torch-cpu", "fault-gdb")}
    assert {d["session_id"] for d in data if d["session_id"]} == ids


def test_cli_uses_the_environment_and_says_when_empty(tmp_path, gpumon, monkeypatch) -> None:
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "nothing-here"))
    r = gpumon("sessions")
    assert (r.code, r.out) == (0, f"no recorded sessions in {tmp_path / 'nothing-here'}\n")
