#!/usr/bin/env bash
# The GPU path in a few minutes: train/resume/test on CUDA, DDP over the visible GPUs (NCCL),
# bf16 and TF32, and the Ped2 benchmark rows. Writes outputs/gpu_check/gpu_check.md.
#   bash tools/gpu_check.sh [--out DIR] [--quick] [--no-benchmark]   # --device cpu rehearses on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
exec python -m pyanomaly.benchmark.gpu_check "$@"
