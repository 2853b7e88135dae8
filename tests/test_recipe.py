"""Recipe validation: every bad input fails at load with the field's path, the valid values and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from admd_deploy.recipe import load_recipe
from admd_deploy.schema import RecipeError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("distill.methd=cwd", "distill.methd: unknown key; did you mean 'method'? valid keys: epochs"),
        ("distill.method=admdd", "distill.method must be one of admd, cwd, mgd, mse, none, pkd, score_l2; got 'admdd'"),
        ("teacher.epochs=ten", "teacher.epochs: expected an integer; got 'ten'"),
        ("task=seg", "task: must be one of detect, obb; got 'seg'"),
        ("export.formats=[onnx,tflite]", "export.formats[1]: must be one of onnx, onnx_fp16, onnx_int8, onnx_int8_cpu, engine; got 'tflite'"),
        ("export.formats=[onnx_int8]", "formats must include 'onnx'"),
        ("distill.args.lr00=0.1", "distill.args.lr00 is not an Ultralytics training argument; did you mean 'lr0'?"),
        ("distill.args.data=x.yaml", "distill.args.data is set by the pipeline itself"),
        ("distill.params.mask=gauss", "mask"),
        ("distill.epochs=0", "distill.epochs must be >= 1"),
        ("teacher.weights=/no/such/teacher.pt", "teacher: set one of weights (a local .pt) or model"),
        ("data.synthetic.n_trian=3", "data.synthetic.n_trian: unknown key; did you mean 'n_train'?"),
        ("data.source=dota", "data.path is required for source 'dota'"),
        ("gates.fp32_map_drop=[1]", "gates.fp32_map_drop: expected a number"),
        ("report.plots=maybe", "report.plots: expected true or false"),
        ("colour=red", "colour: unknown key"),
        ("data.unlabelled=0", "data.unlabelled must be a count >= 1 or a folder; got 0. Fix: e.g. unlabelled: 900"),
        ("data.unlabelled=no/such/frames", "data.unlabelled: unlabelled images: "),
        ("data.unlabelled=[1]", "data.unlabelled: expected int or str or null; got [1]"),
        ("distill.pseudo_conf=0.5", "distill.pseudo_conf: pseudo-labels are the teacher's detections on the "
                                    "unlabelled images, but data.unlabelled is not set. Fix: set data.unlabelled"),
        ("distill.pseudo_conf=2", "distill.pseudo_conf must be in (0, 1)"),
    ],
)
def test_a_bad_recipe_fails_at_load_naming_the_field_and_the_fix(override, message):
    with pytest.raises(RecipeError) as err:
        load_recipe(QUICKSTART, [override])
    assert message in str(err.value)


def test_a_missing_teacher_file_is_reported_with_its_path(tmp_path):
    data = yaml.safe_load(QUICKSTART.read_text())
    data["teacher"] = {"weights": "missing/teacher.pt"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match=r"teacher.weights: teacher checkpoint not found: .*missing/teacher.pt"):
        load_recipe(tmp_path / "r.yaml")


def test_relative_paths_resolve_against_the_recipe_file(tmp_path, stand_in_checkpoint):
    stand_in_checkpoint(tmp_path / "models" / "t.pt", "obb")
    data = yaml.safe_load(QUICKSTART.read_text())
    data["teacher"] = {"weights": "models/t.pt"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    assert load_recipe(tmp_path / "r.yaml").teacher.weights == str(tmp_path / "models" / "t.pt")


def test_overrides_are_typed_and_applied():
    r = load_recipe(QUICKSTART, ["distill.epochs=3", "distill.params={mask: softmax, tau: 0.5}", "gates.teacher_gap=10"])
    assert r.distill.epochs == 3 and r.distill.params == {"mask": "softmax", "tau": 0.5} and r.gates.teacher_gap == 10.0


@pytest.mark.parametrize("path", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_is_valid_apart_from_its_local_files(path, tmp_path, stand_in_checkpoint):
    """Real-data recipes point at /data and /models; with those swapped for stand-ins they must load."""
    data = yaml.safe_load(path.read_text())
    if data.get("teacher", {}).get("weights"):
        stand_in_checkpoint(tmp_path / "t.pt", data["task"])
        data["teacher"]["weights"] = str(tmp_path / "t.pt")
    if data.get("data", {}).get("path"):
        data["data"]["path"] = str(tmp_path)
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.name and recipe.task in {"detect", "obb"}
    assert "Needs" in path.read_text() or "Needs:" in path.read_text()  # each recipe says what it needs


def test_unlabelled_images_as_a_folder_resolve_against_the_recipe_and_a_count_needs_synthetic_data(tmp_path):
    import cv2
    import numpy as np

    (tmp_path / "frames").mkdir()
    assert cv2.imwrite(str(tmp_path / "frames" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    data = yaml.safe_load(QUICKSTART.read_text())
    data["data"]["unlabelled"] = "frames"
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    assert load_recipe(tmp_path / "r.yaml").data.unlabelled == str(tmp_path / "frames")
    (tmp_path / "d.yaml").write_text("path: .\ntrain: images\nval: images\nnames: {0: a}\n")
    data["data"] = {"source": "yolo", "path": "d.yaml", "unlabelled": 100}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(RecipeError, match="a count \\(100\\) makes synthetic tiles, but source is 'yolo'"):
        load_recipe(tmp_path / "r.yaml")
