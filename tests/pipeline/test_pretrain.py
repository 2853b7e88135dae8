"""The pretrain stage: a source-domain start for teacher and student, trained once and cached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from admd_deploy.pipeline import training
from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.ledger import Ledger, stable_hash
from admd_deploy.recipe import load_recipe
from admd_deploy.schema import RecipeError

TINY = {
    "name": "tiny-pretrain",
    "task": "obb",
    "data": {"source": "synthetic", "synthetic": {"n_train": 8, "n_val": 4, "imgsz": 128, "max_objects": 3}},
    "pretrain": {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0,
                 "synthetic": {"n_train": 8, "n_val": 4, "imgsz": 128, "max_objects": 3, "seed": 5, "clutter": 1.5}},
    "teacher": {"model": "yolo11s-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
    "student": {"model": "yolo11n-obb.yaml"},
    "distill": {"method": "admd", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0},
}


def _recipe(tmp_path: Path, **changes):
    data = json.loads(json.dumps(TINY))
    data.update(changes)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


def _run(ctx: Context, name: str, inputs, run) -> dict:
    ctx.ledger.start(name, stable_hash(inputs(ctx)))
    out = run(ctx, ctx.stage_dir(name))
    ctx.ledger.finish(name, out)
    return out


@pytest.mark.slow
def test_teacher_and_student_start_from_the_cached_source_checkpoints(tmp_path, monkeypatch):
    recipe = _recipe(tmp_path)
    ctx = Context(recipe=recipe, run_dir=tmp_path / "run", ledger=Ledger(tmp_path / "run"))
    _run(ctx, "data", training.data_inputs, training.run_data)
    pre = _run(ctx, "pretrain", training.pretrain_inputs, training.run_pretrain)
    assert pre["reused"] is False and set(pre["models"]) == {"teacher", "student"}
    assert Path(pre["cache"]) == training.pretrain_cache(ctx) and Path(pre["source_data"]).is_file()
    for role in ("teacher", "student"):
        assert Path(pre["models"][role]["weights"]).is_file()
        assert training.start_model(ctx, role) == pre["models"][role]["weights"]
    # the source data is not the target data
    assert Path(pre["source_data"]).resolve() != Path(ctx.out("data")["data_yaml"]).resolve()

    teacher = _run(ctx, "teacher", training.teacher_inputs, training.run_teacher)
    args = yaml.safe_load((Path(teacher["run_dir"]) / "args.yaml").read_text())
    assert args["model"] == pre["models"]["teacher"]["weights"]  # fine-tuned from the source teacher
    assert training.teacher_inputs(ctx)["start_sha256"] == pre["models"]["teacher"]["sha256"]
    assert training.baseline_inputs(ctx)["start_sha256"] == pre["models"]["student"]["sha256"]

    # a second run (another run folder) with the same inputs reuses the cache without training
    def no_training(*a, **k):
        raise AssertionError("the cached pretrain must not train again")

    monkeypatch.setattr(training, "train", no_training)
    ctx2 = Context(recipe=recipe, run_dir=tmp_path / "run2", ledger=Ledger(tmp_path / "run2"))
    _run(ctx2, "data", training.data_inputs, training.run_data)
    again = _run(ctx2, "pretrain", training.pretrain_inputs, training.run_pretrain)
    assert again["reused"] is True and again["models"] == pre["models"]


def test_without_a_pretrain_section_the_recipe_models_are_the_start(tmp_path):
    recipe = _recipe(tmp_path, pretrain=None)
    ctx = Context(recipe=recipe, run_dir=tmp_path / "run", ledger=Ledger(tmp_path / "run"))
    out = training.run_pretrain(ctx, tmp_path)
    assert "skipped" in out and training.pretrain_inputs(ctx) == {"enabled": False}
    assert training.start_model(ctx, "student") == "yolo11n-obb.yaml"
    assert training.start_model(ctx, "teacher") == "yolo11s-obb.yaml"
    assert "start_sha256" not in training.teacher_inputs(ctx)


def test_the_pretrain_key_changes_with_the_source_data(tmp_path):
    a = Context(recipe=_recipe(tmp_path), run_dir=tmp_path, ledger=Ledger(tmp_path))
    other = json.loads(json.dumps(TINY))
    other["pretrain"]["synthetic"]["seed"] = 6
    b = Context(recipe=_recipe(tmp_path, pretrain=other["pretrain"]), run_dir=tmp_path, ledger=Ledger(tmp_path))
    assert training.pretrain_cache(a) != training.pretrain_cache(b)


@pytest.mark.parametrize("change, message", [
    ({"pretrain": {"synthetic": {"sed": 1}}}, "synthetic.sed: unknown key; did you mean 'seed'"),
    ({"pretrain": {"teacher_epochs": 0}}, "teacher_epochs must be >= 1"),
    ({"pretrain": {"epochs": 2}, "student": {"model": "/tmp/x.pt"}}, "student.model must be a model YAML"),
])
def test_a_wrong_pretrain_section_fails_at_load_with_the_fix(tmp_path, change, message):
    with pytest.raises((RecipeError, ValueError), match=message.replace(".", r"\.")):
        data = {**TINY, **change}
        path = tmp_path / "bad.yaml"
        path.write_text(yaml.safe_dump(data))
        Path("/tmp/x.pt").write_bytes(b"")
        load_recipe(path)
