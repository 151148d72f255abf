"""What framework environments cost: cold builds, cache hits, disk, and interpreter start-up.

    python benchmarks/envs.py [--pin mlx@0.31.1] [--runs 7] [--cold 3] [--json]

Measured in one run, on this machine, with the real installers and the real package index:
- cold creation of the env (no gpumon env yet) with uv, once with uv's wheel cache as the
  machine has it and once with an empty uv cache (everything downloaded), and with the
  venv + pip fallback (pip's cache as it is, and with --no-cache-dir);
- a cache hit: `find` / `ensure` in-process (median of many calls), and in a fresh process
  (import gpumon.envs + request_for + find, minus a bare interpreter start), which is what
  a pool start pays;
- disk use per env (allocated blocks, each inode once) and how much of it is hard-linked with
  uv's cache;
- start-up of `python -c "import mlx.core"` under the env's interpreter versus the default
  interpreter (median of --runs, alternating so neither side gets a warmer page cache).
Not a test: nothing is asserted. Target (BRIEF): a cached environment adds <= 1 s to a pool start.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gpumon.envs import ensure, find, request_for  # noqa: E402
from gpumon.envs.cache import disk_usage  # noqa: E402
from gpumon.envs.tools import find_uv, tool_version  # noqa: E402


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _timed(cmd: list[str], env: dict[str, str] | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    took = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed: {r.stderr.strip().splitlines()[-1:]}")
    return took


def cold_builds(pin: str, repeat: int, tmp: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    req = request_for(pin, device="cpu")

    def build(label: str, tool: str, env_vars: dict[str, str]) -> None:
        saved = {k: os.environ.get(k) for k in env_vars}
        os.environ.update(env_vars)
        try:
            root = Path(tempfile.mkdtemp(dir=tmp))
            t0 = time.perf_counter()
            env = ensure(req, root=root, tool=tool)
            out.setdefault(label, []).append(time.perf_counter() - t0)
            assert env.built
            shutil.rmtree(root)
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    if find_uv():
        for _ in range(repeat):
            build("uv (uv's wheel cache as it is)", "uv", {})
        empty = tempfile.mkdtemp(dir=tmp)
        build("uv (empty uv cache: downloads)", "uv", {"UV_CACHE_DIR": empty})
        shutil.rmtree(empty, ignore_errors=True)
    build("venv + pip (pip's cache as it is)", "pip", {})
    build("venv + pip (--no-cache-dir)", "pip", {"PIP_NO_CACHE_DIR": "1"})
    return out


def cache_hits(pin: str, root: Path, calls: int = 2000) -> dict[str, float]:
    req = request_for(pin, device="cpu")
    ensure(req, root=root)
    samples = {"find": [], "ensure": [], "request_for + find": []}
    for _ in range(calls):
        t0 = time.perf_counter()
        find(req, root=root)
        t1 = time.perf_counter()
        ensure(req, root=root)
        t2 = time.perf_counter()
        find(request_for(pin, device="cpu"), root=root)
        t3 = time.perf_counter()
        samples["find"].append(t1 - t0)
        samples["ensure"].append(t2 - t1)
        samples["request_for + find"].append(t3 - t2)
    return {k: statistics.median(v) for k, v in samples.items()}


def fresh_process_hit(pin: str, root: Path, runs: int) -> float:
    """Median extra seconds of a new process that imports gpumon.envs and finds the env."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from pathlib import Path\n"
        "from gpumon.envs import find, request_for\n"
        "assert find(request_for(sys.argv[2], device='cpu'), root=Path(sys.argv[3]))\n"
    )
    lookup, bare = [], []
    for _ in range(runs):
        lookup.append(_timed([sys.executable, "-c", code, str(ROOT), pin, str(root)]))
        bare.append(_timed([sys.executable, "-c", "pass"]))
    return statistics.median(lookup) - statistics.median(bare)


