"""Released versions of a framework, in order, and whether each installs here.

For `gpumon bisect --versions 0.30.6..0.32.4`: the final releases (no pre-releases, nothing
yanked) in the range, oldest first, each marked installable or not for this platform and
Python. "Installable" means what `ensure` will need: a wheel of the framework whose tags this
interpreter accepts, and, for MLX's Linux builds, a wheel of the backend package of the same
release (`mlx[cpu]==V` pulls `mlx-cpu==V`). Read from the simple API of the index the installer
would use (PyTorch's CPU index for CPU torch on Linux).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gpumon.envs.errors import EnvError
from gpumon.envs.interpreter import PythonTarget, monitor_python
from gpumon.envs.requirement import FRAMEWORKS, FrameworkPin
from gpumon.envs.simple_api import DistFile, project_files
from gpumon.envs.variant import (
    MLX_BACKEND_PACKAGES,
    Variant,
    choose_variant,
    install_plan,
)

if TYPE_CHECKING:
    from packaging.tags import Tag
    from packaging.version import Version


@dataclass(frozen=True)
class Release:
    version: str
    installable: bool
    reason: str = ""  # why it cannot be installed here; empty when it can


def parse_range(text: str) -> tuple[str | None, str | None]:
    """`0.30.6..0.32.4` (inclusive), `0.31..` or `..0.32`; EnvError(kind="bad-spec")."""
    from packaging.version import InvalidVersion, Version

    lo, sep, hi = text.strip().partition("..")
    bad = EnvError(
        f"{text!r} is not a version range",
        "write LOW..HIGH with released versions, e.g. 0.30.6..0.32.4 (either side may be empty)",
        kind="bad-spec",
    )
    if not sep or not (lo or hi):
        raise bad
    try:
        lo_v = str(Version(lo)) if lo else None
        hi_v = str(Version(hi)) if hi else None
    except InvalidVersion:
        raise bad from None
    if lo_v and hi_v and Version(lo_v) > Version(hi_v):
        raise EnvError(
            f"the range {text!r} runs backwards", f"write it as {hi}..{lo}", kind="bad-spec"
        )
    return lo_v, hi_v


def target_tags(target: PythonTarget) -> frozenset[Tag]:
    """The wheel tags `target` accepts (computed for another Python from this platform's)."""
    from packaging import tags

    here = monitor_python()
    if (target.version[:2], target.freethreaded, target.implementation) == (
        here.version[:2],
        here.freethreaded,
        here.implementation,
    ):
        return frozenset(tags.sys_tags())
    py = (target.version[0], target.version[1])
    nodot = f"{py[0]}{py[1]}"
    platforms = list(tags.platform_tags())
    abis = [f"cp{nodot}{'t' if target.freethreaded else ''}", "abi3", "none"]
    found = set(tags.cpython_tags(py, abis=abis, platforms=platforms))
    found.update(tags.compatible_tags(py, f"cp{nodot}", platforms))
    return frozenset(found)


def _version_of(filename: str) -> Version | None:
    from packaging.utils import (
        InvalidSdistFilename,
        InvalidWheelFilename,
        parse_sdist_filename,
        parse_wheel_filename,
    )

    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _fits(f: DistFile, accepted: frozenset[Tag], target: PythonTarget) -> bool:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename

    if not f.filename.endswith(".whl") or f.yanked:
        return False
    try:
        wheel_tags = parse_wheel_filename(f.filename)[3]
    except InvalidWheelFilename:
        return False
    if accepted.isdisjoint(wheel_tags):
        return False
    if f.requires_python:
        try:
            spec = SpecifierSet(f.requires_python)
        except InvalidSpecifier:
            return True
        return spec.contains(".".join(map(str, target.version)), prereleases=True)
    return True


def _by_public_version(files: Iterable[DistFile]) -> dict[Version, list[DistFile]]:
    from packaging.version import Version

    out: dict[Version, list[DistFile]] = {}
    for f in files:
        v = _version_of(f.filename)
        if v is not None:
            # torch's CPU index says 2.5.1+cpu; the release is 2.5.1.
            out.setdefault(Version(v.public), []).append(f)
    return out


def index_for(framework: str, variant: Variant) -> str:
    """The index the installer gets this framework from: the CPU torch index, else the
    configured one of the tool that will build."""
    from gpumon.envs.index import configured_index
    from gpumon.envs.tools import find_uv

    plan = install_plan(FrameworkPin(framework, "0"), variant)
    if plan.extra_index_urls:
        return plan.extra_index_urls[0]
    return configured_index("uv" if find_uv() else "pip").url


def releases(
    framework: str,
    *,
    low: str | None = None,
    high: str | None = None,
    variant: Variant | None = None,
    target: PythonTarget | None = None,
    include_pre: bool = False,
    index_url: str | None = None,
    timeout: float = 10.0,
) -> list[Release]:
    """Releases of `framework` in [low, high], oldest first, marked installable or not.

    Raises EnvError when the index cannot be reached or does not know the framework."""
    from packaging.version import Version

    if framework not in FRAMEWORKS:
        raise EnvError(
            f"unknown framework {framework!r}",
            f"use one of: {', '.join(FRAMEWORKS)}",
            kind="bad-spec",
        )
    target = target or monitor_python()
    variant = variant or choose_variant(framework, None, target)
    index = index_url or index_for(framework, variant)
    files = project_files(index, framework, timeout)
    if files is None:
        raise EnvError(
            f"the package index {index} has no project {framework!r}",
            "check UV_DEFAULT_INDEX / PIP_INDEX_URL, or run the pool under python=PATH",
            kind="no-version",
        )
    accepted = target_tags(target)
    lo = Version(low) if low else None
    hi = Version(high) if high else None
    companions = _companions(framework, variant, target, index, timeout)
    out = []
    for version, vfiles in sorted(_by_public_version(files).items()):
        if (version.is_prerelease or version.is_devrelease) and not include_pre:
            continue
        if (lo and version < lo) or (hi and version > hi):
            continue
        if all(f.yanked for f in vfiles):
            continue
        if not any(_fits(f, accepted, target) for f in vfiles):
            out.append(Release(str(version), False, f"no wheel for {target.describe()}"))
            continue
        missing = companions.missing(version, accepted, target)
        out.append(Release(str(version), not missing, missing))
    return out


@dataclass
class _Companions:
    """MLX's backend packages (mlx-cpu, mlx-cuda-12 ...) by name -> files by version."""

    files: dict[str, dict[Version, list[DistFile]]]

    def missing(self, version: Version, accepted: frozenset[Tag], target: PythonTarget) -> str:
        if not self.files:
            return ""
        # Before the first backend package existed the mlx wheel carried the backend itself.
        if not any(v <= version for per in self.files.values() for v in per):
            return ""
        for per in self.files.values():
            if any(_fits(f, accepted, target) for f in per.get(version, [])):
                return ""
        names = " / ".join(self.files)
        return f"{names} {version} has no wheel for {target.describe()}"


def _companions(
    framework: str, variant: Variant, target: PythonTarget, index: str, timeout: float
) -> _Companions:
    if framework != "mlx" or target.system != "linux":
        return _Companions({})
    found: dict[str, dict[Version, list[DistFile]]] = {}
    for name in MLX_BACKEND_PACKAGES.get(variant, ()):
        files = project_files(index, name, timeout)
        if files:
            found[name] = _by_public_version(files)
    return _Companions(found)


def release_status(
    pin: FrameworkPin,
    variant: Variant,
    target: PythonTarget,
    *,
    index_url: str | None = None,
    timeout: float = 5.0,
) -> Release | None:
    """One release's status, or None when the index has no such release."""
    got = releases(
        pin.framework,
        low=pin.version,
        high=pin.version,
        variant=variant,
        target=target,
        include_pre=True,
        index_url=index_url,
        timeout=timeout,
    )
    return got[0] if got else None


def nearest_installable(found: list[Release], pin: FrameworkPin) -> list[str]:
    """From `found` (oldest first): the installable final releases just below and just above
    `pin`, and the newest, for an error's fix."""
    from packaging.version import Version

    here = Version(pin.version)
    ok = [r for r in found if r.installable and not Version(r.version).is_prerelease]
    below = [r.version for r in ok if Version(r.version) < here][-1:]
    above = [r.version for r in ok if Version(r.version) > here][:1]
    newest = [ok[-1].version] if ok and ok[-1].version not in below + above else []
    return below + above + newest
