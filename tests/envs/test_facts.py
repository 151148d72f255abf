"""Doctor facts, index configuration as each tool reads it, and import hygiene."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpumon.envs.doctor import facts
from gpumon.envs.index import PYPI_SIMPLE, configured_index
from gpumon.envs.tools import find_uv

REPO = Path(__file__).resolve().parents[2]


def test_doctor_counts_the_cache(mlx_env, shared_root: Path) -> None:
    f = facts(shared_root)
    assert f.root == str(shared_root) and f.root_source == "argument"
    assert f.count >= 1 and f.size_bytes > 0
    assert (f.uv is not None) == (find_uv() is not None)
    assert f.tool == ("uv" if f.uv else "pip")
    assert f.index_url and f.torch_cpu_index.startswith("http")
    json.dumps(f.as_dict())  # what doctor --json prints


def test_doctor_on_an_empty_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUMON_ENV_DIR", str(tmp_path / "nothing"))
    f = facts()
    assert (f.root, f.root_source, f.count, f.size_bytes) == (
        str(tmp_path / "nothing"),
        "GPUMON_ENV_DIR",
        0,
        0,
    )


def _clear_index_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for var in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL", "PIP_CONFIG_FILE"):
        monkeypatch.delenv(var, raising=False)
    # No user or system files either: point the config lookups at empty places.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_CONFIG_DIRS", str(tmp_path / "sys"))
    monkeypatch.setenv("UV_CONFIG_FILE", str(tmp_path / "no-uv.toml"))


def test_uv_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_index_settings(monkeypatch, tmp_path)
    assert configured_index("uv").url == PYPI_SIMPLE
    (tmp_path / "uv.toml").write_text(
        '[[index]]\nurl = "https://uv-file.example/simple"\ndefault = true\n'
    )
    monkeypatch.setenv("UV_CONFIG_FILE", str(tmp_path / "uv.toml"))
    if sys.version_info >= (3, 11):
        assert configured_index("uv").url == "https://uv-file.example/simple"
    monkeypatch.setenv("UV_INDEX_URL", "https://old.example/simple")
    assert configured_index("uv").url == "https://old.example/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://new.example/simple")
    got = configured_index("uv")
    assert (got.url, got.source) == ("https://new.example/simple", "UV_DEFAULT_INDEX")
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip.example/simple")
    assert configured_index("uv").url == "https://new.example/simple"  # uv ignores pip's


def test_pip_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _clear_index_settings(monkeypatch, tmp_path)
    conf = tmp_path / "pip.conf"
    conf.write_text("[global]\nindex-url = https://pip-file.example/simple\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    got = configured_index("pip")
    if got.source.endswith("pip.conf") and got.source != str(conf):
        pytest.skip(f"a site-wide {got.source} outranks the test's file here")
    assert (got.url, got.source) == ("https://pip-file.example/simple", str(conf))
    monkeypatch.setenv("PIP_INDEX_URL", "https://pip-env.example/simple")
    assert configured_index("pip").url == "https://pip-env.example/simple"
    monkeypatch.setenv("UV_DEFAULT_INDEX", "https://uv.example/simple")
    assert configured_index("pip").url == "https://pip-env.example/simple"


_HYGIENE = """
import json, sys
import gpumon.envs, gpumon.commands.envs, gpumon.envs.doctor, gpumon.envs.versions
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
      ("torch", "mlx", "textual", "rich", "gpumon"))))
"""

_WORKER = """
import json, pkgutil, importlib, sys
import gpumon.worker
for m in pkgutil.walk_packages(gpumon.worker.__path__, "gpumon.worker."):
    if m.name.endswith("_backend"):
        continue  # these import the frameworks themselves
    importlib.import_module(m.name)
print(json.dumps(sorted(m for m in sys.modules if m.startswith("gpumon.envs"))))
"""


def test_envs_never_imports_a_framework_or_the_ui() -> None:
    r = subprocess.run(
        [sys.executable, "-c", _HYGIENE], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout)
    assert not [m for m in loaded if m.split(".")[0] in ("torch", "mlx", "textual", "rich")]
    assert "gpumon.envs" in loaded


def test_the_worker_never_imports_envs() -> None:
    env = {k: v for k, v in os.environ.items()}
    r = subprocess.run(
        [sys.executable, "-c", _WORKER],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == []
