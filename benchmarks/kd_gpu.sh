#!/usr/bin/env bash
# The larger KD comparison on one GPU (recipe bench-kd-gpu). Prepared, not run: no GPU was lent.
# Usage: bash benchmarks/kd_gpu.sh [METHODS] [SEEDS]   (from the repository root, after `make venv`)
set -euo pipefail
methods=${1:-none,admd,score_l2}
seeds=${2:-0,1,2}
.venv/bin/admd-deploy recipe check bench-kd-gpu
time .venv/bin/admd-deploy bench kd bench-kd-gpu --methods "$methods" --seeds "$seeds" --out runs/bench-kd-gpu
