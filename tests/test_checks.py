"""The shared input checks: one definition of each value, used by the recipe, the CLI flags and the API."""

from __future__ import annotations

import pytest

from admd_deploy import checks
from admd_deploy.errors import UsageError


@pytest.mark.parametrize(("value", "near"), [(250, "224 or 256"), (20, "32"), (100, "96 or 128"), (1000, "992 or 1024")])
def test_an_image_size_off_the_stride_is_refused_with_the_nearest_valid_sizes(value, near):
    with pytest.raises(UsageError, match=f"Fix: use {near}$"):
        checks.image_size("imgsz", value)


@pytest.mark.parametrize("value", [32, 64, 640, 1024])
def test_an_image_size_on_the_stride_is_accepted(value):
    assert checks.image_size("imgsz", value) == value


@pytest.mark.parametrize(("value", "normalised"), [("cpu", "cpu"), ("CPU", "cpu"), (0, "0"), ("0,1", "0,1"),
                                                   ([0, 1], "0,1"), ("cuda:0", "cuda:0"), ("mps", "mps")])
def test_devices_ultralytics_accepts_are_normalised_to_one_string(value, normalised):
    assert checks.device("device", value) == normalised


@pytest.mark.parametrize("value", ["gpu", "cuda", "0;1", -1, True, "", [0, "a"]])
def test_other_devices_are_refused_naming_the_valid_forms(value):
    with pytest.raises(UsageError, match="device must be cpu, mps or CUDA GPU indices such as 0 or 0,1"):
        checks.device("device", value)


def test_an_unknown_ultralytics_argument_lists_the_close_ones():
    with pytest.raises(UsageError, match=r"^lr is not an Ultralytics training argument; did you mean 'lrf'\? "
                                         r"\(also close: 'lr0'\); see `yolo cfg`"):
        checks.train_arg("lr", "lr")
    checks.train_arg("nbs", "nbs")  # a real one passes


def test_a_checkpoint_without_a_model_is_refused(tmp_path):
    import torch

    torch.save({"epoch": 3}, tmp_path / "x.pt")
    with pytest.raises(UsageError, match=r"teacher.weights: .*x.pt holds no Ultralytics model"):
        checks.checkpoint_task("teacher.weights", tmp_path / "x.pt")


def test_a_data_yaml_is_not_a_model_yaml(tmp_path):
    data = tmp_path / "data.yaml"
    data.write_text("train: images\nval: images\nnames: {0: a}\n")
    with pytest.raises(UsageError, match="is not a model YAML \\(no 'head' section\\)"):
        checks.yaml_task("student.model", str(data))
