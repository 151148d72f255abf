"""The streamed exports (a Digest: the log read once, samples folded, never held) write the
same bytes as the exports of the whole loaded log, on every committed session and format."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gpumon import analysis, facts
from gpumon import events as ev
from gpumon.session.digest import digest
from gpumon.session.export import FORMATS, render
from gpumon.session.log import load
from gpumon.session.redact import Redactor

from .conftest import FIXTURES, SCENARIOS


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_the_digest_folds_what_the_whole_log_computes(scenario: str) -> None:
    whole, d = load(FIXTURES / scenario), digest(FIXTURES / scenario)
    assert d.runs == analysis.runs(whole.events)
    assert d.cells == facts.cells(whole.events)
    assert d.event_count == len(whole.events)
    assert (d.start, d.end, d.warnings) == (whole.start, whole.end, whole.warnings)
    assert (d.first_t, d.duration) == (whole.first_t, whole.duration)
    assert d.events == [e for e in whole.events if not isinstance(e, ev.Sample | ev.HostSample)]
    assert list(d.every_event()) == whole.events  # the second pass reads the same events


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("redact", [False, True], ids=["plain", "redacted"])
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_streamed_export_is_the_whole_logs_export(scenario: str, fmt: str, redact: bool) -> None:
    whole, d = load(FIXTURES / scenario), digest(FIXTURES / scenario)
    red = Redactor.for_host(whole.start.host) if redact else None
    assert render(d, fmt, red) == render(whole, fmt, red)


def test_a_redactor_that_renames_the_events_key_still_writes_the_whole_bundle() -> None:
    # The JSON bundle's keys are redacted too; the events are written where the (redacted)
    # "events" key is, so a user called "events" must not lose them.
    whole, d = load(FIXTURES / "fault-off"), digest(FIXTURES / "fault-off")
    red = Redactor("events", "/home/events")
    text = render(d, "json", red)
    assert text == render(whole, "json", red)
    assert '"<user>": [\n    {' in text


def _damaged(tmp_path: Path) -> Path:
    """fault-off with garbage in the middle and a torn last line: warnings in every export."""
    folder = tmp_path / "damaged"
    shutil.copytree(FIXTURES / "fault-off", folder)
    log = folder / "session.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines.insert(5, b"not json at all")
    log.write_bytes(b"\n".join(lines).rstrip(b"\n") + b'\n{"type":"sample","t":1')
    return log


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_damaged_log_streams_with_the_same_warnings(tmp_path: Path, fmt: str) -> None:
    log = _damaged(tmp_path)
    whole, d = load(log), digest(log)
    assert len(d.warnings) == 2 and d.warnings == whole.warnings
    assert render(d, fmt) == render(whole, fmt)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_second_pass_reads_only_what_the_first_read(tmp_path: Path, fmt: str) -> None:
    # A live log grows between the passes (the monitor's own export): what was appended after
    # the digest is not in the export, which stays one session's consistent snapshot.
    folder = tmp_path / "live"
    shutil.copytree(FIXTURES / "fault-off", folder)
    before = render(load(folder), fmt)
    d = digest(folder)
    with open(folder / "session.jsonl", "ab") as f:
        f.write(b'{"type":"notice","t":1e12,"level":"info","message":"later"}\n')
    assert render(d, fmt) == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_cli_streams_to_a_file_the_same_bytes(gpumon, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"out.{fmt}"
    r = gpumon("export", str(FIXTURES / "torch-cpu"), "-f", fmt, "-o", str(out))
    assert r.code == 0, r.err
    assert out.read_text(encoding="utf-8") == render(load(FIXTURES / "torch-cpu"), fmt)
    r = gpumon("export", str(FIXTURES / "torch-cpu"), "-f", fmt)
    assert r.code == 0 and r.out == out.read_text(encoding="utf-8")
