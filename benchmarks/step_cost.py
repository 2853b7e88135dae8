"""Cost of a distilled training step against a student-only step, on the real trainer's batches.

    python benchmarks/step_cost.py --teacher yolo11s.yaml --student yolo11n.yaml --imgsz 256 --batch 8

A thin shim over ``admd-deploy bench step-cost`` (same flags, same output); the logic is in
:mod:`admd_deploy.bench.step_cost`, whose docstring says what is timed.
"""

from __future__ import annotations

import sys

from admd_deploy.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "step-cost", *sys.argv[1:]]))
