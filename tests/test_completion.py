"""`gpumon completion`: the generated scripts, loaded and asked for completions by real shells."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from gpumon.commands import SUBCOMMANDS

ROOT = Path(__file__).resolve().parents[1]


def gpumon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gpumon", *args], capture_output=True, text=True, cwd=ROOT
    )


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    r = gpumon("completion", "bash")
    assert r.returncode == 0, r.stderr
    path = tmp_path_factory.mktemp("completion") / "gpumon.bash"
    path.write_text(r.stdout)
    return path


def complete(script: Path, line: str) -> list[str]:
    """What bash offers for `line` with the cursor at its end, as Tab would ask for it."""
    probe = (
        f'source "{script}"\n'
        f"COMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
        'read -ra COMP_WORDS <<< "$COMP_LINE"; COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))\n'
        '_gpumon_complete gpumon; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    r = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", probe], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    return [x for x in r.stdout.splitlines() if x]


def _quote(s: str) -> str:
    return "'" + s.replace("'", "'\\''") + "'"


def test_bash_accepts_the_script_and_it_names_every_subcommand(bash_script: Path) -> None:
    r = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    text = bash_script.read_text()
    for name in SUBCOMMANDS:
        assert name in text


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("gpumon pi", ["pipe"]),
        ("gpumon sweep --po", ["--pool", "--policy", "--policies"]),
        ("gpumon sweep --pool to", ["torch", "torch:mps", "torch:cuda", "torch:cpu"]),
        # bash keeps what precedes the last ':' in the word itself
        ("gpumon pipe --pool torch:c", ["cuda", "cpu"]),
        ("gpumon doctor --pool ml", ["mlx", "mlx:gpu", "mlx:cpu", "mlx:metal", "mlx:cuda"]),
        ("gpumon export lat", ["latest"]),
        ("gpumon export x --format ", ["md", "csv", "json", "repro", "bundle", "issue"]),
        ("gpumon completion ", ["bash", "zsh"]),
        ("gpumon pipe --cou", ["--count"]),
    ],
)
def test_bash_completes(bash_script: Path, line: str, expected: list[str]) -> None:
    assert sorted(complete(bash_script, line)) == sorted(expected)


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_accepts_the_script(tmp_path: Path) -> None:
    r = gpumon("completion", "zsh")
    assert r.returncode == 0 and r.stdout.startswith("#compdef gpumon")
    script = tmp_path / "_gpumon"
    script.write_text(r.stdout)
    check = subprocess.run(["zsh", "-n", str(script)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    assert "_gpumon_pools" in r.stdout and "torch:cuda" in r.stdout


def test_an_unknown_shell_is_one_line_and_exit_2() -> None:
    r = gpumon("completion", "fish")
    assert r.returncode == 2 and r.stdout == ""
    assert "invalid choice: 'fish'" in r.stderr and r.stderr.count("\n") == 1
