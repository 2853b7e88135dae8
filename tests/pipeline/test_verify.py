"""Verify-stage helpers that need no model: interleaved latency."""

from __future__ import annotations

import pytest


class _FakeModel:
    """``predict_timed`` returning (pre, infer, post) seconds from a script: one infer time per round."""

    def __init__(self, infer_by_round: list[float], runs: int, warmup: int = 2) -> None:
        self.script = [t for t in infer_by_round for _ in range(warmup + runs)]

    def predict_timed(self, images):
        return [], (0.001, self.script.pop(0), 0.002)


def test_interleaved_latency_takes_speedups_within_rounds():
    from admd_deploy.pipeline.verify import interleaved_latency

    # the machine slows down between the two rounds: 2 -> 4 ms for the reference, 1 -> 3 ms for the other
    dets = {"onnx": _FakeModel([0.002, 0.004], runs=3), "int8": _FakeModel([0.001, 0.003], runs=3)}
    out = interleaved_latency(dets, image=None, runs=3, rounds=2)
    assert out["onnx"]["speedup_vs_onnx"] == 1.0
    assert out["int8"]["speedup_vs_onnx"] == pytest.approx((2 / 1 + 4 / 3) / 2)  # not 3/2 from pooled medians
    assert out["int8"]["latency_ms"] == pytest.approx(2.0)  # median of 1,1,1,3,3,3 ms
    assert out["int8"]["end_to_end_ms"] == pytest.approx(5.0)  # + 1 ms pre + 2 ms post
