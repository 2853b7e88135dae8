"""admd-deploy bench kd: aggregation by hand, and a tiny resumable run end to end."""

from __future__ import annotations

import json

import pytest
import yaml

from admd_deploy.bench.kd import aggregate, distill_config, parse_method_spec, run_kd_bench, sctx_name
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


def test_a_method_spec_carries_knobs_and_loss_parameters():
    assert parse_method_spec("cwd") == ("cwd", {})
    assert parse_method_spec("admd:weight=constant:params.mask=uniform:loss_weight=2") == (
        "admd", {"weight": "constant", "params.mask": "uniform", "loss_weight": 2})
    assert sctx_name("admd:params.mask=uniform", 3) == "admd-params.mask-uniform/seed3"
    assert sctx_name("score_l2", 0) == "score_l2/seed0"


@pytest.mark.parametrize("spec, message", [
    ("admdd", "unknown method 'admdd'"),
    ("admd:mask=uniform", "unknown knob 'mask'; valid: align_warmup_epochs, beta, loss_weight, w_max, warmup_epochs, weight, "
     "params.<name>"),
    ("admd:weight", "is not KEY=VALUE"),
    ("none:loss_weight=2", "takes no knobs"),
])
def test_a_wrong_method_spec_names_the_problem(spec, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("<", ".").replace(">", ".")):
        parse_method_spec(spec)


def test_variants_apply_on_the_recipes_knobs_and_are_validated(tmp_path):
    recipe = _tiny_recipe(tmp_path, distill={"loss_weight": 3.0, "w_max": 5.0})
    plain = distill_config(recipe, "admd", "t.pt")
    assert plain["loss_weight"] == 3.0 and plain["w_max"] == 5.0 and plain["params"] == {}
    ablated = distill_config(recipe, "admd:weight=constant:params.mask=uniform", "t.pt")
    assert {**ablated, "weight": None, "params": {}} == plain  # nothing else changes
    assert ablated["weight"] == "constant" and ablated["params"] == {"mask": "uniform"}
    peer = distill_config(recipe, "cwd:params.tau=2", "t.pt")
    assert peer["loss_weight"] is None and peer["params"] == {"tau": 2}  # peers keep their own defaults
    with pytest.raises(ValueError, match="admd:params.mask=round"):
        distill_config(recipe, "admd:params.mask=round", "t.pt")
    with pytest.raises(ValueError, match="w_max must be >= 1"):
        distill_config(recipe, "admd:w_max=0.5", "t.pt")
    with pytest.raises(ValueError, match="listed twice"):
        run_kd_bench(recipe, ["admd", "admd"], [0], tmp_path / "b")


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


def _tiny_recipe(tmp_path, distill=None):
    data = {
        "name": "tinybench", "task": "obb",
        "data": {"source": "synthetic", "synthetic": {"n_train": 16, "n_val": 8, "imgsz": 128, "max_objects": 4}},
        "teacher": {"model": "yolo11s-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
        "student": {"model": "yolo11n-obb.yaml"},
        "distill": {"method": "admd", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0,
                    **(distill or {})},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)
