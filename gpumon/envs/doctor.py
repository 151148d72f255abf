"""What `gpumon doctor` says about framework environments: where they live, how many, what
builds them and from which index. Facts only; the doctor command draws them."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gpumon.envs import layout
from gpumon.envs.cache import list_envs
from gpumon.envs.errors import EnvError
from gpumon.envs.index import configured_index
from gpumon.envs.tools import ToolName, find_uv, tool_version
from gpumon.envs.variant import TORCH_INDEX_ENV, torch_cpu_index


@dataclass(frozen=True)
class EnvFacts:
    root: str
    root_source: str  # "GPUMON_ENV_DIR" or "default"
    count: int  # complete environments
    incomplete: int  # folders without metadata (a prune removes them)
    size_bytes: int
    uv: str | None  # path of uv, None when absent
    uv_version: str
    fallback: str  # what builds when uv is absent: "venv + pip", or why it cannot
    tool: str  # what will build: "uv" or "pip"
    index_url: str
    index_source: str  # where the index setting came from
    torch_cpu_index: str
    torch_cpu_index_source: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def facts(root: Path | None = None) -> EnvFacts:
    resolved = layout.env_root(root)
    try:
        envs = list_envs(resolved)
    except EnvError:
        envs = []
    uv = find_uv()
    tool: ToolName = "uv" if uv else "pip"
    index = configured_index(tool)
    ensurepip = importlib.util.find_spec("ensurepip") is not None
    return EnvFacts(
        root=str(resolved),
        root_source="argument"
        if root
        else ("GPUMON_ENV_DIR" if os.environ.get(layout.ENV_VAR) else "default"),
        count=sum(e.complete for e in envs),
        incomplete=sum(not e.complete for e in envs),
        size_bytes=sum(e.size_bytes for e in envs),
        uv=uv,
        uv_version=tool_version(uv) if uv else "",
        fallback="venv + pip" if ensurepip else "none: this Python has no ensurepip",
        tool=tool,
        index_url=index.url,
        index_source=index.source,
        torch_cpu_index=torch_cpu_index(),
        torch_cpu_index_source=TORCH_INDEX_ENV if os.environ.get(TORCH_INDEX_ENV) else "default",
    )
