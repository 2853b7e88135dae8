"""Verify-stage helpers that need no model: interleaved latency, the floor gate, protocol strings."""

from __future__ import annotations

from pathlib import Path

import pytest

QUICKSTART = Path(__file__).resolve().parents[2] / "recipes" / "quickstart.yaml"


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


def test_a_model_with_map_0_fails_the_floor_gate_and_one_above_it_passes():
    from admd_deploy.pipeline.verify import floor_gate

    assert floor_gate("student_min_map50_95", 0.0, 1.0) == {
        "name": "student_min_map50_95", "value": 0.0, "limit": 1.0, "passed": False}
    assert floor_gate("onnx_min_map50_95", 0.0101, 1.0)["passed"] is True
    assert floor_gate("onnx_min_map50_95", 0.0099, 1.0)["passed"] is False


@pytest.mark.parametrize("value", [0, -1, 101])
def test_the_floor_gate_refuses_a_limit_outside_0_to_100_points(value):
    from admd_deploy.recipe import load_recipe
    from admd_deploy.schema import RecipeError

    with pytest.raises(RecipeError, match=r"gates\.min_map50_95 must be in \(0, 100\] points"):
        load_recipe(QUICKSTART, [f"gates.min_map50_95={value}"])
    assert load_recipe(QUICKSTART).gates.min_map50_95 == 1.0  # the default: above 0, so mAP 0 never passes


def test_the_report_names_the_protocol_of_the_models_and_of_the_exports():
    from admd_deploy.pipeline.report import MODELS_PROTOCOL, exports_protocol
    from admd_deploy.pipeline.verify import EDGE_PROTOCOL, edge_protocol

    assert "multi-label" in edge_protocol(True) and "single-label" in edge_protocol(False)
    report = {"exports": {"onnx": {"protocol": EDGE_PROTOCOL}, "engine": {"skipped": "no GPU"}},
              "protocols": {MODELS_PROTOCOL: "Ultralytics val ...", EDGE_PROTOCOL: edge_protocol(True)}}
    (line, blank) = exports_protocol(report)
    assert line.startswith("Exports, through the edge runtime: admd-edge runtime") and "multi-label NMS" in line
    assert blank == "" and exports_protocol({"exports": {}, "protocols": {}}) == []
