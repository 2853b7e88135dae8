"""admd-deploy bench kd: aggregation by hand, and a tiny resumable run end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from admd_deploy.bench.kd import aggregate, run_kd_bench
from admd_deploy.recipe import load_recipe


def test_aggregate_gives_mean_std_and_the_gap_closed_against_the_baseline_mean():
    runs = {
        "none": [{"map50": 0.5, "map50_95": 0.30, "sec_per_epoch": 1.0}, {"map50": 0.5, "map50_95": 0.34, "sec_per_epoch": 1.0}],
        "admd": [{"map50": 0.6, "map50_95": 0.40, "sec_per_epoch": 2.0}, {"map50": 0.6, "map50_95": 0.44, "sec_per_epoch": 2.0}],
    }
    rows = {r.method: r for r in aggregate(runs, teacher_map50_95=0.52)}
    assert rows["admd"].map50_95 == pytest.approx(0.42) and rows["admd"].map50_95_std == pytest.approx(0.0282843, abs=1e-6)
    assert rows["admd"].gap_closed == pytest.approx((0.42 - 0.32) / (0.52 - 0.32))  # 50%
    assert rows["none"].gap_closed == pytest.approx(0.0) and rows["admd"].seconds_per_epoch == 2.0


@pytest.mark.slow
def test_a_tiny_bench_writes_its_table_and_a_rerun_trains_nothing(tmp_path, monkeypatch):
    recipe = _tiny_recipe(tmp_path)
    result = run_kd_bench(recipe, ["admd", "cwd", "none"], [0], tmp_path / "bench")
    assert [r["method"] for r in result["rows"]] == ["admd", "cwd", "none"]
    md = (tmp_path / "bench" / "bench-kd.md").read_text()
    assert "| admd | 1 |" in md and "| none | 1 |" in md and "| teacher |" in md
    saved = json.loads((tmp_path / "bench" / "bench-kd.json").read_text())
    assert saved["runs"]["cwd"][0]["sec_per_epoch"] > 0
    assert (tmp_path / "bench" / "bench-kd.png").stat().st_size > 5000
    assert (tmp_path / "bench" / "admd-kd-curves.png").is_file()

    from admd_deploy.pipeline import training

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(training, "train", no_training)
    again = run_kd_bench(recipe, ["admd", "cwd", "none"], [0], tmp_path / "bench")
    assert again["rows"] == result["rows"]


def _tiny_recipe(tmp_path):
    data = {
        "name": "tinybench", "task": "obb",
        "data": {"source": "synthetic", "synthetic": {"n_train": 16, "n_val": 8, "imgsz": 128, "max_objects": 4}},
        "teacher": {"model": "yolo11s-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
        "student": {"model": "yolo11n-obb.yaml"},
        "distill": {"method": "admd", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)
