#!/usr/bin/env bash
# bench.py's suite on one GPU: float32 and bfloat16, eager and compiled, peak memory from
# torch.cuda.max_memory_allocated; under 10 minutes on one GPU (the mid and large sizes, where a
# GPU's time is not all launch overhead).
#
#   benchmarks/gpu.sh                      # CUDA
#   benchmarks/gpu.sh --device cpu --quick # the same script on CPU (any bench.py option passes through)
set -euo pipefail
cd "$(dirname "$0")/.."
device=cuda
options=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    *) options+=("$1"); shift ;;
  esac
done
if [[ ${#options[@]} -eq 0 ]]; then
  options=(--sizes mid large --reps 10 --no-derive)
fi
for dtype in float32 bfloat16; do
  python benchmarks/bench.py --device "$device" --dtype "$dtype" \
    --json "benchmarks/results-$device-$dtype.json" "${options[@]}"
done
