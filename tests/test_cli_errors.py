"""One error policy (issue 14, part 4).

The project's own validation errors exit 2 in one line; anything unexpected (a ValueError from inside
a library included) exits 1 with a one-line summary and the path of a log holding the traceback,
which ``-v`` also prints.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_deploy.cli import main
from admd_deploy.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = str(ROOT / "admd_deploy" / "recipes" / "quickstart.yaml")


@pytest.fixture()
def log_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("ADMD_DEPLOY_HOME", str(home))
    return home


def _library_value_error(*_args, **_kwargs):
    raise ValueError("shapes (3,) and (4,) not aligned")  # as numpy or torch would raise it


def test_a_value_error_from_inside_a_library_is_unexpected_exit_1_with_a_log(monkeypatch, capsys, log_home):
    monkeypatch.setattr("admd_deploy.recipe.load_recipe", _library_value_error)
    code = main(["recipe", "check", QUICKSTART])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "unexpected error: ValueError: shapes (3,) and (4,) not aligned; full traceback in " in err
    log = Path(re.search(r"full traceback in (\S+)", err).group(1))
    assert log.parent == log_home / "logs"
    assert "Traceback (most recent call last)" in log.read_text() and "_library_value_error" in log.read_text()


def test_verbose_prints_the_traceback_of_an_unexpected_error(monkeypatch, capsys, log_home):
    monkeypatch.setattr("admd_deploy.recipe.load_recipe", _library_value_error)
    assert main(["-v", "recipe", "check", QUICKSTART]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "_library_value_error" in err


def test_the_projects_own_validation_error_exits_2_and_verbose_shows_its_origin(capsys):
    assert main(["recipe", "check", QUICKSTART, "distill.epochs=0"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "admd-deploy recipe: error: distill.epochs must be >= 1 (an integer); got 0"
    assert main(["-v", "recipe", "check", QUICKSTART, "distill.epochs=0"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_recipe_errors_and_converter_errors_are_usage_errors():
    from admd_deploy.data._output import check_replaceable
    from admd_deploy.errors import MissingFileError, OutputExistsError
    from admd_deploy.schema import RecipeError

    assert issubclass(RecipeError, UsageError) and issubclass(MissingFileError, FileNotFoundError)
    assert issubclass(OutputExistsError, FileExistsError)
    with pytest.raises(OutputExistsError):
        check_replaceable(Path(__file__), "x")  # a file, not a folder


# --- a failed run names the real way to continue ---------------------------------------------------------------
def test_a_failed_stage_exits_1_naming_the_stage_the_log_and_how_to_continue(tmp_path, monkeypatch, capsys, log_home):
    def boom(ctx, out):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr("admd_deploy.pipeline.runner.PIPELINE", _pipeline_with_data(boom))
    out = tmp_path / "run"
    code = main(["run", QUICKSTART, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "stage 'data' failed: RuntimeError: disk on fire" in err
    assert "run the same command again" in err and "--from STAGE" in err and "--resume" not in err
    log = Path(re.search(r"traceback in (\S+?)\.? ", err).group(1))
    assert "disk on fire" in log.read_text()
    assert not out.exists()  # made by this command, no stage finished: not left behind half-made


def _pipeline_with_data(run):
    from dataclasses import replace

    from admd_deploy.pipeline.runner import PIPELINE

    return (replace(PIPELINE[0], run=run), *PIPELINE[1:])


def test_an_interrupted_run_says_to_run_the_same_command_not_resume(monkeypatch, capsys):
    def interrupted(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr("admd_deploy.pipeline.run_pipeline", interrupted)
    assert main(["run", QUICKSTART]) == 130
    err = capsys.readouterr().err
    assert "run the same command again to continue" in err and "--resume" not in err


def test_run_help_says_how_a_failed_run_continues(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "continues where it stopped when the same command is run again" in out and "--from STAGE" in out


# --- bench step-cost --method none ------------------------------------------------------------------------------
def test_step_cost_refuses_method_none_with_exit_2(capsys):
    assert main(["bench", "step-cost", "--method", "none"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--method: step-cost times a distilled step against the student alone" in err
    assert "Fix: pick a distillation method, e.g. --method admd" in err and len(err.splitlines()) == 1


def test_step_cost_refuses_an_image_size_the_recipe_refuses(capsys):
    assert main(["bench", "step-cost", "--imgsz", "250"]) == 2
    assert "--imgsz must be a multiple of 32" in capsys.readouterr().err


# --- the DOTA converter blames the user's image only when it does not decode --------------------------------------
def _dota_root(root: Path, image_bytes: bytes | None = None) -> Path:
    for split in ("train", "val"):
        img = root / split / "images" / "P0001.png"
        img.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(img), np.full((120, 160, 3), 90, np.uint8))
        if image_bytes is not None and split == "train":
            img.write_bytes(img.read_bytes()[:40] + image_bytes)  # a PNG header (size readable), broken data
        (root / split / "labelTxt").mkdir(parents=True, exist_ok=True)
        (root / split / "labelTxt" / "P0001.txt").write_text("10 10 40 10 40 30 10 30 plane 0\n")
    return root


def test_dota_reports_a_library_signature_change_as_unexpected_not_as_the_users_image(tmp_path, monkeypatch, capsys,
                                                                                      log_home):
    import ultralytics.data.split_dota as split_dota

    def changed_signature(anno, windows, window_objs, im_dir, lb_dir, allow_background_images):
        raise AssertionError("not reached")

    monkeypatch.setattr(split_dota, "crop_and_save", changed_signature)
    src = _dota_root(tmp_path / "DOTA")
    code = main(["data", "dota", str(src), str(tmp_path / "out"), "--crop-size", "64", "--gap", "16"])
    err = capsys.readouterr().err
    assert code == 1 and "unexpected error: TypeError" in err
    assert "cannot read image" not in err and "replace or remove it" not in err
    assert not (tmp_path / "out").exists()


def test_dota_blames_an_image_that_does_not_decode(tmp_path, capsys):
    src = _dota_root(tmp_path / "DOTA", image_bytes=b"\x00garbage")
    code = main(["data", "dota", str(src), str(tmp_path / "out"), "--crop-size", "64", "--gap", "16"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "cannot read image" in err and "P0001.png" in err and "Fix: replace or remove it" in err


def test_a_usage_error_is_always_printed_on_one_line(capsys):
    from admd_deploy.failure import report_failure

    assert report_failure("run", UsageError("data: bad\n  see the file\n"), verbose=False) == 2
    assert capsys.readouterr().err == "admd-deploy run: error: data: bad see the file\n"


def test_an_incompatible_teacher_student_pair_is_the_users_input_exit_2(capsys):
    from admd_deploy.errors import IncompatibleModelsError
    from admd_deploy.failure import report_failure

    assert report_failure("distill", IncompatibleModelsError("teacher levels P2-P5, student levels P3-P5"), False) == 2
    assert "error: teacher levels P2-P5, student levels P3-P5" in capsys.readouterr().err
