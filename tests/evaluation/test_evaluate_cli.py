"""``admd-deploy evaluate --protocol dota`` end to end: generated scenes, an exported ONNX, Task1 files, JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from admd_deploy.cli import main


@pytest.fixture(scope="module")
def dynamic_obb_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained yolo11n-obb exported at 64 px with a dynamic batch (the windows run in batches)."""
    from admd_deploy.pipeline.exporting import onnx_from_checkpoint

    out = tmp_path_factory.mktemp("onnx")
    return onnx_from_checkpoint("yolo11n-obb.yaml", out / "m.onnx", imgsz=64, batch=1, dynamic=True, opset=17,
                                simplify=False)


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 200 px scene; its labels name classes by id, as the untrained model (names '0'..'79') does."""
    from admd_deploy.data.scenes import SceneConfig, generate_scenes

    out = generate_scenes(tmp_path_factory.mktemp("scenes") / "s", SceneConfig(n_scenes=1, size=200, tile=64,
                                                                                max_objects=3, min_objects=1))
    names = json.loads((out / "scenes.json").read_text())["config"]["classes"]
    for label in (out / "labelTxt").glob("*.txt"):
        rows = [line.split() for line in label.read_text().splitlines()]
        label.write_text("".join(" ".join([*r[:8], str(names.index(r[8])), r[9]]) + "\n" for r in rows))
    return out


def test_evaluate_prints_the_labelled_paper_metric_and_writes_task1_and_json(dynamic_obb_onnx, scenes, tmp_path,
                                                                             capsys):
    code = main(["evaluate", str(dynamic_obb_onnx), "--images", str(scenes / "images"), "--labels",
                 str(scenes / "labelTxt"), "--crop-size", "64", "--gap", "16", "--conf", "0.01", "--imgsz", "64",
                 "--task1", str(tmp_path / "task1"), "--json", str(tmp_path / "scores.json")])
    out = capsys.readouterr().out
    assert code == 0
    assert "dota protocol: 1 images, 25 windows of 64 px (gap 16), polygon merge at 0.1" in out
    assert "paper metric: mAP@0.5 (polygon IoU, voc07 AP, difficult ignored)" in out
    names = [str(i) for i in range(80)]
    assert sorted(p.name for p in (tmp_path / "task1").iterdir()) == sorted(f"Task1_{n}.txt" for n in names)
    summary = json.loads((tmp_path / "scores.json").read_text())
    assert summary["ap_kind"] == "voc07" and set(summary["classes"]) == set(names) and 0 <= summary["map"] <= 1
    assert sum(c["npos"] for c in summary["classes"].values()) == len((scenes / "labelTxt" / "scene_00000.txt")
                                                                       .read_text().splitlines())


@pytest.mark.parametrize(("extra", "message"), [
    (["--labels", "nowhere"], "label folder nowhere not found"),
    (["--gap", "2000"], "crop_size > gap"),
    (["--labels", "LABELS_WITH_NAMES"], "unknown class 'plane'"),
])
def test_evaluate_refuses_bad_input_in_one_line(dynamic_obb_onnx, scenes, capsys, extra, message):
    argv = ["evaluate", str(dynamic_obb_onnx), "--images", str(scenes / "images"), "--labels", str(scenes / "labelTxt")]
    if extra[-1] == "LABELS_WITH_NAMES":  # class names the model does not have
        named = scenes.parent / "named"
        named.mkdir(exist_ok=True)
        (named / "scene_00000.txt").write_text("0 0 10 0 10 10 0 10 plane 0\n")
        extra = ["--labels", str(named)]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("admd-deploy evaluate: error:")


def test_a_recipe_paper_eval_section_supplies_the_folders_and_the_protocol(dynamic_obb_onnx, scenes, tmp_path,
                                                                          capsys):
    import yaml

    root = Path(__file__).resolve().parents[2]
    data = yaml.safe_load((root / "recipes" / "quickstart.yaml").read_text())
    data["paper_eval"] = {"protocol": "dior-r", "images": str(scenes / "images"), "labels": str(scenes / "labelTxt"),
                          "crop_size": 64, "gap": 16, "conf": 0.01, "ap": "area"}
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    code = main(["evaluate", str(dynamic_obb_onnx), "--recipe", str(tmp_path / "r.yaml"), "--imgsz", "64",
                 "--gap", "32", "--json", str(tmp_path / "s.json")])
    assert code == 0, capsys.readouterr().err
    # the scene is 256 px: 7 x 7 windows at gap 32 (the flag wins over the recipe's 16)
    assert "dior-r protocol: 1 images, 49 windows of 64 px (gap 32)" in capsys.readouterr().out
    assert json.loads((tmp_path / "s.json").read_text())["ap_kind"] == "area"


def test_a_recipe_with_an_unknown_protocol_is_refused_naming_the_field(capsys):
    from admd_deploy.recipe import load_recipe
    from admd_deploy.schema import RecipeError

    root = Path(__file__).resolve().parents[2]
    with pytest.raises(RecipeError, match="paper_eval.protocol: must be one of dota, dior, dior-r; got 'coco'"):
        load_recipe(root / "recipes" / "quickstart.yaml", ["paper_eval.protocol=coco"])


def test_the_command_defaults_are_the_recipe_section_defaults():
    from admd_deploy.evaluation.cli import _DEFAULTS
    from admd_deploy.recipe import PaperEvalSection

    assert _DEFAULTS == {k: getattr(PaperEvalSection(), k) for k in _DEFAULTS}
