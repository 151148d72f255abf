"""The one exception of framework environments: a cause and the way out, on one line.

Everything a user can cause while gpumon builds, finds or removes an environment (a version
that does not exist, no wheel for this machine, an unreachable index, a full disk, a cache
that cannot be written) ends as an `EnvError`. Callers print `str(error)` and exit non-zero;
the installer's own output is kept in `detail` for a log or a `--verbose` view, never shown
as a traceback.
"""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal[
    "bad-spec",  # the user typed something that is not `framework@X.Y.Z`
    "no-version",  # the index has no such release at all
    "no-wheel",  # the release exists but nothing installs on this platform / Python
    "unreachable",  # the package index could not be reached
    "no-space",  # ENOSPC while building
    "not-writable",  # the cache root is read-only or not ours
    "interpreter",  # the Python to build with is missing or unusable
    "tool",  # neither uv nor venv+pip can build here
    "broken",  # installed, but the framework does not import
    "cancelled",  # the caller asked the build to stop
    "not-found",  # nothing cached matches (listing / removal)
    "busy",  # another process is building the environment being removed
    "install-failed",  # anything else the installer reported
]


class EnvError(Exception):
    """`message` names the cause, `fix` the way out; `detail` keeps the installer's tail."""

    def __init__(
        self, message: str, fix: str, *, kind: ErrorKind = "install-failed", detail: str = ""
    ) -> None:
        super().__init__(message, fix)
        self.message = message
        self.fix = fix
        self.kind: ErrorKind = kind
        self.detail = detail

    def __str__(self) -> str:
        # One line, always: the installer's text may carry newlines, ours must not.
        text = f"{self.message}; {self.fix}" if self.fix else self.message
        return " ".join(text.split())


class EnvCancelled(EnvError):
    """The build was stopped by its caller (cancel event or KeyboardInterrupt's cleanup)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"building the {what} environment was cancelled",
            "nothing was kept; start the pool again to rebuild it",
            kind="cancelled",
        )