def startup(env_python: str, runs: int) -> dict[str, float | None]:
    default_has_mlx = (
        subprocess.run(
            [sys.executable, "-I", "-c", "import mlx.core"], capture_output=True, timeout=120
        ).returncode
        == 0
    )
    samples: dict[str, list[float]] = {
        "env: python -c pass": [],
        "default: python -c pass": [],
        "env: import mlx.core": [],
        "default: import mlx.core": [],
    }
    for i in range(runs):
        order = [("env", env_python), ("default", sys.executable)]
        if i % 2:
            order.reverse()
        for name, exe in order:
            samples[f"{name}: python -c pass"].append(_timed([exe, "-I", "-c", "pass"]))
            if name == "env" or default_has_mlx:
                samples[f"{name}: import mlx.core"].append(
                    _timed([exe, "-I", "-c", "import mlx.core"])
                )
    return {k: (statistics.median(v) if v else None) for k, v in samples.items()}


def hardlinked_bytes(folder: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(folder):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            if st.st_nlink > 1:
                total += st.st_blocks * 512
    return total


def _versions(env_python: str) -> dict[str, str]:
    r = subprocess.run(
        [env_python, "-I", "-c", "import mlx.core as mx; print(mx.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    d = subprocess.run(
        [sys.executable, "-I", "-c", "import mlx.core as mx; print(mx.__version__)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    uv = find_uv()
    return {
        "python": platform.python_version(),
        "uv": tool_version(uv) if uv else "absent",
        "mlx (env)": r.stdout.strip(),
        "mlx (default interpreter)": d.stdout.strip() or "not installed",
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pin", default="mlx@0.31.1")
    ap.add_argument("--runs", type=int, default=7, help="start-up samples per interpreter")
    ap.add_argument("--cold", type=int, default=3, help="cold uv builds to time")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="gpumon-bench-envs-") as t:
        tmp = Path(t)
        cold = cold_builds(args.pin, args.cold, tmp)
        root = tmp / "warm"
        hits = cache_hits(args.pin, root)
        fresh = fresh_process_hit(args.pin, root, args.runs)
        env = find(request_for(args.pin, device="cpu"), root=root)
        assert env is not None
        size = disk_usage(env.path)
        linked = hardlinked_bytes(env.path)
        starts = startup(str(env.python), args.runs)
        versions = _versions(str(env.python))

    result = {
        "date": dt.date.today().isoformat(),
        "machine": f"{platform.system()} {platform.machine()}, {_cpu_model()}, "
        f"{os.cpu_count()} cores",
        "pin": args.pin,
        "env": env.key.name,
        "versions": versions,
        "cold_build_s": {k: statistics.median(v) for k, v in cold.items()},
        "cold_build_runs": {k: len(v) for k, v in cold.items()},
        "cache_hit_s": hits,
        "fresh_process_lookup_s": fresh,
        "disk_bytes": size,
        "disk_hardlinked_bytes": linked,
        "startup_s": starts,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"gpumon framework environments — {result['date']} — {result['machine']}")
    print(", ".join(f"{k} {v}" for k, v in versions.items() if v))
    print(f"env: {result['env']}\n")
    print(f"{'what':<52} {'value':>12}")
    for k, v in result["cold_build_s"].items():
        n = result["cold_build_runs"][k]
        print(f"{'cold build, ' + k:<52} {v:>10.2f} s" + (f"  (median of {n})" if n > 1 else ""))
    for k, v in hits.items():
        print(f"{'cache hit in-process, ' + k:<52} {v * 1e6:>9.0f} µs")
    print(f"{'cache hit in a new process (import + lookup)':<52} {fresh * 1e3:>9.0f} ms")
    print(f"{'disk per env (allocated, each inode once)':<52} {size / 2**20:>8.1f} MiB")
    print(f"{'  of which hard-linked with uv cache':<52} {linked / 2**20:>8.1f} MiB")
    for k, v in starts.items():
        shown = f"{v * 1e3:>9.0f} ms" if v is not None else "        n/a"
        print(f"{'start-up, ' + k:<52} {shown}")
    e, d = starts["env: import mlx.core"], starts["default: import mlx.core"]
    if e is not None and d is not None:
        print(
            f"{'extra start-up of the env vs default (import mlx)':<52} {(e - d) * 1e3:>+9.0f} ms"
        )
    print(
        f"\nmedians of {args.runs} runs for start-up; the default interpreter's mlx is "
        f"{versions['mlx (default interpreter)']}, the env's {versions['mlx (env)']}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
