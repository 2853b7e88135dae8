"""Bad input is refused before work starts: exit 2, one line naming the field, the valid values and the fix.

Issue 14, part 3: ``recipe check`` used to say "valid" for each of these, and ``distill`` / ``export``
accepted them or ended in a traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from admd_deploy.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "admd_deploy" / "recipes" / "quickstart.yaml")


def _refused(capsys, argv: list[str]) -> str:
    """Run the CLI, assert exit 2 with one line on stderr and no traceback; return that line."""
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def _missing_folders_data(tmp_path: Path) -> Path:
    data = tmp_path / "data.yaml"
    data.write_text("train: images/train\nval: images/val\nnames: {0: a}\n")  # root: the YAML's folder
    return data


# --- recipe check ---------------------------------------------------------------------------------------------
def test_recipe_check_still_says_valid_for_the_quickstart(capsys):
    assert main(["recipe", "check", QUICKSTART]) == 0
    assert "valid (obb, admd" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("student.model=yolo11q-obb.yaml", "student.model: model YAML not found: yolo11q-obb.yaml"),
        ("student.model=yolo11n.yaml", "student.model: yolo11n.yaml is a detect model but task is obb. Fix: set task "
                                       "to detect, or pass an OBB model such as yolo11n-obb.yaml"),
        ("teacher.model=yolo11s.yaml", "teacher.model: yolo11s.yaml is a detect model but task is obb"),
        ("device=gpu", "device must be cpu, mps or CUDA GPU indices such as 0 or 0,1; got 'gpu'. Fix: use 0 (the "
                       "first CUDA GPU), 0,1 (two GPUs) or cpu"),
        ("gates.int8_map_drop=-1", "gates.int8_map_drop must be >= 0"),
        ("gates.parity_atol=-0.001", "gates.parity_atol must be >= 0"),
        ("distill.imgsz=250", "distill.imgsz must be a multiple of 32 (the models' largest stride; Ultralytics would "
                              "round 250 silently); got 250. Fix: use 224 or 256"),
        ("teacher.imgsz=20", "teacher.imgsz must be a multiple of 32"),
        ("export.imgsz=300", "export.imgsz must be a multiple of 32"),
        ("distill.batch=0", "distill.batch must be >= 1"),
        ("teacher={}", "teacher: method 'admd' needs a teacher"),
    ],
)
def test_recipe_check_refuses_what_would_fail_later(capsys, override, message):
    err = _refused(capsys, ["recipe", "check", QUICKSTART, override])
    assert message in err


def test_recipe_check_refuses_method_none_without_a_teacher_instead_of_a_key_error_later(capsys):
    err = _refused(capsys, ["recipe", "check", QUICKSTART, "distill.method=none", "teacher={}"])
    assert "distill.method: 'none' without a teacher" in err and "Fix: set a method" in err


def test_a_cuda_device_given_as_an_integer_or_a_list_is_accepted_and_normalised(tmp_path):
    from admd_deploy.recipe import load_recipe

    assert load_recipe(QUICKSTART, ["device=0"]).device == "0"
    assert load_recipe(QUICKSTART, ["device=[0, 1]"]).device == "0,1"


def test_recipe_check_refuses_a_teacher_pt_that_is_a_text_file(tmp_path, capsys, stand_in_checkpoint):
    fake = tmp_path / "teacher.pt"
    fake.write_text("this is not a checkpoint\n")
    err = _refused(capsys, ["recipe", "check", QUICKSTART, f"teacher={{weights: {fake}}}"])
    assert f"teacher.weights: {fake} is not a PyTorch checkpoint" in err
    real = stand_in_checkpoint(tmp_path / "real.pt", "obb")  # the same recipe with a real checkpoint is valid
    assert main(["recipe", "check", QUICKSTART, f"teacher={{weights: {real}}}"]) == 0


def test_recipe_check_refuses_a_teacher_checkpoint_of_the_other_task(tmp_path, capsys, stand_in_checkpoint):
    det = stand_in_checkpoint(tmp_path / "det.pt", "detect")
    err = _refused(capsys, ["recipe", "check", QUICKSTART, f"teacher={{weights: {det}}}"])
    assert "teacher.weights: det.pt is a detect model but task is obb" in err


def test_recipe_check_refuses_a_data_yaml_whose_folders_are_missing(tmp_path, capsys):
    data = _missing_folders_data(tmp_path)
    err = _refused(capsys, ["recipe", "check", QUICKSTART, f"data={{source: yolo, path: {data}}}"])
    assert f"data.path: {data}: train images not found at {tmp_path / 'images' / 'train'}" in err
    assert "Fix: correct 'path' or 'train' in the data YAML" in err


def test_recipe_check_refuses_dota_data_under_task_detect(capsys, tmp_path, stand_in_checkpoint):
    err = _refused(capsys, ["recipe", "check", QUICKSTART, "task=detect", "student.model=yolo11n.yaml",
                            "teacher.model=yolo11s.yaml", f"data={{source: dota, path: {tmp_path}}}"])
    assert "data.source 'dota' gives oriented boxes" in err and "Fix: set task: obb" in err


# --- distill flags: the recipe's checks of the same values -------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--batch", "0"], "--batch must be >= 1 (an integer); got 0"),
        (["--imgsz", "-64"], "--imgsz must be >= 1 (an integer); got -64"),
        (["--imgsz", "250"], "--imgsz must be a multiple of 32"),
        (["--epochs", "0"], "--epochs must be >= 1"),
        (["--device", "gpu"], "--device must be cpu, mps or CUDA GPU indices"),
        (["--train-arg", "foo=1"], "--train-arg foo is not an Ultralytics training argument"),
        (["--train-arg", "lr00=0.1"], "--train-arg lr00 is not an Ultralytics training argument; did you mean 'lr0'?"),
    ],
)
def test_distill_refuses_flags_the_recipe_refuses(tmp_path, capsys, obb_data, flags, message):
    project = tmp_path / "runs"
    err = _refused(capsys, ["distill", "--student", "yolo11n-obb.yaml", "--teacher", "yolo11s-obb.yaml",
                            "--data", str(obb_data), "--project", str(project), *flags])
    assert message in err
    assert not project.exists()  # refused before Ultralytics made a run folder


def test_distill_refuses_task_detect_for_an_obb_student(tmp_path, capsys, obb_data):
    project = tmp_path / "runs"
    err = _refused(capsys, ["distill", "--student", "yolo11n-obb.yaml", "--teacher", "yolo11s-obb.yaml",
                            "--data", str(obb_data), "--task", "detect", "--project", str(project)])
    assert "student: yolo11n-obb.yaml is a obb model but task is detect. Fix: set task to obb" in err
    assert not project.exists()


def test_distill_refuses_a_data_yaml_whose_folders_are_missing(tmp_path, capsys):
    data = _missing_folders_data(tmp_path)
    err = _refused(capsys, ["distill", "--student", "yolo11n.yaml", "--teacher", "yolo11s.yaml", "--data", str(data),
                            "--project", str(tmp_path / "runs")])
    assert "data: " in err and "train images not found at" in err


def test_distill_refuses_a_device_this_machine_does_not_have(tmp_path, capsys, obb_data, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    err = _refused(capsys, ["distill", "--student", "yolo11n-obb.yaml", "--teacher", "yolo11s-obb.yaml",
                            "--data", str(obb_data), "--device", "0", "--project", str(tmp_path / "runs")])
    assert "device is 0 but this machine has no CUDA GPU. Fix: use cpu" in err


# --- export ---------------------------------------------------------------------------------------------------
def test_export_refuses_an_unreadable_checkpoint_and_leaves_no_folder(tmp_path, capsys, obb_data):
    weights = tmp_path / "best.pt"
    weights.write_bytes(b"\x00" * 64)
    out = tmp_path / "export"
    err = _refused(capsys, ["export", str(weights), "--data", str(obb_data), "--out", str(out)])
    assert f"weights: {weights} is not a PyTorch checkpoint" in err
    assert not out.exists()


def test_export_refuses_a_bad_imgsz_flag(tmp_path, capsys, obb_data, stand_in_checkpoint):
    weights = stand_in_checkpoint(tmp_path / "best.pt", "obb")
    err = _refused(capsys, ["export", str(weights), "--data", str(obb_data), "--imgsz", "100",
                            "--out", str(tmp_path / "export")])
    assert "--imgsz must be a multiple of 32" in err and "Fix: use 96 or 128" in err
