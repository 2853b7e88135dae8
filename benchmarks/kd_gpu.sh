#!/usr/bin/env bash
# The larger KD comparison on one GPU (recipe bench-kd-gpu). Prepared, not run: no GPU was lent.
# Usage: bash benchmarks/kd_gpu.sh [METHODS] [SEEDS]   (from the repository root, after `make venv`)
set -euo pipefail
# admd here has its trained-start defaults (levels P3,P4: P5 left out, chosen at 256 px where P5 is 8 x 8);
# admd:levels=P3+P4+P5 checks whether P5 distils at 512 px (16 x 16).
methods=${1:-none,admd,admd:levels=P3+P4+P5,score_l2}
seeds=${2:-0,1,2}
.venv/bin/admd-deploy recipe check bench-kd-gpu
time .venv/bin/admd-deploy bench kd bench-kd-gpu --methods "$methods" --seeds "$seeds" --out runs/bench-kd-gpu
