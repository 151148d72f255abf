"""`gpumon-env.json`: what an environment holds, written last so its presence means complete.

The file records the request (framework, version, variant, Python, platform), what the
installer actually put there (distribution -> version), the tool and index used, and when it
was built. Last use is not in here: rewriting JSON on every pool start would race with readers;
the mtime of `.last-used` beside it carries that instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

from gpumon.envs.layout import metadata_path

FORMAT = 1


class EnvMetadata(msgspec.Struct, frozen=True, kw_only=True):
    format: int = FORMAT
    framework: str
    version: str
    variant: str
    python: str  # full version of the env's interpreter, e.g. 3.11.7
    python_key: str  # py3.11
    platform: str  # linux-x86_64
    installed: dict[str, str]  # distribution -> version, e.g. {"mlx": "0.31.1", ...}
    requirements: list[str]
    extra_index_urls: list[str] = []
    tool: str  # "uv 0.13.9" or "pip 23.2.1"
    created: str  # ISO 8601, UTC
    build_seconds: float


_decoder = msgspec.json.Decoder(EnvMetadata)


def write(folder: Path, meta: EnvMetadata) -> None:
    """Write beside, fsync, rename: a reader sees no file or a whole one, never half of it."""
    final = metadata_path(folder)
    tmp = final.with_suffix(".json.tmp")
    with open(tmp, "wb") as f:
        f.write(msgspec.json.format(msgspec.json.encode(meta)))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, final)


def read(folder: Path) -> EnvMetadata | None:
    """The metadata, or None when missing or unreadable (an incomplete or foreign folder)."""
    try:
        return _decoder.decode(metadata_path(folder).read_bytes())
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return None
