"""benchmarks/large_scenes.py runs end to end on a tiny model and one small generated scene (no timing claims)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

@pytest.fixture(scope="module")
def tiny_obb_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from admd_deploy.pipeline.exporting import onnx_from_checkpoint

    out = tmp_path_factory.mktemp("onnx")
    return onnx_from_checkpoint("yolo11n-obb.yaml", out / "m.onnx", imgsz=64, batch=1, dynamic=True, opset=17,
                                simplify=False)


def test_the_benchmark_reports_every_method_with_ap_small_recall_and_cost(tiny_obb_onnx, tmp_path, capsys,
                                                                         benchmark_script):
    result = benchmark_script("large_scenes").main(["--model", str(tiny_obb_onnx), "--scenes", str(tmp_path / "scenes"), "--size", "256",
                                  "--n-scenes", "1", "--max-objects", "4", "--repeats", "1", "--conf", "0.01",
                                  "--json", str(tmp_path / "r.json")])
    assert list(result["methods"]) == ["letterbox", "sliced-axis", "sliced-ours"]
    assert result["tile"] == 64 and result["megapixels"] == pytest.approx(256 * 256 / 1e6, abs=1e-3)
    for name, row in result["methods"].items():
        assert 0 <= row["map50"] <= 1 and row["ms_per_mpx"] > 0 and row["small_objects"] > 0
        assert ("e2e_over_raw_tiles" in row) == (name != "letterbox")
    assert 0 < result["methods"]["sliced-ours"]["e2e_over_raw_tiles"] < float("inf")  # no timing claim on a shared CPU
    assert json.loads((tmp_path / "r.json").read_text())["methods"].keys() == result["methods"].keys()
    assert "| sliced-ours |" in capsys.readouterr().out
