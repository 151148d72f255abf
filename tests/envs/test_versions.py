"""Released versions from the real index, in order, with wheel availability for this machine."""

from __future__ import annotations

import dataclasses

import pytest
from packaging.tags import Tag
from packaging.version import Version

from gpumon.envs import EnvError, request_for
from gpumon.envs.interpreter import monitor_python
from gpumon.envs.simple_api import project_files
from gpumon.envs.versions import parse_range, releases, target_tags


def test_the_mlx_range_for_bisect(index: str) -> None:
    req = request_for("mlx@0.31.1", device="cpu")
    low, high = parse_range("0.30.6..0.32.4")
    found = releases("mlx", low=low, high=high, variant=req.variant, index_url=index)
    versions = [Version(r.version) for r in found]
    assert versions == sorted(versions) and len(set(versions)) == len(versions)
    assert {"0.31.1", "0.31.2"} <= {r.version for r in found}
    assert all(Version("0.30.6") <= v <= Version("0.32.4") for v in versions)
    assert not any(v.is_prerelease or v.is_devrelease for v in versions)
    status = {r.version: r for r in found}
    # The conftest's shared env proves 0.31.1 installs wherever these tests build it.
    assert status["0.31.1"].installable == (status["0.31.1"].reason == "")


def test_open_ranges(index: str) -> None:
    everything = releases("mlx", index_url=index)
    newer = releases("mlx", low="0.31.2", index_url=index)
    older = releases("mlx", high="0.31.1", index_url=index)
    assert [r.version for r in older] + [r.version for r in newer] == [
        r.version for r in everything
    ]


def test_installability_matches_the_wheels(index: str) -> None:
    """Cross-check with the index's file list: a release marked installable has a wheel
    whose tags this interpreter accepts."""
    req = request_for("mlx@0.31.1", device="cpu")
    files = project_files(index, "mlx") or []
    accepted = target_tags(req.target)
    from packaging.utils import parse_wheel_filename

    for r in releases("mlx", low="0.20", high="0.32.4", variant=req.variant, index_url=index):
        tags = set()
        for f in files:
            if f.filename.endswith(".whl"):
                _, v, _, t = parse_wheel_filename(f.filename)
                if Version(v.public) == Version(r.version):
                    tags |= t
        if r.installable:
            assert tags & accepted, r
        elif r.reason.startswith("no wheel"):
            assert not tags & accepted, r


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.30.6..0.32.4", ("0.30.6", "0.32.4")),
        ("0.31..", ("0.31", None)),
        ("..0.32", (None, "0.32")),
    ],
)
def test_parse_range(text: str, expected) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["0.30.6", "..", "a..b", "0.32..0.31"])
def test_bad_ranges(text: str) -> None:
    with pytest.raises(EnvError) as e:
        parse_range(text)
    assert e.value.kind == "bad-spec" and "\n" not in str(e.value)


def test_an_unreachable_index_is_one_clear_error(dead_index: str) -> None:
    with pytest.raises(EnvError) as e:
        releases("mlx", index_url=dead_index, timeout=5)
    assert e.value.kind == "unreachable"
    assert dead_index.split("/")[2] in e.value.message and "python=PATH" in e.value.fix


def test_unknown_framework_and_project(index: str) -> None:
    with pytest.raises(EnvError) as e:
        releases("jax", index_url=index)
    assert e.value.kind == "bad-spec"
    assert project_files(index, "gpumon-no-such-project-8c1f0d") is None


def test_tags_for_another_python() -> None:
    here = monitor_python()
    other = dataclasses.replace(here, version=(3, 12, 0), freethreaded=False)
    tags = target_tags(other)
    assert any(t.interpreter == "cp312" and t.abi == "cp312" for t in tags)
    assert Tag("py3", "none", "any") in tags
    assert not any(t.interpreter == "cp313" for t in tags)
