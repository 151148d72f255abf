"""The bytes of an export are a contract: every format, from committed real sessions.

Regenerate after an intended change with GPUMON_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

from gpumon.session.export import render
from gpumon.session.log import load
from gpumon.session.redact import Redactor

from .conftest import FIXTURES, GOLDEN, SCENARIOS

UPDATE = os.environ.get("GPUMON_UPDATE_GOLDEN") == "1"

# md for every session; csv and json where they add something (json bundles are big).
CASES = [(s, "md", False) for s in SCENARIOS] + [
    ("fault-off", "csv", False),
    ("torch-cpu", "csv", False),
    ("fault-off", "json", False),
    ("redact-home", "md", True),
    ("redact-home", "json", True),
]


def _golden_name(scenario: str, fmt: str, redact: bool) -> str:
    return f"{scenario}{'.redacted' if redact else ''}.{fmt}"


def _export(path, fmt: str, redact: bool) -> str:
    s = load(path)
    return render(s, fmt, Redactor.for_host(s.start.host) if redact else None)


@pytest.mark.parametrize(
    ("scenario", "fmt", "redact"), CASES, ids=[_golden_name(*c) for c in CASES]
)
def test_export_matches_golden(scenario: str, fmt: str, redact: bool) -> None:
    got = _export(FIXTURES / scenario, fmt, redact)
    golden = GOLDEN / _golden_name(scenario, fmt, redact)
    if UPDATE:
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(got, encoding="utf-8")
    assert golden.exists(), f"no golden file {golden.name}: run with GPUMON_UPDATE_GOLDEN=1"
    assert got == golden.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_exports_do_not_depend_on_where_the_folder_lies(tmp_path, fmt: str) -> None:
    # A session folder is attached to a bug report and exported elsewhere: same bytes.
    moved = tmp_path / "somewhere" / "fault-gdb"
    shutil.copytree(FIXTURES / "fault-gdb", moved)
    assert _export(moved, fmt, False) == _export(FIXTURES / "fault-gdb", fmt, False)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_json_bundle_holds_every_event_and_artifact(scenario: str) -> None:
    s = load(FIXTURES / scenario)
    bundle = json.loads(render(s, "json"))
    assert bundle["format"] == "gpumon-session-bundle"
    assert bundle["schema"] == 1
    assert len(bundle["events"]) == len(s.events)
    assert [e["type"] for e in bundle["events"]] == [
        type(e).__struct_config__.tag for e in s.events
    ]
    referenced = {
        e["path"] for e in bundle["events"] if e["type"] == "crash_artifact" and e.get("path")
    }
    assert {a["path"] for a in bundle["artifacts"]} == referenced
    for a in bundle["artifacts"]:
        assert not a["path"].startswith("/"), "paths are relative to the session folder"
        on_disk = (FIXTURES / scenario / a["path"]).read_text(encoding="utf-8")
        assert a["content"] == on_disk and a["bytes"] == len(on_disk.encode())


def test_csv_has_one_row_per_sample_per_pool() -> None:
    s = load(FIXTURES / "torch-cpu")
    lines = render(s, "csv").splitlines()
    header = lines[0].split(",")
    samples = [e for e in s.events if type(e).__name__ == "Sample"]
    assert len(lines) - 1 == len(samples)
    row = dict(zip(header, lines[1].split(","), strict=True))
    assert row["pool"] == "torch:cpu" and row["backend"] == "torch" and row["device"] == "cpu"
    assert row["size"] == "128" and row["dtype"] == "float32"
    assert float(row["flop_per_s"]) > 0 and float(row["lat_p50_ms"]) > 0
    assert row["time_utc"].endswith("Z")


def test_md_says_synthetic_wherever_the_fault_backend_appears() -> None:
    md = render(load(FIXTURES / "fault-off"), "md")
    for line in md.splitlines():
        if "`fault`" in line:
            assert "synthetic (fault backend)" in line, line
    assert "n/a (synthetic)" in md  # no FLOP/s figure is invented for the hashing loop


def test_md_evidence_for_a_gdb_crash() -> None:
    md = render(load(FIXTURES / "fault-gdb"), "md")
    assert "**Verdict:** SIGABRT" in md
    assert '"fault_worker-0"' in md and "CRASHED" in md  # crashed thread first, by name
    assert "Time to first crash" in md and "1/1 (21%–100%)" in md  # with its Wilson interval
    assert "`artifacts/fault-1/native-stacks.txt` — native" in md
    assert "**File:** artifacts/fault-1/native-stacks.txt" in md  # relative, not /tmp/...
