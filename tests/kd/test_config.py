from __future__ import annotations

import pytest

from admd_deploy.kd.config import DistillConfig


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"method": "admdd", "teacher": "t.pt"}, "distill.method must be one of admd, cwd, mgd, mse, none, pkd, score_l2; got 'admdd'"),
        ({"method": "admd"}, "distill.teacher is required"),
        ({"teacher": "t.onnx"}, "local .pt checkpoint or a model .yaml"),
        ({"teacher": "t.pt", "weight": "expo"}, "distill.weight must be one of adaptive, constant, linear"),
        ({"teacher": "t.pt", "beta": 1.0}, r"distill.beta must be in \[0, 1\)"),
        ({"teacher": "t.pt", "w_max": 0.5}, "distill.w_max must be >= 1"),
        ({"teacher": "t.pt", "warmup_epochs": -1}, "distill.warmup_epochs must be >= 0"),
        ({"teacher": "t.pt", "loss_weight": 0}, "distill.loss_weight must be > 0"),
        ({"teacher": "t.pt", "params": {"mask": "gaussian"}}, "mask"),
        ({"teacher": "t.pt", "params": {"taux": 1.0}}, "taux"),
        ({"method": "none", "params": {"tau": 1.0}}, "method 'none' has no loss"),
    ],
)
def test_invalid_settings_fail_at_load_naming_the_field(fields, message):
    with pytest.raises(ValueError, match=message):
        DistillConfig(**fields)


def test_unknown_key_lists_the_valid_keys():
    with pytest.raises(ValueError, match=r"unknown key\(s\) distill.lamda; valid keys: align_warmup_epochs, beta, loss_weight, method"):
        DistillConfig.from_dict({"method": "admd", "teacher": "t.pt", "lamda": 2})


def test_config_round_trips_through_a_plain_dict():
    cfg = DistillConfig(method="admd", teacher="t.pt", params={"mask": "softmax", "tau": 0.5}, w_max=4.0)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(("method", "mode"), [("admd", "adaptive"), ("cwd", "constant"), ("score_l2", "constant")])
def test_weight_schedule_defaults_to_adaptive_for_admd_only(method, mode):
    assert DistillConfig(method=method, teacher="t.pt").weighting()["mode"] == mode


def test_baseline_needs_no_teacher():
    assert DistillConfig(method="none").teacher is None
