"""Nothing the user owns is lost, and nothing is dropped silently (issue 14, part 2, training side).

A dataset with files training would drop is listed and refused unless allowed; ``data check`` shows
it without training; ``data dota`` never deletes files it did not write; ``verify`` only verifies;
a failed command removes the run folder it made.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_deploy.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "admd_deploy" / "recipes" / "quickstart.yaml")


@pytest.fixture()
def dataset(tmp_path) -> Path:
    """A small clean OBB dataset (4 train, 2 val images) of its own, free to damage."""
    from admd_deploy.data import SynthConfig, generate_synthetic

    return generate_synthetic(tmp_path / "synth", SynthConfig(task="obb", n_train=4, n_val=2, imgsz=64, seed=0))


def _damage(data_yaml: Path) -> tuple[Path, Path]:
    """Make one image undecodable and one label line malformed; return (image, the image of the bad label)."""
    root = data_yaml.parent
    bad_image = root / "images" / "train" / "train_00001.jpg"
    bad_image.write_bytes(b"not a jpeg at all")
    label = root / "labels" / "train" / "train_00002.txt"
    label.write_text(label.read_text() + "1 0.5 0.5\n")  # 3 values: Ultralytics reads a 1-point "polygon"
    return bad_image, root / "images" / "train" / "train_00002.jpg"


# --- data check / corrupt files -----------------------------------------------------------------------------
def test_data_check_of_a_clean_dataset_exits_0_counting_every_image(dataset, capsys):
    assert main(["data", "check", str(dataset)]) == 0
    out = capsys.readouterr().out
    assert "train 4, val 2 images" in out and "clean" in out


def test_data_check_lists_every_file_training_would_drop_and_exits_2(dataset, capsys):
    bad_image, bad_label_image = _damage(dataset)
    assert main(["data", "check", str(dataset)]) == 2
    captured = capsys.readouterr()
    listed = sorted(line for line in captured.out.splitlines() if line.startswith("  "))
    assert len(listed) == 2  # the two damaged files, nothing else
    assert listed[0].startswith(f"  train: {bad_image}: ")
    assert "the image does not decode" in listed[0]
    assert listed[1] == (f"  train: {bad_label_image}: train_00002.txt:4 has 3 values; a label line is 'class x y w h' "
                         "(5) or 'class x1 y1 x2 y2 x3 y3 x4 y4' (9, OBB)")
    assert "2 of 6 images" in captured.err and "Traceback" not in captured.err


def test_distill_refuses_a_dataset_with_files_it_would_drop_before_training(tmp_path, dataset, capsys):
    bad_image, _ = _damage(dataset)
    project = tmp_path / "runs"
    code = main(["distill", "--student", "yolo11n-obb.yaml", "--teacher", "yolo11s-obb.yaml", "--data", str(dataset),
                 "--project", str(project), "--epochs", "1", "--imgsz", "64"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "2 of 6 images" in err and str(bad_image) in err and "--allow-corrupt" in err
    assert not project.exists()


def test_allowing_corrupt_files_warns_once_with_the_list_and_goes_on(dataset, caplog):
    from admd_deploy.data.check import require_clean

    bad_image, _ = _damage(dataset)
    with caplog.at_level(logging.WARNING):
        result = require_clean(dataset, allow_corrupt=True)
    assert len(result.bad) == 2 and result.images == {"train": 4, "val": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and str(bad_image) in warnings[0] and "(allowed)" in warnings[0]


def test_a_recipe_run_on_corrupt_data_stops_at_the_data_stage_and_leaves_no_run_folder(tmp_path, dataset, capsys):
    _damage(dataset)
    out = tmp_path / "run"
    code = main(["run", QUICKSTART, f"data={{source: yolo, path: {dataset}}}", "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "data: 2 of 6 images" in err and "data.allow_corrupt: true" in err
    assert not out.exists()


# --- data dota keeps the user's files ------------------------------------------------------------------------
def _dota(root: Path) -> Path:
    for split in ("train", "val"):
        (root / split / "images").mkdir(parents=True)
        assert cv2.imwrite(str(root / split / "images" / "P0001.png"), np.full((80, 100, 3), 120, np.uint8))
        (root / split / "labelTxt").mkdir()
        (root / split / "labelTxt" / "P0001.txt").write_text("10 10 40 10 40 30 10 30 plane 0\n")
    return root


def test_data_dota_rerun_refuses_to_delete_a_file_the_user_added_to_its_output(tmp_path, capsys):
    src, out = _dota(tmp_path / "DOTA"), tmp_path / "out"
    assert main(["data", "dota", str(src), str(out), "--no-split"]) == 0
    assert json.loads((out / "convert.json").read_text())["files"] == [
        "data.yaml", "images/train/P0001.png", "images/val/P0001.png", "labels/train/P0001.txt", "labels/val/P0001.txt"]
    (out / "notes.txt").write_text("mine")
    (out / "labels" / "train" / "extra.txt").write_text("mine too")
    capsys.readouterr()
    assert main(["data", "dota", str(src), str(out), "--no-split"]) == 2
    err = capsys.readouterr().err
    assert "holds 2 file(s) it did not write (labels/train/extra.txt, notes.txt)" in err and "Fix: move them" in err
    assert (out / "notes.txt").read_text() == "mine" and (out / "labels" / "train" / "extra.txt").is_file()


def test_data_dota_rerun_replaces_its_own_output_and_the_label_caches(tmp_path):
    src, out = _dota(tmp_path / "DOTA"), tmp_path / "out"
    assert main(["data", "dota", str(src), str(out), "--no-split"]) == 0
    (out / "labels" / "train.cache").write_bytes(b"ultralytics cache")  # written by training, derived
    (out / "images" / "train" / "P0001.png").unlink()  # its own file, changed: replaced
    assert main(["data", "dota", str(src), str(out), "--no-split"]) == 0
    assert (out / "images" / "train" / "P0001.png").is_file() and not (out / "labels" / "train.cache").exists()


# --- verify only verifies ------------------------------------------------------------------------------------
def test_verify_on_a_run_folder_without_exports_exits_2_and_trains_nothing(tmp_path, capsys):
    from admd_deploy.recipe import load_recipe, save_recipe

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_recipe(load_recipe(QUICKSTART), run_dir / "recipe.yaml")
    assert main(["verify", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "nothing was exported there to verify" in err and "Fix: run `admd-deploy run`" in err
    assert sorted(p.name for p in run_dir.iterdir()) == ["recipe.yaml"]


def test_verify_refuses_a_run_whose_stages_before_verify_did_not_finish(tmp_path, capsys):
    from admd_deploy.pipeline.ledger import Ledger
    from admd_deploy.recipe import load_recipe, save_recipe

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    save_recipe(load_recipe(QUICKSTART), run_dir / "recipe.yaml")
    ledger = Ledger(run_dir)
    ledger.start("data", "some-key")
    ledger.fail("data", "RuntimeError: x")
    assert main(["verify", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "stage 'data' is failed; verify only re-checks existing exports" in err
    assert not (run_dir / "teacher").exists() and Ledger(run_dir).records["data"].status == "failed"


# --- failed commands leave nothing half-made ---------------------------------------------------------------------
def test_run_with_a_bad_from_stage_creates_no_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", QUICKSTART, "--out", str(out), "--from", "teachr"]) == 2
    assert "--from must be one of data, pretrain, teacher" in capsys.readouterr().err
    assert not out.exists()


def test_export_with_a_bad_override_removes_the_folder_it_made(tmp_path, capsys, obb_data, stand_in_checkpoint):
    weights = stand_in_checkpoint(tmp_path / "best.pt", "obb")
    out = tmp_path / "export"
    assert main(["export", str(weights), "--data", str(obb_data), "--out", str(out), "gates.int8_map_drop=-1"]) == 2
    assert "gates.int8_map_drop must be >= 0" in capsys.readouterr().err
    assert not out.exists()


def test_export_keeps_a_folder_that_existed_before(tmp_path, capsys, obb_data, stand_in_checkpoint):
    weights = stand_in_checkpoint(tmp_path / "best.pt", "obb")
    out = tmp_path / "export"
    out.mkdir()
    (out / "mine.txt").write_text("mine")
    assert main(["export", str(weights), "--data", str(obb_data), "--out", str(out), "gates.int8_map_drop=-1"]) == 2
    assert (out / "mine.txt").read_text() == "mine"


def test_a_failed_distill_removes_the_run_folder_it_made_but_keeps_checkpoints(tmp_path, monkeypatch, capsys,
                                                                              obb_data):
    project = tmp_path / "runs"
    (project / "old").mkdir(parents=True)  # the user's earlier run: untouched

    def fails_after_making_folders(*_args, **_kwargs):
        (project / "admd").mkdir()
        (project / "admd" / "args.yaml").write_text("epochs: 1\n")
        (project / "admd2" / "weights").mkdir(parents=True)
        (project / "admd2" / "weights" / "last.pt").write_bytes(b"resumable")
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr("admd_deploy.api.distill", fails_after_making_folders)
    code = main(["distill", "--student", "yolo11n-obb.yaml", "--data", str(obb_data), "--project", str(project)])
    assert code == 1 and "unexpected error: RuntimeError: CUDA out of memory" in capsys.readouterr().err
    assert sorted(p.name for p in project.iterdir()) == ["admd2", "old"]


def test_data_check_reports_what_ultralytics_own_label_check_drops(dataset, capsys):
    label = dataset.parent / "labels" / "val" / "val_00001.txt"
    label.write_text("7 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3\n")  # class 7 of 5
    assert main(["data", "check", str(dataset)]) == 2
    out = capsys.readouterr().out
    assert f"  val: {dataset.parent / 'images' / 'val' / 'val_00001.jpg'}: Label class 7 exceeds dataset class count 5" \
        in out
