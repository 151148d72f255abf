"""The installers gpumon can build with: uv when present, else the standard venv + pip.

uv is looked for as the `uv` Python package's bundled binary first (no shell shim in the
way), then on PATH. $GPUMON_ENV_TOOL=pip forces the fallback (for tests, benchmarks and
machines where uv misbehaves). Each tool is described by the command lines it runs, so the
builder does not care which one it drives.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from gpumon.envs.variant import InstallPlan

ToolName = Literal["uv", "pip"]
TOOL_ENV = "GPUMON_ENV_TOOL"


@functools.lru_cache(maxsize=1)
def find_uv() -> str | None:
    """Path of a uv binary, or None."""
    try:
        import uv  # type: ignore[import-not-found,import-untyped,unused-ignore]

        found = uv.find_uv_bin()
        if found and Path(found).exists():
            return str(found)
    except (ImportError, FileNotFoundError, AttributeError):
        pass
    return shutil.which("uv")


@functools.lru_cache(maxsize=4)
def tool_version(executable: str, *args: str) -> str:
    """`0.13.9` from `uv --version` / `pip --version`; empty when it cannot say."""
    try:
        r = subprocess.run(
            [executable, *args, "--version"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    words = r.stdout.split()
    return words[1] if r.returncode == 0 and len(words) > 1 else ""


@dataclass(frozen=True)
class Tool:
    name: ToolName
    executable: str  # uv's binary, or the base interpreter for venv + pip

    def create(self, folder: Path, base_python: str) -> list[str]:
        if self.name == "uv":
            # Relocatable: the env is built under a temporary name and renamed into place.
            return [
                self.executable,
                "venv",
                "--no-project",
                "--relocatable",
                "--python",
                base_python,
                str(folder),
            ]
        return [base_python, "-m", "venv", str(folder)]

    def install(self, folder: Path, plan: InstallPlan) -> list[str]:
        python = str(folder / "bin" / "python")
        extra: list[str] = []
        for url in plan.extra_index_urls:
            extra += ["--extra-index-url", url]
        if self.name == "uv":
            # --no-build: a release without a wheel here must fail fast, not compile MLX or
            # torch from source for an hour.
            return [
                self.executable,
                "pip",
                "install",
                "--python",
                python,
                "--no-build",
                *extra,
                *plan.requirements,
            ]
        return [
            python,
            "-I",  # the monitor's PYTHONPATH must not leak another pip or framework in
            "-m",
            "pip",
            "install",
            "--only-binary=:all:",
            "--no-input",
            "--progress-bar",
            "off",
            "--disable-pip-version-check",
            *extra,
            *plan.requirements,
        ]

    def describe(self) -> str:
        if self.name == "uv":
            version = tool_version(self.executable)
            return f"uv {version}".strip()
        return "venv + pip"


def choose_tool(prefer: str | None, base_python: str) -> Tool:
    """`auto` (or None): uv if found, else venv + pip. `uv` / `pip` force one."""
    want = (prefer or os.environ.get(TOOL_ENV) or "auto").lower()
    if want not in ("auto", "uv", "pip"):
        from gpumon.envs.errors import EnvError

        raise EnvError(f"unknown environment tool {want!r}", "use uv, pip or auto", kind="bad-spec")
    if want in ("auto", "uv"):
        uv = find_uv()
        if uv is not None:
            return Tool("uv", uv)
        if want == "uv":
            from gpumon.envs.errors import EnvError

            raise EnvError(
                "uv is not installed", "pip install uv, or let gpumon use pip", kind="tool"
            )
    return Tool("pip", base_python)
