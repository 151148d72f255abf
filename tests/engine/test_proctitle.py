"""Worker processes named after their pool in ps, top and native crash reports (real workers)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gpumon import events as ev
from gpumon.worker.proctitle import comm_name, title
from tests.conftest import wait_for
from tests.engine.helpers import Session

needs_gdb = pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed")
needs_ps = pytest.mark.skipif(shutil.which("ps") is None, reason="no ps")
pytestmark = pytest.mark.timeout(240)


def ps(pid: int) -> tuple[str, str]:
    out = subprocess.run(
        ["ps", "-ww", "-o", "comm=,args=", "-p", str(pid)], capture_output=True, text=True
    ).stdout
    comm, _, args = out.strip().partition(" ")
    return comm, args.strip()


def thread_names(pid: int) -> set[str]:
    return {p.read_text().strip() for p in Path(f"/proc/{pid}/task").glob("*/comm")}


def test_names_fit_the_kernels_15_bytes_and_say_what_runs() -> None:
    assert comm_name("mlx") == "gm-mlx"
    assert comm_name("mlx@0.31.1:cpu") == "gm-mlx@0.31.1:c"  # Linux keeps 15 bytes
    assert title("mlx@0.31.1", "mlx", "0.31.1", "cpu") == "gpumon: mlx@0.31.1 cpu"
    assert title("dies", "fault", "", "cpu") == "gpumon: fault cpu (dies)"


@needs_ps
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
async def test_two_pools_on_one_machine_can_be_told_apart_in_ps(artifacts) -> None:
    specs = ["torch:cpu,size=64,native=off", "fault,name=synth,fault-at-threads=99,native=gdb"]
    async with Session(specs, artifacts) as s:
        await wait_for(lambda: all(s.samples(p) for p in ("torch:cpu", "synth")), 120)
        ready = {r.pool: r for r in s.of(ev.PoolReady)}
        torch_pid, synth_pid = ready["torch:cpu"].pid, ready["synth"].pid
        version = ready["torch:cpu"].versions["torch"]
        assert ps(torch_pid) == ("gm-torch:cpu", f"gpumon: torch@{version} cpu")
        assert ps(synth_pid) == ("gm-synth", "gpumon: fault cpu (synth)")  # under gdb, too
        # every thread still has its own name; the sampler no longer renames the process
        assert {"gm-torch:cpu", "torch_worker-0", "gpumon_sampler", "gpumon_control"} <= (
            thread_names(torch_pid)
        )
        assert {"gm-synth", "fault_worker-0", "gpumon_sampler"} <= thread_names(synth_pid)


@needs_gdb
async def test_the_native_report_names_the_pool_that_died(artifacts) -> None:
    s = Session(["fault,name=dies,native=gdb,threads=2,fault-rate=50"], artifacts)
    async with s:
        await wait_for(lambda: any(a.kind == "native" for a in s.of(ev.CrashArtifact)), 60)
    native = next(a for a in s.of(ev.CrashArtifact) if a.kind == "native").report
    assert native is not None
    assert native.process_name is not None
    assert native.process_name.startswith("gpumon: fault cpu (dies) ("), native.process_name
    names = {t.name for t in native.threads}
    assert {"gm-dies", "gpumon_sampler", "fault_worker-0", "fault_worker-1"} <= names


@needs_ps
async def test_a_worker_without_setproctitle_is_still_named(artifacts, mlx_env) -> None:
    # An isolated framework env holds only the framework and msgspec: no setproctitle there.
    python = mlx_env("0.31.1")
    has = subprocess.run([str(python), "-c", "import setproctitle"], capture_output=True)
    if has.returncode == 0:
        pytest.skip("this env has setproctitle")
    spec = "mlx@0.31.1:cpu,size=64,native=off"
    async with Session([spec], artifacts) as s:
        await wait_for(lambda: s.samples("mlx@0.31.1:cpu") or s.of(ev.PoolFailed), 120)
        assert not s.of(ev.PoolFailed), s.of(ev.PoolFailed)
        comm, args = ps(s.of(ev.PoolReady)[0].pid)
    assert comm == "gm-mlx@0.31.1:c"
    assert "-m gpumon.worker --pool-label mlx@0.31.1:cpu " in args
