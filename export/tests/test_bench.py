"""Benchmark bookkeeping (the speed target itself is measured by benchmarks/edge_bench.py, not asserted)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from admd_edge import load_model
from admd_edge.bench import Stats, bench_model, markdown_table


def test_stats_report_median_and_interquartile_range_in_ms() -> None:
    stats = Stats.of([0.001, 0.002, 0.003, 0.004, 0.005])
    assert stats.median == pytest.approx(3.0) and stats.iqr == pytest.approx(2.0)


def test_bench_times_every_stage_and_the_raw_session_call(detect_onnx: Path, bus_image: np.ndarray) -> None:
    result = bench_model(load_model(detect_onnx, threads=1), bus_image, runs=4, warmup=1, name="tiny")
    for stats in (result.pre, result.infer, result.post, result.end_to_end, result.raw):
        assert stats.median > 0
    assert result.end_to_end.median >= result.infer.median
    assert result.ratio == pytest.approx(result.end_to_end.median / result.raw.median)
    table = markdown_table([result], extra={"tiny": 12.5})
    assert "| tiny | detect | 64x64 |" in table and "12.50" in table
    assert result.to_dict()["ratio"] == result.ratio


def test_bench_refuses_zero_runs(detect_onnx: Path, bus_image: np.ndarray) -> None:
    with pytest.raises(ValueError, match="runs"):
        bench_model(load_model(detect_onnx), bus_image, runs=0)
