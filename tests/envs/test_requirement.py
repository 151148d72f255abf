"""Pins, variants and install plans: pure decisions, tested without the network."""

from __future__ import annotations

import dataclasses

import pytest

from gpumon.envs import EnvError, parse_pin
from gpumon.envs.interpreter import PythonTarget, monitor_python
from gpumon.envs.layout import EnvKey
from gpumon.envs.requirement import FrameworkPin
from gpumon.envs.variant import (
    TORCH_CPU_INDEX,
    choose_variant,
    install_plan,
    nvidia_present,
)

LINUX = PythonTarget("/usr/bin/python3.12", (3, 12, 4), "cpython", False, "linux", "x86_64")
MAC = dataclasses.replace(LINUX, system="darwin", machine="arm64")


@pytest.mark.parametrize(
    ("text", "framework", "version"),
    [
        ("mlx@0.31.1", "mlx", "0.31.1"),
        ("torch@2.5.1", "torch", "2.5.1"),
        (" MLX@0.31.1 ", "mlx", "0.31.1"),
        ("mlx==0.31.2", "mlx", "0.31.2"),
        ("torch@2.6.0rc1", "torch", "2.6.0rc1"),
        ("mlx@0.031.01", "mlx", "0.31.1"),  # PEP 440 normalises leading zeros
    ],
)
def test_exact_pins_parse(text: str, framework: str, version: str) -> None:
    assert parse_pin(text) == FrameworkPin(framework, version)
    assert str(parse_pin(text)) == f"{framework}@{version}"


@pytest.mark.parametrize(
    "text", ["mlx@>=0.31", "mlx@0.31.*", "mlx@0.30..0.31", "mlx@~=0.31", "mlx@<1,>0.2"]
)
def test_ranges_are_refused_with_the_way_out(text: str) -> None:
    with pytest.raises(EnvError) as e:
        parse_pin(text)
    assert e.value.kind == "bad-spec"
    assert "version range" in str(e.value) and "mlx@0.31.1" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("mlx", "no '@VERSION'"),
        ("mlx@", "empty"),
        ("jax@0.4.30", "unknown framework 'jax'"),
        ("mlx@banana", "'banana' is not a version number"),
        ("torch@2.5.1+cpu", "drop the local part '+cpu'"),
        ("", "no '@VERSION'"),
    ],
)
def test_garbage_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(EnvError) as e:
        parse_pin(text)
    assert e.value.kind == "bad-spec"
    assert says in str(e.value)
    assert "FRAMEWORK@VERSION" in e.value.fix


@pytest.mark.parametrize(
    ("framework", "device", "target", "variant"),
    [
        ("mlx", "cpu", LINUX, "cpu"),
        ("mlx", "cuda", LINUX, "cuda"),
        ("mlx", "gpu", LINUX, "cuda"),
        ("mlx", "cuda:1", LINUX, "cuda"),
        ("torch", "cpu", LINUX, "cpu"),
        ("torch", "cuda", LINUX, "cuda"),
        ("mlx", "metal", MAC, "default"),
        ("mlx", "cpu", MAC, "default"),
        ("torch", "mps", MAC, "default"),
    ],
)
def test_variant_follows_the_device(framework, device, target, variant) -> None:
    assert choose_variant(framework, device, target) == variant


def test_auto_device_on_linux_follows_the_nvidia_driver() -> None:
    want = "cuda" if nvidia_present() else "cpu"
    assert choose_variant("mlx", None, LINUX) == want
    assert choose_variant("torch", None, LINUX) == want


def test_mlx_plans_name_the_backend_extra() -> None:
    pin = FrameworkPin("mlx", "0.31.1")
    assert install_plan(pin, "cpu").requirements[0] == "mlx[cpu]==0.31.1"
    assert install_plan(pin, "cuda").requirements[0] == "mlx[cuda]==0.31.1"
    assert install_plan(pin, "default").requirements[0] == "mlx==0.31.1"
    for variant in ("cpu", "cuda", "default"):
        plan = install_plan(pin, variant)
        assert "msgspec>=0.18" in plan.requirements
        assert plan.extra_index_urls == ()


def test_cpu_torch_comes_from_the_cpu_index(monkeypatch: pytest.MonkeyPatch) -> None:
    pin = FrameworkPin("torch", "2.5.1")
    monkeypatch.delenv("GPUMON_TORCH_INDEX_URL", raising=False)
    assert install_plan(pin, "cpu").extra_index_urls == (TORCH_CPU_INDEX,)
    assert install_plan(pin, "cpu").requirements[0] == "torch==2.5.1"
    assert install_plan(pin, "cuda").extra_index_urls == ()
    assert install_plan(pin, "default").extra_index_urls == ()
    monkeypatch.setenv("GPUMON_TORCH_INDEX_URL", "https://mirror.example/torch-cpu")
    assert install_plan(pin, "cpu").extra_index_urls == ("https://mirror.example/torch-cpu",)


def test_each_identity_part_changes_the_folder_name() -> None:
    base = EnvKey("mlx", "0.31.1", "cpu", "py3.11", "linux-x86_64")
    assert base.name == "mlx-0.31.1-cpu-py3.11-linux-x86_64"
    others = [
        dataclasses.replace(base, version="0.31.2"),
        dataclasses.replace(base, variant="cuda"),
        dataclasses.replace(base, python="py3.13t"),
        dataclasses.replace(base, platform="linux-aarch64"),
        dataclasses.replace(base, framework="torch"),
    ]
    assert len({k.name for k in [base, *others]}) == 6


def test_python_keys_and_descriptions() -> None:
    assert LINUX.key == "py3.12" and LINUX.platform_key == "linux-x86_64"
    assert LINUX.describe() == "Linux x86_64 / CPython 3.12"
    free = dataclasses.replace(LINUX, version=(3, 13, 1), freethreaded=True)
    assert free.key == "py3.13t" and "free-threaded" in free.describe()
    assert MAC.platform_key == "macos-arm64" and MAC.describe().startswith("macOS arm64")
    here = monitor_python()
    assert here.key.endswith(
        f"{here.version[0]}.{here.version[1]}" + ("t" if here.freethreaded else "")
    )
