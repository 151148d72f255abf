"""The environment cache: find one fast, build it once, list, remove and prune.

`find` is what a pool start pays for a cached environment: read one small JSON file, stat
the interpreter, touch `.last-used`; no lock, no child process. `ensure` adds the lock only on
a miss: the second of two processes (or pools) that miss together waits for the first and
reuses its result. Removal renames the folder away under the env's lock before deleting it,
so `find` never sees a half-deleted environment either.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import stat
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gpumon.envs import layout, metadata
from gpumon.envs.build import EnvRequest, build, os_error
from gpumon.envs.errors import EnvCancelled, EnvError
from gpumon.envs.interpreter import resolve_python
from gpumon.envs.lock import env_lock
from gpumon.envs.progress import BuildProgress, ProgressCallback
from gpumon.envs.requirement import FrameworkPin, parse_pin
from gpumon.envs.tools import choose_tool, find_uv
from gpumon.envs.variant import VARIANTS, Variant, choose_variant


@dataclass(frozen=True)
class Env:
    """A complete environment, ready for `python -m gpumon.worker`."""

    path: Path
    key: layout.EnvKey
    meta: metadata.EnvMetadata
    built: bool = False  # True when this call built it (a cache miss)

    @property
    def python(self) -> Path:
        return layout.python_path(self.path)


def request_for(
    spec: str | FrameworkPin,
    *,
    device: str | None = None,
    variant: Variant | None = None,
    python: str | None = None,
) -> EnvRequest:
    """`mlx@0.31.1` for a pool on `device` (None: auto) under `python` (None: the monitor's
    Python version; a path or `3.12`). An explicit `variant` overrides the device's."""
    pin = parse_pin(spec) if isinstance(spec, str) else spec
    target = resolve_python(python, uv=find_uv() if python else None)
    if variant is not None and variant not in VARIANTS:
        raise EnvError(
            f"unknown build variant {variant!r}",
            f"use one of: {', '.join(VARIANTS)}",
            kind="bad-spec",
        )
    chosen = variant or choose_variant(pin.framework, device, target)
    return EnvRequest(pin=pin, variant=chosen, target=target)


def _complete(folder: Path, key: layout.EnvKey) -> metadata.EnvMetadata | None:
    meta = metadata.read(folder)
    if meta is None or (meta.framework, meta.version, meta.variant) != (
        key.framework,
        key.version,
        key.variant,
    ):
        return None
    # exists() follows the venv's link to its base interpreter: an env whose Python was
    # uninstalled is not usable, and is rebuilt by the next ensure.
    if not layout.python_path(folder).exists():
        return None
    return meta


def find(req: EnvRequest, root: Path | None = None) -> Env | None:
    """The cached environment for `req`, or None. Marks it used."""
    root = layout.env_root(root)
    folder = layout.env_dir(root, req.key)
    meta = _complete(folder, req.key)
    if meta is None:
        return None
    with contextlib.suppress(OSError):  # a read-only shared cache is still usable
        os.utime(layout.last_used_path(folder))
    return Env(folder, req.key, meta)


