"""`mlx@0.31.1`: which framework, which exact release. Parsing only; no platform, no I/O.

A pool pins one release, never a range: the point of a pinned pool is to say "this crash
happens on exactly this version", and a range would let the installer pick a different one
tomorrow. Ranges belong to `gpumon bisect --versions A..B` (see `versions.parse_range`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gpumon.envs.errors import EnvError

FRAMEWORKS = ("mlx", "torch")

# Characters that only appear in specifier syntax, never in one exact version.
_RANGE_MARKS = re.compile(r"[<>=!~*,^ ]|\.\.")


@dataclass(frozen=True, order=True)
class FrameworkPin:
    """One framework at one exact, normalised version (PEP 440), e.g. mlx 0.31.1."""

    framework: str
    version: str

    def __str__(self) -> str:
        return f"{self.framework}@{self.version}"


def _bad(text: str, why: str) -> EnvError:
    return EnvError(
        f"{text!r} is not a framework version: {why}",
        "write FRAMEWORK@VERSION with one exact release, e.g. mlx@0.31.1 or torch@2.5.1",
        kind="bad-spec",
    )


def parse_pin(text: str) -> FrameworkPin:
    """Parse `FRAMEWORK@VERSION`; raises EnvError(kind="bad-spec") with the reason."""
    from packaging.version import InvalidVersion, Version

    raw = text.strip()
    name, sep, version = raw.partition("@")
    name = name.strip().lower()
    version = version.strip()
    if not sep:
        if "==" in raw:
            return parse_pin(raw.replace("==", "@", 1))
        raise _bad(text, "no '@VERSION'")
    if name not in FRAMEWORKS:
        raise _bad(text, f"unknown framework {name!r} (known: {', '.join(FRAMEWORKS)})")
    if not version:
        raise _bad(text, "the version is empty")
    if _RANGE_MARKS.search(version):
        raise EnvError(
            f"{text!r} is a version range, but a pool runs one exact release",
            f"give one version, e.g. {name}@{_example(name)} "
            "(ranges are for gpumon bisect --versions A..B)",
            kind="bad-spec",
        )
    try:
        parsed = Version(version)
    except InvalidVersion:
        raise _bad(text, f"{version!r} is not a version number") from None
    if parsed.local is not None:
        # torch's `+cpu`/`+cu121` builds are picked from the pool's device, not typed.
        raise _bad(
            text,
            f"drop the local part '+{parsed.local}': the build (CPU/CUDA) follows the device",
        )
    return FrameworkPin(name, str(parsed))


def _example(framework: str) -> str:
    return {"mlx": "0.31.1", "torch": "2.5.1"}.get(framework, "1.0.0")


def normalize(name: str) -> str:
    """A distribution's canonical name (PEP 503): `MLX_CPU` and `mlx.cpu` are `mlx-cpu`."""
    return re.sub(r"[-_.]+", "-", name).lower()
