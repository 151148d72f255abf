"""The crash parsers are independent modules: none imports another parser (the import-linter
"independence" contract between gpumon.crash.ips, .text, .gdb and .faulthandler, extended to the
newer readers). Only gpumon.crash.parse and gpumon.crash.compose put them together."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CRASH = ROOT / "gpumon" / "crash"
# Each parser with the helper modules that belong to it alone.
PARSERS = {
    "ips": {"ips"},
    "text": {"text", "text_lines"},
    "gdb": {"gdb", "gdb_frames"},
    "faulthandler": {"faulthandler"},
    "lldb": {"lldb"},
    "coredump": {"coredump"},
    "panic": {"panic"},
    "c10": {"c10"},
}
OWNED = {m: p for p, ms in PARSERS.items() for m in ms}


def crash_imports(module: str) -> set[str]:
    """gpumon.crash modules that `module` imports (statically, anywhere in the file)."""
    tree = ast.parse((CRASH / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("gpumon.crash."):
                found.add(node.module.split(".")[2])
            elif node.module == "gpumon.crash":
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("gpumon.crash."):
                    found.add(alias.name.split(".")[2])
    return found


@pytest.mark.parametrize("module", sorted(OWNED))
def test_a_parser_imports_no_other_parser(module: str) -> None:
    mine = OWNED[module]
    others = {m for m, p in OWNED.items() if p != mine}
    assert crash_imports(module) & others == set()


@pytest.mark.parametrize("parser", ["ips", "text", "gdb", "faulthandler"])
def test_importing_a_parser_loads_no_other_parser(parser: str) -> None:
    code = (
        f"import sys, gpumon.crash.{parser}; "
        "print(' '.join(sorted(m for m in sys.modules if m.startswith('gpumon.crash.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    loaded = {m.split(".")[2] for m in out}
    assert loaded & {m for m, p in OWNED.items() if p != parser} == set()
