"""`--pool BACKEND[:DEVICE][,k=v...]`: the one pool grammar every command shares."""

from __future__ import annotations

import pytest

from gpumon.spec import PoolConfig, SpecError, parse_pool, parse_thread_list, unique_names


@pytest.mark.parametrize(
    "text, backend, device, name",
    [
        ("mlx", "mlx", None, "mlx"),
        ("mlx:cpu", "mlx", "cpu", "mlx:cpu"),
        ("MLX:GPU", "mlx", "gpu", "mlx:gpu"),
        ("torch", "torch", None, "torch"),
        ("torch:mps", "torch", "mps", "torch:mps"),
        ("torch:cuda:1", "torch", "cuda:1", "torch:cuda:1"),
        ("fault", "fault", None, "fault"),
        ("torch:cpu,name=left", "torch", "cpu", "left"),
        ("mlx@0.31.1", "mlx", None, "mlx@0.31.1"),
        ("mlx@0.31.1:cpu", "mlx", "cpu", "mlx@0.31.1:cpu"),
        ("mlx:cpu@0.31.1", "mlx", "cpu", "mlx@0.31.1:cpu"),
        ("torch@2.5.1:cuda:1", "torch", "cuda:1", "torch@2.5.1:cuda:1"),
    ],
)
def test_backends_and_devices(text: str, backend: str, device: str | None, name: str) -> None:
    cfg = parse_pool(text)
    assert (cfg.backend, cfg.device, cfg.name) == (backend, device, name)


def test_keys_override_the_global_defaults() -> None:
    defaults = PoolConfig(name="", backend="fault", threads=4, policy="locked", size=256)
    cfg = parse_pool(
        "torch:cpu,threads=2,workload=mlp,dtype=bfloat16,sync-every=8,intra-op=1", defaults
    )
    assert (cfg.threads, cfg.workload, cfg.dtype, cfg.sync_every, cfg.intra_op) == (
        2,
        "mlp",
        "bfloat16",
        8,
        1,
    )
    assert (cfg.policy, cfg.size) == ("locked", 256)  # kept from the command line
    assert cfg.fault is None  # fault settings never leak into real backends


def test_fault_settings() -> None:
    cfg = parse_pool("fault,fault=abort,fault-at-threads=3,fault-rate=0.5")
    assert cfg.fault is not None
    assert (cfg.fault.kind, cfg.fault.at_threads, cfg.fault.rate) == ("abort", 3, 0.5)


@pytest.mark.parametrize(
    "text, needle",
    [
        ("cuda", "unknown backend"),
        ("torch:tpu", "no device 'tpu'"),
        ("mlx:cpu:0", "only allowed as cuda:N"),
        ("torch,threads=0", "out of range"),
        ("torch,threads=x", "not a whole number"),
        ("torch,size=4", "out of range"),
        ("torch,policy=yolo", "not one of"),
        ("torch,fault=segv", "synthetic 'fault' backend"),
        ("fault,fault-rate=-1", "positive number"),
        ("fault,fault-rate=nan", "positive number"),
        ("torch,colour=red", "unknown pool option"),
        ("torch,threads", "should be key=value"),
        ("mlx,intra-op=2", "torch setting"),
        ("torch,name=a b", "letters, digits"),
        ("mlx@latest", "not an exact release"),
        ("mlx@>=0.31", "not an exact release"),
        ("mlx:cpu@0.31.1:gpu", "names the device twice"),
        ("mlx@0.31.1,version=0.31.2", "names two versions"),
        ("fault@1.0", "the fault backend has none"),
        ("torch,sync-every=0", "sync-every=0 is out of range"),
        ("mlx,python=", "needs a path"),
    ],
)
def test_bad_specs_say_what_is_wrong(text: str, needle: str) -> None:
    with pytest.raises(SpecError, match=needle.replace("(", r"\(")):
        parse_pool(text)


def test_repeated_pools_get_distinct_names() -> None:
    names = [p.name for p in unique_names([parse_pool("torch:cpu")] * 3 + [parse_pool("mlx")])]
    assert names == ["torch:cpu", "torch:cpu#2", "torch:cpu#3", "mlx"]


@pytest.mark.parametrize(
    "text, out", [("1,2,4,8", [1, 2, 4, 8]), ("1-3", [1, 2, 3]), ("1, 4-5", [1, 4, 5])]
)
def test_thread_lists(text: str, out: list[int]) -> None:
    assert parse_thread_list(text) == out


@pytest.mark.parametrize("text", ["", "4-1", "a", "0", "1,,300"])
def test_bad_thread_lists(text: str) -> None:
    with pytest.raises(SpecError):
        parse_thread_list(text)


def test_versions_and_interpreters_are_pool_keys() -> None:
    cfg = parse_pool("mlx:cpu,version=0.31.1,python=/opt/venv/bin/python")
    assert (cfg.version, cfg.python, cfg.label) == (
        "0.31.1",
        "/opt/venv/bin/python",
        "mlx@0.31.1:cpu",
    )
    assert parse_pool("mlx@0.31.1").version == "0.31.1"


def test_one_validator_per_key_serves_every_entry_point() -> None:
    # The same sentence whether typed as a pool key or a global option (argparse type=).
    import argparse

    from gpumon.commands.options import key_type
    from gpumon.spec import parse_key

    with pytest.raises(SpecError) as pool_key:
        parse_pool("torch,sync-every=0")
    with pytest.raises(argparse.ArgumentTypeError) as option:
        key_type("sync-every")("0")
    with pytest.raises(SpecError) as direct:
        parse_key("sync_every", "0")
    assert str(pool_key.value) == str(option.value) == str(direct.value)
