#!/usr/bin/env bash
# gpumon's measuring cost on a GPU at 1 thread: pool vs bare loop, alternating pairs in one run
# (benchmarks/overhead_matrix.py), torch CUDA and MLX CUDA, bf16 addmm at 4096^2 (GPU-bound,
# ~0.25 ms) and 256^2 (launch-bound, ~10-20 us), plus `generate` at width 1024 (a decoding step:
# many small kernels and a host round trip per token). A few minutes in all:
#   OUT=results/ bash benchmarks/gpu_overhead.sh
# Needs gpumon importable from this checkout, torch with CUDA, and mlx[cuda] for the MLX rows;
# a backend that is missing fails its own step only. PAIRS, SECONDS_PER_RUN and THREADS override
# the defaults; CONTROL= drops the second bare loop, PARTS= the op_parts step, NVML= the
# NVML-neighbour step; PEER_PYTHON (a python with nvitop) adds the peer comparison with NVML;
# CPU_MATRIX=1 adds the CPU matrix (torch and MLX, 64-512, 1/2/4/16 threads, generate 256:
# about 8 more minutes).
set -u
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)
# --control: a second bare loop in every pair, so each cell shows how far two identical loops
# land apart on this host (CONTROL= to leave it out and save a third of the time).
control=(); [ -n "${CONTROL-1}" ] && control=(--control)
common=(--dtype bfloat16 --sizes 4096,256 --generate-sizes 1024 --threads "${THREADS:-1}"
        --pairs "${PAIRS:-6}" --seconds "${SECONDS_PER_RUN:-2}" --warmup 0.6 ${control[@]+"${control[@]}"})
echo "=== overhead torch cuda"
$py "$here/overhead_matrix.py" --backend torch --device cuda "${common[@]}" \
  --json "$OUT/overhead-matrix-torch-cuda.json" > /dev/null
echo "=== overhead mlx gpu"
$py "$here/overhead_matrix.py" --backend mlx --device gpu "${common[@]}" \
  --json "$OUT/overhead-matrix-mlx-gpu.json" > /dev/null
if [ -n "${CPU_MATRIX:-}" ]; then
  # The CPU matrix on a many-core host (add --control by hand for the run's noise floor).
  for b in torch mlx; do
    echo "=== overhead $b cpu matrix"
    $py "$here/overhead_matrix.py" --backend $b --device cpu --pairs "${PAIRS:-5}" \
      --seconds 1 --warmup 0.4 --json "$OUT/overhead-matrix-$b-cpu.json" > /dev/null
  done
fi
if [ -n "${PEER_PYTHON:-}" ]; then
  echo "=== peer (nvitop) at 10 Hz with NVML"
  $py "$here/peer.py" --peer-python "$PEER_PYTHON" --seconds 10 --repeats 3 \
    --json "$OUT/peer.json" > /dev/null
fi
if [ -n "${PARTS-1}" ]; then
  # One process, the op under more and more of gpumon (benchmarks/op_parts.py).
  echo "=== op parts, torch cuda 4096 bf16"
  $py "$here/op_parts.py" --op torch --device cuda --dtype bfloat16 --size 4096 --rounds 6 \
    --seconds 0.4 --levels bare,clock,record,sampled,pool,pool-off,pool-mute \
    --json "$OUT/op-parts-torch-cuda-4096.json"
fi
if [ -n "${NVML-1}" ]; then
  # The same loop bare while a neighbour polls NVML as the monitor does (benchmarks/nvml_cost.py).
  echo "=== NVML beside a torch cuda 4096 bf16 loop"
  $py "$here/nvml_cost.py" --device cuda --dtype bfloat16 --size 4096 --rounds 10 --seconds 2 \
    --json "$OUT/nvml-cost-torch-cuda-4096.json"
fi
echo "=== host sampler alone at 10 Hz (NVML included)"
$py "$here/peer.py" --seconds 10 --repeats 3 --json "$OUT/peer-gpumon-only.json" > /dev/null
ls -l "$OUT"
