"""Why an install failed, read from the installer's own output. Pure functions: no I/O.

uv and pip word the same failures differently; each class below lists the phrases that each
tool was seen to print for it (checked against uv 0.13 and pip 23-25; see tests/envs). The
result is an `Diagnosis`: the class and the facts a message needs. Where pip cannot tell "no
such release" from "no wheel for this machine" (it lists only the versions it could install)
the builder asks the index (versions.release_status) before it words the error.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass

from gpumon.envs.errors import ErrorKind

_NO_SPACE = re.compile(r"No space left on device|os error 28\b|Errno 28\b|ENOSPC")
_NOT_WRITABLE = re.compile(
    r"Read-only file system|os error 30\b|Errno 30\b|Permission denied|os error 13\b|Errno 13\b"
)
_UV_FETCH = re.compile(r"Failed to fetch: `?(\S+?)`?\s*$", re.M)
_NET_CAUSE = re.compile(
    r"dns error|tcp connect error|Connection refused|connection reset|timed out|"
    r"Network is unreachable|No route to host|error sending request|certificate|"
    r"failed to lookup address|client error \(Connect\)",
    re.I,
)
_PIP_NET = re.compile(
    r"NewConnectionError|Failed to establish a new connection|Could not fetch URL|"
    r"ConnectTimeoutError|ReadTimeoutError|Max retries exceeded|ProxyError|SSLError|"
    r"Name or service not known|Temporary failure in name resolution|Connection refused"
)
_PIP_INDEXES = re.compile(r"^Looking in indexes: (.+)$", re.M)
_UV_NO_VERSION = re.compile(
    r"there (?:is|are) no versions? of ([A-Za-z0-9_.\-\[\]]+?)(?:[=<>!~]|\s)"
)
_UV_NOT_FOUND = re.compile(r"Because ([A-Za-z0-9_.\-]+) was not found in the package registry")
_UV_NO_WHEEL = re.compile(
    r"([A-Za-z0-9_.\-\[\]]+?)==(\S+) has no (?:usable )?wheels?(?: with a matching [^,]*)?|"
    r"([A-Za-z0-9_.\-\[\]]+?)==(\S+) (?:depends on|requires) Python|"
    r"current Python version \(\S+\) does not satisfy"
)
_PIP_NO_MATCH = re.compile(
    r"Could not find a version that satisfies the requirement (\S+) \(from versions: ([^)]*)\)"
)
_NO_ENSUREPIP = re.compile(r"ensurepip is not available|No module named ensurepip")
_NO_INTERPRETER = re.compile(r"No interpreter found|Failed to inspect Python interpreter")


@dataclass(frozen=True)
class Diagnosis:
    kind: ErrorKind
    # The package the installer complained about (e.g. "mlx-cpu"), when it said one.
    package: str = ""
    # For unreachable: the host; for pip's ambiguous "no match", the versions it could see.
    where: str = ""
    # A short reason (the network cause, or the installer's last error line).
    reason: str = ""
    # pip cannot tell no-version from no-wheel; the builder asks the index.
    ambiguous: bool = False


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).netloc or url


def _bare(requirement: str) -> str:
    return re.split(r"[\[=<>!~ ]", requirement, maxsplit=1)[0]


def last_error_line(output: str) -> str:
    """The installer's own one-line summary: uv's `error:` line, pip's last `ERROR:` line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("ERROR:", "error:")):
            return _clip(ln.split(":", 1)[1].strip())
    return _clip(lines[-1]) if lines else "no output"


