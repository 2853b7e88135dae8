"""Edge runtime benchmark: admd-edge end to end vs the bare ``InferenceSession.run``, vs Ultralytics predict.

    python export/benchmarks/edge_bench.py --threads 2 --runs 60
    python export/benchmarks/edge_bench.py --obb runs/quickstart/export/student.onnx \
        --int8 runs/quickstart/export/student.int8.onnx --json edge-bench.json

A thin shim over ``admd-deploy bench edge`` (same flags and output; it needs admd-deploy installed next to
admd-edge). The logic is in :mod:`admd_deploy.bench.edge`, whose docstring says what is measured: the
timing table (FP32 and ``--int8`` rows), the peak memory of each model under admd-edge and Ultralytics,
and rotated NMS on 10,000 boxes.
"""

from __future__ import annotations

import sys

from admd_deploy.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "edge", *sys.argv[1:]]))
