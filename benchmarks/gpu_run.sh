#!/usr/bin/env bash
# The GPU measurements in docs/performance.md, as one script for any NVIDIA host:
#   OUT=results/ bash benchmarks/gpu_run.sh
# Needs gpumon importable (PYTHONPATH or pip install -e .), torch with CUDA, and MLX's CUDA
# build for the mlx rows. Each step is independent; a failing one does not stop the others.
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() { echo "=== $*"; }

step doctor
$py -m gpumon doctor --json > "$OUT/doctor.json"; $py -m gpumon doctor

step sweep torch:cuda and mlx:gpu, bf16 4096 addmm
$py -m gpumon sweep --pool torch:cuda --pool mlx:gpu --threads "${THREADS:-1,2,4,8,16}" \
  --seconds "${SECONDS_PER_CELL:-3}" --repeat "${REPEAT:-2}" --native-stacks off \
  --json "$OUT/sweep.json" --session-dir "$OUT/sessions"
echo "sweep exit status: $?"

step overhead: pool vs bare loop at 1 thread, 4096 and 256 bf16 and generate
OUT="$OUT" PYTHON="$py" bash "$(dirname "$0")/gpu_overhead.sh"