def _clip(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _network_reason(output: str) -> str:
    causes = [
        ln.strip().removeprefix("cause:").strip()
        for ln in output.splitlines()
        if ln.strip().startswith("cause:")
    ]
    if causes:
        return _clip(causes[-1])
    m = re.search(r"\[Errno -?\d+\] ([^'\")]+)", output)
    if m:
        return _clip(m.group(1))
    m = _PIP_NET.search(output)
    return m.group(0) if m else "connection failed"


def diagnose(tool: str, output: str) -> Diagnosis:
    """Classify a failed install by the installer's combined stdout and stderr."""
    if _NO_SPACE.search(output):
        return Diagnosis("no-space", reason=last_error_line(output))
    if _NO_ENSUREPIP.search(output):
        return Diagnosis("tool", reason="venv has no ensurepip")
    if _NO_INTERPRETER.search(output):
        return Diagnosis("interpreter", reason=last_error_line(output))
    if tool == "uv":
        fetch = _UV_FETCH.search(output)
        if fetch and _NET_CAUSE.search(output):
            return Diagnosis(
                "unreachable", where=_host(fetch.group(1)), reason=_network_reason(output)
            )
        if m := _UV_NO_VERSION.search(output):
            return Diagnosis("no-version", package=_bare(m.group(1)))
        if m := _UV_NOT_FOUND.search(output):
            return Diagnosis("no-version", package=_bare(m.group(1)), reason="not on the index")
        if m := _UV_NO_WHEEL.search(output):
            return Diagnosis("no-wheel", package=_bare(m.group(1) or m.group(3) or ""))
    else:
        if _PIP_NET.search(output):
            idx = _PIP_INDEXES.search(output)
            where = _host(idx.group(1).split(",")[0].strip()) if idx else "pypi.org"
            return Diagnosis("unreachable", where=where, reason=_network_reason(output))
        if m := _PIP_NO_MATCH.search(output):
            seen = m.group(2).strip()
            return Diagnosis("no-version", package=_bare(m.group(1)), where=seen, ambiguous=True)
    if _NOT_WRITABLE.search(output):
        return Diagnosis("not-writable", reason=last_error_line(output))
    return Diagnosis("install-failed", reason=last_error_line(output))


def pip_indexes(output: str) -> list[str]:
    """The index URLs pip said it looked in (absent when it used only the default)."""
    m = _PIP_INDEXES.search(output)
    if not m:
        return ["https://pypi.org/simple"]
    return [u.strip() for u in m.group(1).split(",") if u.strip()]


@dataclass(frozen=True)
class Context:
    """What a message needs to name: the env and the way out."""

    framework: str
    version: str
    variant: str
    platform: str  # PythonTarget.describe(): "Linux x86_64 / CPython 3.11"
    root: str
    log: str


def _alternatives(versions: list[str]) -> str:
    if len(versions) == 1:
        return versions[0]
    return ", ".join(versions[:-1]) + " or " + versions[-1]


def words(
    d: Diagnosis, ctx: Context, *, exists: bool | None = None, nearest: list[str] | None = None
) -> tuple[ErrorKind, str, str]:
    """(kind, message, fix) for a diagnosis. `exists` settles pip's ambiguous case (None:
    unknown); `nearest` are installable releases to suggest."""
    from gpumon.envs.simple_api import OFFLINE_FIX

    fw, v = ctx.framework, ctx.version
    other = d.package and d.package not in (fw, f"{fw}[{ctx.variant}]")
    suggest = f", e.g. {_alternatives(nearest)}" if nearest else ""
    kind = d.kind
    if d.ambiguous and exists is not None:
        kind = "no-wheel" if exists else "no-version"
    if kind == "no-version" and d.ambiguous and exists is None:
        return (
            kind,
            f"no installable {fw} {v} for {ctx.platform} "
            "(the release may not exist, or has no wheel for this platform)",
            f"use a released version with a wheel here{suggest}",
        )
    if kind == "no-version":
        if other:
            return (
                "no-wheel",
                f"{fw} {v} ({ctx.variant}) needs {d.package} {v}, which the package index "
                "does not have",
                f"use a version whose {ctx.variant} build exists{suggest}",
            )
        return (
            kind,
            f"{fw} has no release {v} on the package index",
            f"use a released version{suggest}",
        )
    if kind == "no-wheel":
        what = f"{fw} {v}" + (f" needs {d.package}, which" if other else "")
        return (
            kind,
            f"{what} has no wheel for {ctx.platform}",
            f"use a version that has one{suggest}, or run the pool under python=PATH "
            f"of an interpreter that has {fw} {v}",
        )
    if kind == "unreachable":
        why = f" ({d.reason})" if d.reason else ""
        return kind, f"cannot reach the package index {d.where}{why}", OFFLINE_FIX
    if kind == "no-space":
        return (
            kind,
            f"no space left on the device while building {fw} {v} in {ctx.root}",
            "free some space or point GPUMON_ENV_DIR at a larger disk "
            "(gpumon envs --prune removes unused environments)",
        )
    if kind == "not-writable":
        return (
            kind,
            f"cannot write the {fw} {v} environment in {ctx.root} ({d.reason})",
            "point GPUMON_ENV_DIR at a writable directory",
        )
    if kind == "tool":
        return (
            kind,
            "this Python's venv module cannot install pip (no ensurepip)",
            "install uv (pip install uv) or your distribution's python3-venv package",
        )
    if kind == "interpreter":
        return (
            kind,
            f"the Python to build with is unusable: {d.reason}",
            "give python=PATH of a working interpreter",
        )
    return (
        "install-failed",
        f"installing {fw} {v} failed: {d.reason}",
        f"the installer's full output is in {ctx.log}",
    )
