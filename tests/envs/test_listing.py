"""Listing, removing and pruning real environments (two mlx releases in one fresh cache)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gpumon.envs import EnvError, ensure, find, layout, list_envs, prune, remove, request_for
from gpumon.envs.cache import Env
from gpumon.envs.lock import env_lock

PINS = ("mlx@0.31.1", "mlx@0.31.2")


@pytest.fixture
def two_envs(index: str, mlx_request, fresh_root: Path) -> dict[str, Env]:
    return {pin: ensure(request_for(pin, device="cpu"), root=fresh_root) for pin in PINS}


def test_listing_shows_what_each_env_holds(two_envs: dict[str, Env], fresh_root: Path) -> None:
    listed = list_envs(fresh_root)
    assert [e.name for e in listed] == sorted(env.path.name for env in two_envs.values())
    for entry in listed:
        assert entry.complete and entry.meta is not None
        assert entry.meta.framework == "mlx" and entry.meta.version in ("0.31.1", "0.31.2")
        assert entry.size_bytes > 1_000_000  # mlx's libraries are megabytes
        assert abs(entry.last_used - time.time()) < 600


def test_an_incomplete_folder_is_listed_as_such(two_envs, fresh_root: Path) -> None:
    (fresh_root / "mlx-9.9.9-cpu-py3.11-linux-x86_64").mkdir()
    listed = {e.name: e for e in list_envs(fresh_root)}
    assert not listed["mlx-9.9.9-cpu-py3.11-linux-x86_64"].complete
    assert sum(e.complete for e in listed.values()) == 2


def test_folders_that_are_not_ours_are_left_alone(two_envs, fresh_root: Path) -> None:
    # GPUMON_ENV_DIR may point at a folder that holds other things too.
    for name in ("my-venv", "mlx-0.31.1", "notes"):
        (fresh_root / name).mkdir()
    assert len(list_envs(fresh_root)) == 2
    result = prune(fresh_root, everything=True)
    assert len(result.removed) == 2
    assert sorted(p.name for p in fresh_root.iterdir() if not p.name.startswith(".")) == [
        "mlx-0.31.1",
        "my-venv",
        "notes",
    ]


def test_remove_by_pin_takes_only_that_version(two_envs, fresh_root: Path) -> None:
    removed = remove("mlx@0.31.2", fresh_root)
    assert [e.meta.version for e in removed if e.meta] == ["0.31.2"]
    assert find(request_for("mlx@0.31.2", device="cpu"), root=fresh_root) is None
    assert find(request_for("mlx@0.31.1", device="cpu"), root=fresh_root) is not None
    assert not two_envs["mlx@0.31.2"].path.exists()
    assert layout.leftovers(fresh_root) == []


def test_remove_by_folder_name_and_by_path(two_envs, fresh_root: Path) -> None:
    a, b = (two_envs[p].path for p in PINS)
    assert [e.name for e in remove(a.name, fresh_root)] == [a.name]
    assert [e.name for e in remove(str(b), fresh_root)] == [b.name]
    assert list_envs(fresh_root) == []


def test_remove_refuses_what_is_not_there(two_envs, fresh_root: Path, tmp_path: Path) -> None:
    with pytest.raises(EnvError) as e:
        remove("mlx@0.30.0", fresh_root)
    assert e.value.kind == "not-found" and "gpumon envs" in e.value.fix
    with pytest.raises(EnvError) as e:
        remove(str(tmp_path), fresh_root)  # a real folder, but not an env of this cache
    assert e.value.kind == "not-found"
    with pytest.raises(EnvError) as e:
        remove("mlx@>0.3", fresh_root)
    assert e.value.kind == "bad-spec"
    assert len(list_envs(fresh_root)) == 2


def test_remove_does_not_pull_an_env_from_under_a_build(two_envs, fresh_root: Path) -> None:
    env = two_envs["mlx@0.31.1"]
    with env_lock(layout.lock_path(fresh_root, env.path.name)), pytest.raises(EnvError) as e:
        remove("mlx@0.31.1", fresh_root)
    assert e.value.kind == "busy"
    assert env.path.exists()


def test_prune_by_age_keeps_recent_ones(two_envs, fresh_root: Path) -> None:
    old = two_envs["mlx@0.31.1"].path
    month_ago = time.time() - 40 * 86400
    os.utime(layout.last_used_path(old), (month_ago, month_ago))
    (fresh_root / "mlx-9.9.9-cpu-py3.11-linux-x86_64").mkdir()  # incomplete: always pruned
    leftover = layout.build_dir(fresh_root, "mlx-0.31.0-cpu-py3.11-linux-x86_64", "deadbeef")
    leftover.mkdir()
    result = prune(fresh_root, days=30)
    assert sorted(e.name for e in result.removed) == sorted(
        [old.name, "mlx-9.9.9-cpu-py3.11-linux-x86_64"]
    )
    assert result.leftovers == 1 and not leftover.exists()
    assert [e.name for e in list_envs(fresh_root)] == [two_envs["mlx@0.31.2"].path.name]


def test_prune_everything(two_envs, fresh_root: Path) -> None:
    result = prune(fresh_root, everything=True)
    assert len(result.removed) == 2 and list_envs(fresh_root) == []


def test_prune_skips_an_env_being_built(two_envs, fresh_root: Path) -> None:
    busy = two_envs["mlx@0.31.2"].path
    with env_lock(layout.lock_path(fresh_root, busy.name)):
        result = prune(fresh_root, everything=True)
    assert result.skipped == [busy.name] and busy.exists()
