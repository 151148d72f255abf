"""A damaged log is read as far as it can be, and every loss is named; an unreadable one is
refused in one sentence — by `load()` and by `gpumon export` (exit 1, no traceback)."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpumon import events as ev
from gpumon.session.log import SessionLogError, load

from .conftest import FIXTURES

LOG = FIXTURES / "fault-off" / "session.jsonl"
RAW = LOG.read_bytes()
LINES = RAW.splitlines(keepends=True)


def _write(tmp_path: Path, data: bytes, name: str = "session.jsonl") -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_the_committed_log_loads_cleanly() -> None:
    s = load(LOG)
    assert s.warnings == []
    assert len(s.events) == len(LINES)
    assert isinstance(s.events[0], ev.SessionStart) and s.end is not None


def test_garbage_lines_are_skipped_and_named(tmp_path: Path) -> None:
    damaged = [
        *LINES[:4],
        b"this is not json\n",
        *LINES[4:7],
        b"\x00\x01\xff\xfe\n",
        b"\x89PNG\r\n",
        *LINES[7:],
        b'{"type":"from_the_future","t":1}\n',
    ]
    s = load(_write(tmp_path, b"".join(damaged)))
    assert len(s.events) == len(LINES)
    assert s.warnings == [
        "skipped 1 line (not JSON): line 5",
        "skipped 2 lines (binary data, not text): lines 9-10",
        f"skipped 1 line (unknown event type 'from_the_future', perhaps from a newer "
        f"gpumon): line {len(damaged)}",
    ]


def test_a_valid_json_line_that_is_not_an_event_is_named(tmp_path: Path) -> None:
    s = load(_write(tmp_path, RAW + b'{"type":"sample","pool":"x"}\n'))
    assert len(s.warnings) == 1 and "not a valid event" in s.warnings[0]
    assert f"line {len(LINES) + 1}" in s.warnings[0]


def test_a_torn_last_line_is_skipped_with_one_warning(tmp_path: Path) -> None:
    cut = RAW[: len(RAW) - len(LINES[-1]) // 2]
    s = load(_write(tmp_path, cut))
    assert len(s.events) == len(LINES) - 1
    assert len(s.warnings) == 1
    assert s.warnings[0].startswith(f"line {len(LINES)} (the last")
    assert "incomplete" in s.warnings[0] and "killed" in s.warnings[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=len(LINES[0]), max_value=len(RAW)))
def test_any_truncation_keeps_every_complete_line(tmp_path_factory, cut: int) -> None:
    data = RAW[:cut]
    s = load(_write(tmp_path_factory.mktemp("cut"), data))
    tail = data.rsplit(b"\n", 1)[-1]
    # A tail that is a whole event minus its line end was written completely: it is kept.
    whole = tail + b"\n" in LINES
    assert len(s.events) == data.count(b"\n") + whole
    assert len(s.warnings) == (0 if not tail or whole else 1)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty: no events were recorded in it"),
        (b"\n  \n", "is empty: no events were recorded in it"),
        (b'{"a": 1}\n', "is not a gpumon session log (its first line is not a session_start"),
        (b"hello\nworld\n", "is not a gpumon session log"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a gpumon session log"),
        (LINES[1], "is not a gpumon session log"),  # a log whose first line was lost
        (LINES[0][:40], "holds only an incomplete first line: the monitor was killed"),
    ],
    ids=["empty", "blank", "other-json", "text", "binary", "headless", "torn-start"],
)
def test_unreadable_logs_are_refused_in_one_sentence(tmp_path, data, message) -> None:
    p = _write(tmp_path, data)
    with pytest.raises(SessionLogError) as err:
        load(p)
    assert message in str(err.value) and str(p) in str(err.value)
    assert "\n" not in str(err.value)


def _with_schema(schema: object) -> bytes:
    first = LINES[0].replace(b'"schema":1,', b'"schema":' + str(schema).encode() + b",")
    assert first != LINES[0]
    return first + b"".join(LINES[1:])


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SessionLogError) as err:
        load(_write(tmp_path, _with_schema(3)))
    assert str(err.value).endswith(
        f"was written by a newer gpumon (schema 3); this gpumon reads up to {ev.SCHEMA_VERSION} — "
        "upgrade gpumon"
    )


@pytest.mark.parametrize("schema", ["0", '"one"', "-1", "true"])
def test_a_nonsense_schema_is_refused(tmp_path: Path, schema: str) -> None:
    with pytest.raises(SessionLogError, match="unreadable schema version"):
        load(_write(tmp_path, _with_schema(schema)))


def test_a_start_line_without_schema_is_schema_1(tmp_path: Path) -> None:
    s = load(_write(tmp_path, LINES[0].replace(b'"schema":1,', b"") + b"".join(LINES[1:])))
    assert s.start.schema == 1 and s.warnings == []


def test_folders_and_missing_files(tmp_path: Path) -> None:
    assert load(FIXTURES / "fault-off").path.name == "session.jsonl"
    with pytest.raises(SessionLogError, match="no such file"):
        load(tmp_path / "nope.jsonl")
    with pytest.raises(SessionLogError, match=r"is a folder without a session\.jsonl"):
        load(tmp_path)


def test_loaded_artifact_paths_point_at_the_folder_where_it_lies(session_copy) -> None:
    folder = session_copy("fault-off")
    s = load(folder)
    paths = [e.path for e in s.events if isinstance(e, ev.CrashArtifact) and e.path]
    assert paths and all(Path(p).is_file() and str(folder.resolve()) in p for p in paths)


# ---- the same through `gpumon export` ------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"\x00\xff\xfe garbage", "is not a gpumon session log"),
        (b'{"type":"nope"}\n', "is not a gpumon session log"),
        (_with_schema(3), "written by a newer gpumon (schema 3)"),
    ],
    ids=["empty", "binary", "not-a-log", "newer"],
)
@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_export_refuses_in_one_line(tmp_path, gpumon, data, message, fmt) -> None:
    r = gpumon("export", _write(tmp_path, data), "--format", fmt)
    assert r.code == 1 and r.out == ""
    assert r.err.startswith("gpumon export: ") and message in r.err
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


def test_export_of_a_missing_log(tmp_path, gpumon) -> None:
    r = gpumon("export", tmp_path / "missing.jsonl")
    assert (r.code, r.out) == (1, "")
    assert r.err == f"gpumon export: {tmp_path / 'missing.jsonl'}: no such file\n"


def test_export_of_a_damaged_log_warns_and_exports(tmp_path, gpumon) -> None:
    p = _write(tmp_path, b"".join([*LINES[:3], b"garbage\n", *LINES[3:]])[:-10])
    r = gpumon("export", p, "--format", "md")
    assert r.code == 0 and r.out.startswith("# gpumon evidence report")
    assert r.err.splitlines() == [
        "gpumon export: warning: skipped 1 line (not JSON): line 4",
        f"gpumon export: warning: line {len(LINES) + 1} (the last, "
        f"{len(LINES[-1]) - 10} bytes) is incomplete: the monitor was probably killed while "
        "writing it; skipped",
    ]
    assert "skipped 1 line (not JSON): line 4" in r.out  # the report says so too
    assert "The log ends without a session_end event" in r.out
    strict = gpumon("export", p, "--strict")
    assert strict.code == 1 and strict.out == ""
    assert (
        strict.err.splitlines()[-1] == "gpumon export: 2 warning(s) and --strict: nothing written"
    )


def test_export_to_an_unwritable_path(tmp_path, gpumon) -> None:
    r = gpumon("export", LOG, "-o", tmp_path / "no" / "such" / "dir" / "x.md")
    assert r.code == 1 and r.err.startswith("gpumon export: cannot write ")
    assert r.err.count("\n") == 1


def test_export_writes_to_a_file(tmp_path, gpumon) -> None:
    out = tmp_path / "report.md"
    r = gpumon("export", FIXTURES / "fault-off", "-o", out)
    assert (r.code, r.out, r.err) == (0, "", "")
    assert out.read_text().startswith("# gpumon evidence report")


def test_a_real_process_prints_no_traceback(tmp_path) -> None:
    # The in-process tests above go through cli.main; this one is the installed entry point.
    p = _write(tmp_path, b"\x00garbage")
    r = subprocess.run(
        [sys.executable, "-m", "gpumon", "export", str(p), "-f", "csv"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert r.returncode == 1 and r.stdout == ""
    assert (
        r.stderr == f"gpumon export: {p} is not a gpumon session log (its first line is not "
        "a session_start event)\n"
    )


def test_an_export_cut_short_by_the_disk_leaves_no_partial_file(tmp_path) -> None:
    # A file-size limit makes the disk "full" after 20 KB: a real EFBIG from write(2)
    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death by SIGXFSZ
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))

    out = tmp_path / "bundle.json"
    r = subprocess.run(
        [sys.executable, "-m", "gpumon", "export", str(LOG), "-f", "json", "-o", str(out)],
        capture_output=True,
        text=True,
        preexec_fn=small_disk,
        timeout=120,
    )
    assert r.returncode == 1 and r.stdout == "", r.stderr
    assert r.stderr.startswith("gpumon export: cannot write ") and len(r.stderr.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # neither a truncated bundle.json nor a .partial
