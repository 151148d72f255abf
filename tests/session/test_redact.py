"""--redact leaves no trace of the recording user's name or home directory, in any format.

`redact-home` was recorded by user "alice" from a source tree inside her home (see
record.py), so her name and home are in the command line, the cwd, the crash dumps' Python
paths and the artifact files — the places a real user's would be.
"""

from __future__ import annotations

import pytest

from gpumon.session.log import load
from gpumon.session.redact import Redactor

from .conftest import FIXTURES

SESSION = FIXTURES / "redact-home"
HOST = load(SESSION).start.host


def test_the_sample_session_really_contains_the_user_and_home() -> None:
    assert HOST.user == "alice" and HOST.home.endswith("/home/alice")
    assert HOST.hostname == "alice-workstation"
    log = (SESSION / "session.jsonl").read_text()
    assert log.count(HOST.home) > 5  # argv, cwd, crash dumps


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_no_trace_in_any_format(gpumon, tmp_path, fmt: str) -> None:
    plain = gpumon("export", SESSION, "--format", fmt)
    redacted = gpumon("export", SESSION, "--format", fmt, "--redact")
    assert plain.code == redacted.code == 0
    if fmt != "csv":  # samples carry no names: csv has nothing to redact, and must stay so
        assert HOST.home in plain.out and "alice" in plain.out  # the test can fail
    for text in (redacted.out, redacted.err):
        assert "alice" not in text.lower()
        assert HOST.home not in text
        assert HOST.home.rsplit("/home/", 1)[0] not in text  # not even the temp dir above it


def test_redacted_md_keeps_the_evidence_readable(gpumon) -> None:
    md = gpumon("export", SESSION, "--redact").out
    assert "| Host | <host> |" in md
    assert "cd ~\npython3 ~/src/gpumon/tests/fixtures/sessions/record.py redact-home" in md
    assert "~/src/gpumon/gpumon/worker/backends/fault.py:27" in md  # crashed thread's frames


def test_redacted_json_bundle_inlines_redacted_artifacts(gpumon, tmp_path) -> None:
    import json

    out = tmp_path / "bundle.json"
    assert gpumon("export", SESSION, "-f", "json", "--redact", "-o", out).code == 0
    bundle = json.loads(out.read_text())
    assert bundle["session"]["host"]["user"] == "<user>"
    assert bundle["session"]["host"]["home"] == "~"
    fh = next(a for a in bundle["artifacts"] if "faulthandler" in a["kinds"])
    assert "~/src/gpumon/gpumon/worker" in fh["content"]


def test_the_redactor_rules() -> None:
    r = Redactor("alice", "/home/alice", "Alices-MacBook-Pro.local")
    assert r.text("/home/alice/x and /home/alice") == "~/x and ~"
    assert r.text("/home/alicetta/y") == "/home/alicetta/y"  # another user's home, not hers
    assert r.text("on Alices-MacBook-Pro.local") == "on <host>"
    assert r.text("ALICE's MacBook") == "<user>'s MacBook"
    assert r.walk({"alice": ["/home/alice/a", 3, None]}) == {"<user>": ["~/a", 3, None]}
    short = Redactor("al", "/Users/al")
    assert short.text("al's calendar in /Users/al/Library") == "<user>'s calendar in ~/Library"
    # A root-like home "/" is not "redacted" into "~" everywhere; the host name always goes.
    assert Redactor("bob", "/", "buildhost").text("/usr/lib on buildhost") == "/usr/lib on <host>"


def test_names_are_replaced_at_word_and_path_boundaries_only() -> None:
    r = Redactor("dev", "/home/dev", "")
    assert r.text("device devices /dev/null") == "device devices /<user>/null"
    assert r.text("dev's box, dev_box, DEV") == "<user>'s box, <user>_box, <user>"
    assert r.text("developer") == "developer"


def test_emails_addresses_and_token_values_go() -> None:
    r = Redactor("alice", "/home/alice", "ws")
    assert r.text("contact a.b+x@example.co.uk") == "contact <email>"
    assert r.text("from 10.0.0.7 via fe80::1ff:fe23:4567:890a") == "from <ip> via <ip>"
    assert r.text("HF_TOKEN=hf_abc123 AWS_SECRET_ACCESS_KEY=xyz") == (
        "HF_TOKEN=<redacted> AWS_SECRET_ACCESS_KEY=<redacted>"
    )
    assert r.text("--api-key=sk-123 --password: hunter2") == (
        "--api-key=<redacted> --password: <redacted>"
    )
    assert r.walk(["gpumon", "--token", "abc", "--pool", "mlx"]) == [
        "gpumon",
        "--token",
        "<redacted>",
        "--pool",
        "mlx",
    ]
    # What is not personal stays: versions, C++ scopes, hex addresses.
    keep = "mlx::core::eval_impl 0x7fff5a3c libcudnn.so.9.1.0.70 torch 2.13.0 cuda:0"
    assert r.text(keep) == keep
