"""LOG as users type it: a path, `latest`, or the start of a session id — in export and replay."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from gpumon.session.log import SessionLogError, load
from gpumon.session.sessions import resolve_log

from .conftest import FIXTURES

# session ids of the committed sessions (their first lines)
IDS = {"fault-off": "1ead19aac9cf", "fault-gdb": "a9bf3a4f0913", "torch-cpu": "a7df3930c0c8"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "sessions"
    for name in ("fault-off", "fault-gdb", "torch-cpu"):
        shutil.copytree(FIXTURES / name, r / name)
    (r / "half-made").mkdir()  # a folder without a log is not a candidate, nor an error
    return r


def test_paths_still_work_as_before(root: Path) -> None:
    assert resolve_log(str(root / "fault-gdb"), root) == root / "fault-gdb" / "session.jsonl"
    log = root / "torch-cpu" / "session.jsonl"
    assert resolve_log(str(log), root) == log
    gone = root / "gone.jsonl"  # a path stays a path: load() then says it is missing
    assert resolve_log(str(gone), root) == gone
    with pytest.raises(SessionLogError, match="no such file"):
        load(resolve_log(str(gone), root))


def test_latest_is_the_session_that_started_last(root: Path) -> None:
    # torch-cpu started last (18:06:16); folder names and mtimes say nothing about it
    assert resolve_log("latest", root) == root / "torch-cpu" / "session.jsonl"
    with pytest.raises(SessionLogError, match="no recorded sessions"):
        resolve_log("latest", root / "empty")


def test_a_unique_prefix_of_an_id_or_a_folder_name(root: Path) -> None:
    assert resolve_log("1ead", root) == root / "fault-off" / "session.jsonl"
    assert resolve_log("a9b", root) == root / "fault-gdb" / "session.jsonl"
    assert resolve_log("torch", root) == root / "torch-cpu" / "session.jsonl"


def test_an_ambiguous_prefix_names_every_candidate(root: Path) -> None:
    with pytest.raises(SessionLogError) as e:
        resolve_log("a", root)
    msg = str(e.value)
    assert "matches 2 sessions" in msg and "\n" not in msg
    assert IDS["fault-gdb"] in msg and IDS["torch-cpu"] in msg and "type more" in msg
    with pytest.raises(SessionLogError, match="not a file, `latest`, or the start"):
        resolve_log("zz", root)


def test_export_and_replay_take_latest_and_prefixes(root: Path, gpumon) -> None:
    r = gpumon("export", "latest", "-f", "csv", "--session-dir", root)
    assert r.code == 0 and ",torch:cpu," in r.out
    r = gpumon("export", "a9bf", "-f", "md", "--session-dir", root)
    assert r.code == 0 and "Session `a9bf3a4f0913`" in r.out
    r = gpumon("export", "a", "--session-dir", root)
    assert r.code == 1 and r.out == "" and r.err.count("\n") == 1 and "matches 2" in r.err
    # replay resolves the same way (then refuses: pytest's stdout is not a terminal)
    r = gpumon("replay", "nope", "--session-dir", root)
    assert r.code == 1 and "not a file, `latest`" in r.err and r.err.count("\n") == 1
    r = gpumon("replay", "latest", "--session-dir", root)
    assert r.code == 1 and "needs a terminal" in r.err


def test_sessions_lists_hangs_failed_pools_versions_and_ids(root: Path, gpumon) -> None:
    shutil.copytree(FIXTURES / "fault-hang", root / "fault-hang")
    r = gpumon("sessions", "--json", "--session-dir", root)
    data = {Path(d["path"]).parent.name: d for d in json.loads(r.out)}
    assert data["fault-hang"]["hangs"] == 1 and data["fault-off"]["hangs"] == 0
    assert data["torch-cpu"]["versions"] == ["torch 2.13.0+cpu"]
    assert all(d["failed_pools"] == [] for d in data.values() if d["error"] is None)
    table = gpumon("sessions", "--session-dir", root).out.splitlines()
    assert table[0].split()[-6:] == ["versions", "crashes", "hangs", "failed", "id", "path"]
    row = next(x for x in table if x.rstrip().endswith("torch-cpu"))
    assert "torch 2.13.0+cpu" in row and IDS["torch-cpu"] in row


def test_candidates_named_in_an_error_are_shown_inert(root: Path) -> None:
    # A log is input: a session id with a terminal escape in it must not reach the terminal raw.
    hostile = root / "evil"
    hostile.mkdir()
    first = (root / "torch-cpu" / "session.jsonl").read_text().splitlines()[0]
    start = json.loads(first)
    start["session_id"] = "a\x1b]0;pwned\x07"
    (hostile / "session.jsonl").write_text(json.dumps(start) + "\n")
    with pytest.raises(SessionLogError) as e:
        resolve_log("a", root)
    assert "\x1b" not in str(e.value) and "\x07" not in str(e.value)
    assert "matches 3 sessions" in str(e.value)
