#!/usr/bin/env bash
# The evidence path on an NVIDIA host, end to end: the GPU tests, real MLX CUDA crashes captured
# with cuda-gdb (hosts without plain gdb; GPUMON_GDB names the debugger), the locked policy's
# stops, and the reports made from them (md, issue, bundle). About 8 minutes:
#   OUT=results/ bash benchmarks/gpu_evidence.sh
# Needs gpumon importable, torch with CUDA and mlx[cuda]. Session folders come back as .tar.gz.
# MLX CUDA compiles some kernels at run time (generate's sampling among them) against the
# headers in the mlx-cuda wheel's mlx/include (CCCL): a copy without them makes every generate
# thread raise 'cannot open source file "cuda/std/tuple"' (seen 2026-12-02; that session is
# the h200-mlx-cuda-shared fixture). A pack that drops mlx/include needs it carried apart.
set -u
OUT=${OUT:-gpu-evidence}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() { echo "=== $* ($(date -u +%T))"; }
pack() { tar czf "$OUT/$1.tar.gz" -C "$2" . 2>/dev/null; }

step versions
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
$py -c 'import mlx.core as mx, torch; print("mlx", mx.__version__, "torch", torch.__version__)'
which gdb cuda-gdb
if [ -z "${GPUMON_GDB:-}" ] && ! command -v gdb > /dev/null; then
  export GPUMON_GDB=$(command -v cuda-gdb)
fi
$py -m gpumon doctor

if [ "${GPU_TESTS:-1}" = 1 ]; then  # GPU_TESTS=0 when they ran in a call of their own
  step tests/gpu
  timeout 330 $py -m pytest -v -p no:cacheprovider --timeout 150 --durations=0 tests/gpu 2>&1 | tail -25
fi

step "MLX CUDA, shared stream unlocked (mlx 0.32.4: new_thread_unsafe_stream): crashes, stacks by ${GPUMON_GDB:-gdb}"
timeout 240 $py -m gpumon sweep --pool mlx:gpu,workload=generate --policy shared --threads 1,2 \
  --repeat 2 --seconds 3 --session-dir "$OUT/crash" --json "$OUT/crash-sweep.json"
echo "sweep exit status: $?"
log=$(ls -d "$OUT"/crash/*/ | head -1)
if [ -n "$log" ]; then
  $py -m gpumon export "$log" -f md -o "$OUT/crash-report.md"
  $py -m gpumon export "$log" -f issue --for mlx -o "$OUT/crash-issue.md"; echo "issue: $?"
  pack crash-session "$log"
fi

step "MLX CUDA, locked: deaths while stopping (thread_exit now inside the lock)"
timeout 150 $py -m gpumon sweep --pool mlx:gpu --policy locked --threads 2,8 --repeat 3 \
  --seconds 2 --native-stacks off --session-dir "$OUT/locked" --json "$OUT/locked-sweep.json"
echo "sweep exit status: $?"
ls -l "$OUT"
