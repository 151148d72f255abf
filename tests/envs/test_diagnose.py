"""Classifying installer output on text uv and pip printed here (the real-tool runs of the
same failures are in test_errors.py); the wording is one line that names a way out."""

from __future__ import annotations

import pytest

from gpumon.envs.diagnose import Context, diagnose, last_error_line, pip_indexes, words

UV_NO_VERSION = """\
Using Python 3.11.7 environment at: e1
error: No solution found when resolving dependencies
  cause: Because there is no version of mlx[cpu]==0.0.1 and you require mlx[cpu]==0.0.1, we \
can conclude that your requirements are unsatisfiable.
"""
UV_NO_WHEEL = """\
error: No solution found when resolving dependencies
  cause: Because mlx[cpu]==0.22.1 has no wheels with a matching platform tag (e.g., \
`manylinux_2_36_x86_64`) and you require mlx[cpu]==0.22.1, we can conclude that your \
requirements are unsatisfiable.

hint: Wheels are available for `mlx` (v0.22.1) on the following platforms: `macosx_13_0_arm64`
"""
UV_REFUSED = """\
error: Request failed after 3 retries in 9.8s
  cause: Failed to fetch: http://127.0.0.1:9/simple/mlx/
  cause: error sending request for url (http://127.0.0.1:9/simple/mlx/)
  cause: client error (Connect)
  cause: tcp connect error
  cause: Connection refused (os error 111)
"""
UV_FULL = """\
error: Failed to install: mlx_cpu-0.31.1-py3-none-manylinux_2_35_x86_64.whl (mlx-cpu==0.31.1)
  cause: Failed to copy to `/tmp/exp/tiny/e/lib/python3.11/site-packages/mlx/lib/libmlx.so`
  cause: failed to copy file from /root/.cache/uv/x/libmlx.so to /tmp/e/.tmpFK: No space left \
on device (os error 28)
"""
PIP_DNS = """\
Looking in indexes: https://nonexistent.invalid/simple, file:///opt/pypi/simple
WARNING: Retrying (Retry(total=0, connect=None, read=None, redirect=None, status=None)) after \
connection broken by 'NewConnectionError('<HTTPSConnection object at 0x7f>: Failed to establish \
a new connection: [Errno -2] Name or service not known')': /simple/mlx/
ERROR: Could not find a version that satisfies the requirement mlx[cpu]==0.31.2 (from \
versions: none)
ERROR: No matching distribution found for mlx[cpu]==0.31.2
"""
PIP_NO_MATCH = """\
ERROR: Could not find a version that satisfies the requirement mlx[cpu]==0.22.1 (from versions: \
0.2.0, 0.21.1, 0.25.2)
ERROR: No matching distribution found for mlx[cpu]==0.22.1
"""
CTX = Context("mlx", "0.22.1", "cpu", "Linux x86_64 / CPython 3.11", "/c/envs", "/c/envs/x.log")


@pytest.mark.parametrize(
    ("tool", "text", "kind"),
    [
        ("uv", UV_NO_VERSION, "no-version"),
        ("uv", UV_NO_WHEEL, "no-wheel"),
        ("uv", UV_REFUSED, "unreachable"),
        ("uv", UV_FULL, "no-space"),
        ("pip", PIP_DNS, "unreachable"),
        ("pip", PIP_NO_MATCH, "no-version"),
        (
            "pip",
            "Error: Command '['/x/bin/python', '-m', 'ensurepip']' ... ensurepip is not available",
            "tool",
        ),
        ("uv", "error: something nobody has seen", "install-failed"),
    ],
)
def test_classes(tool: str, text: str, kind: str) -> None:
    assert diagnose(tool, text).kind == kind


def test_network_cause_and_host_are_kept() -> None:
    d = diagnose("uv", UV_REFUSED)
    assert d.where == "127.0.0.1:9" and "Connection refused" in d.reason
    d = diagnose("pip", PIP_DNS)
    assert d.where == "nonexistent.invalid" and "Name or service not known" in d.reason


def test_pip_cannot_tell_missing_from_wheelless() -> None:
    d = diagnose("pip", PIP_NO_MATCH)
    assert d.ambiguous and d.package == "mlx"
    assert words(d, CTX, exists=True)[0] == "no-wheel"
    assert words(d, CTX, exists=False)[0] == "no-version"
    kind, message, _ = words(d, CTX, exists=None)
    assert kind == "no-version" and "may not exist" in message


def test_words_are_single_lines_with_a_fix() -> None:
    for tool, text in [
        ("uv", UV_NO_VERSION),
        ("uv", UV_NO_WHEEL),
        ("uv", UV_REFUSED),
        ("uv", UV_FULL),
        ("pip", PIP_DNS),
        ("uv", "error: odd"),
    ]:
        _, message, fix = words(diagnose(tool, text), CTX, nearest=["0.21.1", "0.25.2"])
        assert message and fix and "\n" not in message + fix
    _, message, fix = words(diagnose("uv", UV_NO_WHEEL), CTX, nearest=["0.21.1", "0.25.2"])
    assert message == "mlx 0.22.1 has no wheel for Linux x86_64 / CPython 3.11"
    assert "0.21.1 or 0.25.2" in fix and "python=PATH" in fix
    _, message, fix = words(diagnose("uv", UV_REFUSED), CTX)
    assert message.startswith("cannot reach the package index 127.0.0.1:9")
    assert fix.startswith("offline? run the pool under an existing interpreter with python=PATH")


def test_backend_package_missing_names_it() -> None:
    text = "  cause: Because there is no version of mlx-cpu==0.26.1 and mlx[cpu]==0.26.1 depends on"
    kind, message, _ = words(diagnose("uv", text), CTX)
    assert kind == "no-wheel" and "needs mlx-cpu 0.22.1" in message


def test_helpers() -> None:
    assert last_error_line(PIP_NO_MATCH) == "No matching distribution found for mlx[cpu]==0.22.1"
    assert pip_indexes(PIP_DNS) == ["https://nonexistent.invalid/simple", "file:///opt/pypi/simple"]
    assert pip_indexes("Collecting x") == ["https://pypi.org/simple"]