def ensure(
    req: EnvRequest,
    *,
    root: Path | None = None,
    tool: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> Env:
    """Find `req`'s environment or build it. Blocking: run it in a thread. `cancel` (or a
    KeyboardInterrupt) stops a build and leaves nothing that looks complete. `tool`: auto
    (default), uv or pip. Raises EnvError with the one-line cause and fix."""
    root = layout.env_root(root)
    found = find(req, root)
    if found is not None:
        return found
    started = time.monotonic()
    chosen = choose_tool(tool, req.target.executable)

    def waiting(holder: str) -> None:
        if progress is not None:
            who = f"process {holder}" if holder else "another process"
            progress(
                BuildProgress(
                    env=req.key.label,
                    phase="waiting",
                    fraction=None,
                    elapsed_s=time.monotonic() - started,
                    message=f"{who} is building this environment",
                )
            )

    try:
        root.mkdir(parents=True, exist_ok=True)
        with env_lock(layout.lock_path(root, req.key.name), cancel=cancel, on_wait=waiting):
            found = find(req, root)
            if found is not None:
                return found
            # Holding the lock, every temporary folder of this env is a dead build's.
            for stale in layout.leftovers(root, req.key.name):
                shutil.rmtree(stale, ignore_errors=True)
            final = layout.env_dir(root, req.key)
            if final.exists() or final.is_symlink():
                _discard(final, root, req.key.name)
            meta = build(req, root, chosen, progress=progress, cancel=cancel)
    except InterruptedError:
        raise EnvCancelled(req.key.label) from None
    except OSError as e:
        raise os_error(e, req, root) from None
    return Env(layout.env_dir(root, req.key), req.key, meta, built=True)


def _discard(folder: Path, root: Path, name: str) -> None:
    """Rename out of sight first, then delete: never a half-deleted env under its name."""
    trash = layout.trash_dir(root, name, secrets.token_hex(4))
    os.rename(folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


@dataclass(frozen=True)
class CachedEnv:
    """One folder of the cache as `gpumon envs` lists it."""

    path: Path
    meta: metadata.EnvMetadata | None  # None: incomplete (no metadata)
    size_bytes: int
    last_used: float  # epoch seconds

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def complete(self) -> bool:
        return self.meta is not None and layout.python_path(self.path).exists()


def disk_usage(path: Path) -> int:
    """Bytes allocated under `path`, each inode once (uv hard-links files from its cache, so
    this is what the env holds, not what removing it frees)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    stack = [path]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                stack.append(Path(entry.path))
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += getattr(st, "st_blocks", 0) * 512 or st.st_size
    return total


def _last_used(folder: Path) -> float:
    for p in (layout.last_used_path(folder), layout.metadata_path(folder), folder):
        with contextlib.suppress(OSError):
            return p.stat().st_mtime
    return 0.0


def list_envs(root: Path | None = None, *, sizes: bool = True) -> list[CachedEnv]:
    """Every environment folder under the root (complete or not), sorted by name; folders
    that are neither named like an environment nor carry its metadata are skipped."""
    root = layout.env_root(root)
    try:
        folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    except FileNotFoundError:
        return []
    except OSError as e:
        raise EnvError(
            f"cannot read the environment cache {root} ({e.strerror})",
            "check GPUMON_ENV_DIR",
            kind="not-writable",
        ) from None
    out = []
    for p in folders:
        meta = metadata.read(p)
        if meta is None and not layout.looks_like_env(p.name):
            continue  # not one of ours: never listed, never pruned
        out.append(
            CachedEnv(
                path=p,
                meta=meta,
                size_bytes=disk_usage(p) if sizes else 0,
                last_used=_last_used(p),
            )
        )
    return out


def matching(spec: str, root: Path | None = None) -> list[CachedEnv]:
    """Envs named by `spec`: `mlx@0.31.1` (every variant and Python of it), a folder name, or
    a folder's path. EnvError(bad-spec) for a malformed pin, (not-found) when none match."""
    root = layout.env_root(root)
    envs = list_envs(root, sizes=True)
    if "@" in spec or "==" in spec:
        pin = parse_pin(spec)
        chosen = [e for e in envs if _is_pin(e, pin)]
    else:
        target = Path(spec).expanduser()
        name = target.name if os.sep in spec else spec
        if os.sep in spec and target.resolve().parent != root.resolve():
            raise EnvError(
                f"{spec} is not an environment folder in {root}",
                "give FRAMEWORK@VERSION or a folder name that gpumon envs lists",
                kind="not-found",
            )
        chosen = [e for e in envs if e.name == name]
    if not chosen:
        raise EnvError(
            f"no cached environment matches {spec!r} in {root}",
            "gpumon envs lists the cached ones",
            kind="not-found",
        )
    return chosen


def _is_pin(env: CachedEnv, pin: FrameworkPin) -> bool:
    if env.meta is not None:
        return (env.meta.framework, env.meta.version) == (pin.framework, pin.version)
    return env.name.startswith(f"{pin.framework}-{pin.version}-")


def remove_env(env: CachedEnv, root: Path | None = None) -> None:
    """Delete one environment unless someone is building it right now (EnvError busy)."""
    root = layout.env_root(root)
    with env_lock(layout.lock_path(root, env.name), blocking=False) as held:
        if not held:
            raise EnvError(
                f"{env.name} is being built right now",
                "remove it when that build has finished",
                kind="busy",
            )
        try:
            if env.path.exists():
                _discard(env.path, root, env.name)
        except OSError as e:
            raise EnvError(
                f"cannot remove {env.path} ({e.strerror})",
                "check the permissions of the environment cache",
                kind="not-writable",
            ) from None


def remove(spec: str, root: Path | None = None) -> list[CachedEnv]:
    """Remove every environment `spec` names (see `matching`); returns what was removed."""
    chosen = matching(spec, root)
    for env in chosen:
        remove_env(env, root)
    return chosen


@dataclass(frozen=True)
class PruneResult:
    removed: list[CachedEnv]
    skipped: list[str]  # busy: being built right now
    leftovers: int  # temporary folders of dead builds and removals that were deleted


def prune(
    root: Path | None = None,
    *,
    days: float = 30.0,
    everything: bool = False,
    now: float | None = None,
) -> PruneResult:
    """Remove environments unused for `days` (or all), incomplete folders, and what killed
    builds left behind. Environments being built are skipped."""
    root = layout.env_root(root)
    now = time.time() if now is None else now
    cutoff = now - days * 86400
    removed: list[CachedEnv] = []
    skipped: list[str] = []
    for env in list_envs(root):
        if everything or not env.complete or env.last_used < cutoff:
            try:
                remove_env(env, root)
                removed.append(env)
            except EnvError as e:
                if e.kind != "busy":
                    raise
                skipped.append(env.name)
    cleaned = 0
    for stale in layout.leftovers(root):
        with env_lock(
            layout.lock_path(root, layout.leftover_env_name(stale)), blocking=False
        ) as held:
            if held:
                shutil.rmtree(stale, ignore_errors=True)
                cleaned += 1
    return PruneResult(removed, skipped, cleaned)
