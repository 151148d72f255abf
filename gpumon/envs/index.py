"""Which package index the installer will use, read the way each tool reads it.

gpumon never passes an index of its own (except PyPI's sister index for CPU torch), so uv and
pip follow the user's configuration by themselves. This module only *reads* that
configuration, for two needs: `doctor` says which index is in force, and the version listing
for `bisect` asks the same index the installer would. uv reads UV_DEFAULT_INDEX / UV_INDEX_URL
and uv.toml; pip reads PIP_INDEX_URL and pip.conf. Neither reads the other's settings.
"""

from __future__ import annotations

import configparser
import importlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from gpumon.envs.tools import ToolName

PYPI_SIMPLE = "https://pypi.org/simple"


@dataclass(frozen=True)
class IndexSetting:
    url: str
    source: str  # where the setting came from: an environment variable, a file, or "default"


def _xdg_config_home() -> Path:
    return Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")


def _uv_files() -> list[Path]:
    # Most specific first; uv reads the user file, then the system file.
    if os.environ.get("UV_CONFIG_FILE"):
        return [Path(os.environ["UV_CONFIG_FILE"])]
    files = [_xdg_config_home() / "uv" / "uv.toml"]
    for d in (os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":"):
        files.append(Path(d) / "uv" / "uv.toml")
    files.append(Path("/etc/uv/uv.toml"))
    return files


def _uv_file_index(path: Path) -> str | None:
    try:  # by name: Python 3.10 has no TOML reader in the standard library
        tomllib = importlib.import_module("tomllib")
    except ImportError:
        return None

    try:
        data = tomllib.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for table in (data, data.get("pip", {})):
        if isinstance(table, dict):
            for key in ("default-index", "index-url"):
                if isinstance(table.get(key), str):
                    return str(table[key])
    for entry in data.get("index", []) if isinstance(data.get("index"), list) else []:
        if isinstance(entry, dict) and entry.get("default") and isinstance(entry.get("url"), str):
            return str(entry["url"])
    return None


def _pip_files() -> list[Path]:
    # Least specific first: later files override earlier ones, as pip merges them.
    files = [Path("/etc/pip.conf")]
    for d in reversed((os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(":")):
        files.append(Path(d) / "pip" / "pip.conf")
    files += [Path.home() / ".pip" / "pip.conf", _xdg_config_home() / "pip" / "pip.conf"]
    files.append(Path(sys.prefix) / "pip.conf")
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    return files


def _pip_file_index(path: Path) -> str | None:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except (OSError, configparser.Error):
        return None
    for section in ("install", "global"):
        if parser.has_option(section, "index-url"):
            return parser.get(section, "index-url").split()[0]
    return None


def configured_index(tool: ToolName) -> IndexSetting:
    """The primary index `tool` would use here."""
    if tool == "uv":
        for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL"):
            if os.environ.get(var):
                return IndexSetting(os.environ[var].split()[0], var)
        for path in _uv_files():
            url = _uv_file_index(path)
            if url:
                return IndexSetting(url, str(path))
        return IndexSetting(PYPI_SIMPLE, "default")
    if os.environ.get("PIP_INDEX_URL"):
        return IndexSetting(os.environ["PIP_INDEX_URL"].split()[0], "PIP_INDEX_URL")
    found = IndexSetting(PYPI_SIMPLE, "default")
    for path in _pip_files():
        url = _pip_file_index(path)
        if url:
            found = IndexSetting(url, str(path))
    return found
