"""What `gpumon repro` reads back from a repro script: its framework pin, session and run time.

The header is the script's contract with gpumon (repro.py writes it): `# requires:
mlx==0.31.1 (cpu)` names the framework, the exact release and the build its device needs;
`(id 1ead19aac9cf)` in the first comment names the session it came from; `# recorded: SIGSEGV`
how the session's pool died; `SECONDS = 5.2` is how long it runs before it stops by itself. A
person may edit the script; these lines are all gpumon relies on, and a script without a pin
still runs under `--python PATH`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REQUIRES = re.compile(
    r"^# requires: (?P<framework>mlx|torch)==(?P<version>[0-9][0-9A-Za-z.+]*) "
    r"\((?P<build>cpu|cuda|metal|gpu|mps)\)\s*$",
    re.M,
)
RECORDED = re.compile(r"^# recorded: (?P<how>SIG[A-Z0-9]+|exit -?\d+|death)\s*$", re.M)
SESSION_ID = re.compile(r"\(id (?P<id>[0-9a-f]{6,32})\)")
SECONDS = re.compile(r"^SECONDS = (?P<s>[0-9]+(?:\.[0-9]+)?)\b", re.M)
HEADER_LINES = 40  # the pin and the session id live in the leading comment


@dataclass(frozen=True)
class ScriptHeader:
    framework: str | None = None  # mlx | torch
    version: str | None = None
    build: str | None = None  # cpu | cuda | metal | gpu | mps
    session_id: str | None = None
    seconds: float | None = None  # how long the script runs before it stops by itself
    recorded: str | None = None  # how the session's pool died: SIGSEGV, "exit 1"

    @property
    def pin(self) -> str | None:
        """`mlx@0.31.1`, as gpumon.envs reads a pin."""
        return f"{self.framework}@{self.version}" if self.framework and self.version else None

    @property
    def label(self) -> str:
        if not self.pin:
            return "no framework pin"
        return f"{self.framework} {self.version} ({self.build})"


def read_header(text: str) -> ScriptHeader:
    head = "\n".join(text.splitlines()[:HEADER_LINES])
    req = REQUIRES.search(head)
    sid = SESSION_ID.search(head)
    sec = SECONDS.search(text)
    how = RECORDED.search(head)
    return ScriptHeader(
        framework=req["framework"] if req else None,
        version=req["version"] if req else None,
        build=req["build"] if req else None,
        session_id=sid["id"] if sid else None,
        seconds=float(sec["s"]) if sec else None,
        recorded=how["how"] if how else None,
    )
