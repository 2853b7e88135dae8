"""Seed spread against epochs, and convergence, of a `bench kd` output folder (the regime pilot).

For every method in the folder, reads each seed's `results.csv` (Ultralytics' per-epoch validation,
mAP50-95 of the EMA model) and prints, per epoch, the mean and sample standard deviation over seeds,
and the paired delta against `none` of the same seed. The last lines give, for the baseline, how much
its mean mAP50-95 moved over the last 10% of epochs (at least two epochs): the convergence test of
the regime choice.

Usage: python benchmarks/kd_regime.py runs/bench-kd-... [--methods none,admd]
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
from pathlib import Path


def curve(results_csv: Path) -> list[float]:
    with open(results_csv, newline="") as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    key = next(k for k in rows[0] if k.startswith("metrics/mAP50-95"))
    return [100 * float(r[key]) for r in rows]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path)
    ap.add_argument("--methods", default=None, help="comma list (default: every method folder with seed runs)")
    args = ap.parse_args()
    curves: dict[str, dict[int, list[float]]] = {}
    for csv_path in sorted(args.folder.glob("*/seed*/train/results.csv")):
        method, seed = csv_path.parts[-4], int(csv_path.parts[-3].removeprefix("seed"))
        curves.setdefault(method, {})[seed] = curve(csv_path)
    methods = args.methods.split(",") if args.methods else sorted(curves, key=lambda m: (m != "none", m))
    for m in methods:
        seeds = sorted(curves.get(m, {}))
        if not seeds:
            continue
        n = min(len(curves[m][s]) for s in seeds)
        print(f"\n{m} (seeds {seeds}): epoch, mean ± std mAP50-95 over seeds"
              + ("" if m == "none" else ", paired delta vs none mean ± std"))
        for e in range(n):
            xs = [curves[m][s][e] for s in seeds]
            line = f"  {e + 1:3d}  {statistics.fmean(xs):6.2f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:5.2f}"
            base = curves.get("none", {})
            paired = [curves[m][s][e] - base[s][e] for s in seeds if m != "none" and s in base and len(base[s]) > e]
            if paired:
                line += f"   {statistics.fmean(paired):+6.2f} ± {statistics.stdev(paired) if len(paired) > 1 else 0:5.2f}"
            print(line)
    base = curves.get("none")
    if base:
        n = min(len(c) for c in base.values())
        k = max(2, math.ceil(0.1 * n))
        means = [statistics.fmean(c[e] for c in base.values()) for e in range(n)]
        tail = means[n - k:]
        print(f"\nbaseline convergence: mean mAP50-95 over the last {k} epochs moved {max(tail) - min(tail):.2f} points "
              f"({', '.join(f'{v:.2f}' for v in tail)})")


if __name__ == "__main__":
    main()
