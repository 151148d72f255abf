"""Build progress: the phases a caller can draw, and reading them from the installer's output.

uv and pip both print one line per step when their output is not a terminal ("Resolved 3
packages", "Downloading mlx-cpu (9.8MiB)", "Installing collected packages: ..."). Those lines
are turned into `BuildProgress` values for the TUI's bar and the CLI's rich progress. A line
neither tool is known to print changes nothing, so a new installer version degrades to coarser
phases, never to an error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

Phase = Literal[
    "waiting",  # another process or pool is building the same environment
    "creating",  # making the virtual environment
    "resolving",  # the installer picks versions
    "downloading",  # wheels are fetched (fraction known with uv: sizes are announced)
    "installing",  # wheels are unpacked into the env
    "verifying",  # the new env's Python imports the framework
    "done",
]
PHASES: tuple[Phase, ...] = (
    "waiting",
    "creating",
    "resolving",
    "downloading",
    "installing",
    "verifying",
    "done",
)


@dataclass(frozen=True)
class BuildProgress:
    env: str  # the env's label, e.g. "mlx 0.31.1 (cpu, py3.11)"
    phase: Phase
    fraction: float | None  # 0..1 within the phase, None when unknown
    elapsed_s: float  # since the build (or the wait) started
    message: str = ""
    bytes_done: int | None = None
    bytes_total: int | None = None


ProgressCallback = Callable[[BuildProgress], None]

_UNITS = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}
_SIZE = r"([\d.]+)\s*([kKMG]i?B|B)"


def parse_size(number: str, unit: str) -> int:
    return int(float(number) * _UNITS[unit.lower()])


@dataclass
class OutputReader:
    """Folds installer lines into progress; `installed` collects `name==version` it reports."""

    env: str
    report: ProgressCallback | None
    started: float = field(default_factory=time.monotonic)
    phase: Phase = "creating"
    sizes: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)

    def emit(self, phase: Phase, message: str = "", fraction: float | None = None) -> None:
        self.phase = phase
        if self.report is None:
            return
        total = sum(self.sizes.values()) or None
        done = sum(self.sizes[n] for n in self.done if n in self.sizes) if total else None
        self.report(
            BuildProgress(
                env=self.env,
                phase=phase,
                fraction=fraction,
                elapsed_s=time.monotonic() - self.started,
                message=message,
                bytes_done=done,
                bytes_total=total,
            )
        )

    def _download_fraction(self) -> float | None:
        total = sum(self.sizes.values())
        if not total:
            return None
        return min(1.0, sum(self.sizes[n] for n in self.done if n in self.sizes) / total)

    def feed(self, line: str) -> None:
        raise NotImplementedError


class UvReader(OutputReader):
    _resolved = re.compile(r"^Resolved (\d+) packages?")
    _downloading = re.compile(rf"^Downloading (\S+) \({_SIZE}\)")
    _downloaded = re.compile(r"^Downloaded (\S+)")
    _prepared = re.compile(r"^Prepared (\d+) packages?")
    _installed = re.compile(r"^Installed (\d+) packages?")

    def feed(self, line: str) -> None:
        text = line.strip()
        if m := self._resolved.match(text):
            self.emit("downloading", f"resolved {m.group(1)} packages", self._download_fraction())
        elif m := self._downloading.match(text):
            self.sizes[m.group(1)] = parse_size(m.group(2), m.group(3))
            self.emit("downloading", f"downloading {m.group(1)}", self._download_fraction())
        elif m := self._downloaded.match(text):
            self.done.add(m.group(1))
            self.emit("downloading", f"downloaded {m.group(1)}", self._download_fraction())
        elif m := self._prepared.match(text):
            self.emit("installing", f"installing {m.group(1)} packages")
        elif m := self._installed.match(text):
            self.emit("installing", f"installed {m.group(1)} packages", 1.0)


class PipReader(OutputReader):
    _collecting = re.compile(r"^Collecting (\S+)")
    _downloading = re.compile(rf"^Downloading (\S+) \({_SIZE}\)")
    _cached = re.compile(r"^Using cached (\S+)")
    _installing = re.compile(r"^Installing collected packages: (.+)")
    _success = re.compile(r"^Successfully installed (.+)")

    def feed(self, line: str) -> None:
        text = line.strip()
        if m := self._collecting.match(text):
            self.emit("resolving", f"collecting {m.group(1)}")
        elif m := self._downloading.match(text):
            # pip announces each size only when it starts that download: no total, no fraction.
            name = m.group(1).rsplit("/", 1)[-1]
            self.sizes[name] = parse_size(m.group(2), m.group(3))
            self.done.add(name)
            self.emit("downloading", f"downloading {name}")
        elif m := self._cached.match(text):
            self.emit("downloading", f"cached {m.group(1).rsplit('/', 1)[-1]}")
        elif m := self._installing.match(text):
            self.emit("installing", f"installing {m.group(1)}")
        elif self._success.match(text):
            self.emit("installing", "installed", 1.0)
