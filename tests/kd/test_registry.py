"""The loss registry: names, errors that say how to fix them, per-loss class attributes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from torch import nn

import admd_deploy.kd as distill
from admd_deploy.kd import LOSSES, available_methods, build_loss, register_loss

DEFAULT_WEIGHTS = {"admd": 0.25, "cwd": 5.0, "mgd": 2e-5, "mse": 1.0, "pkd": 6.0, "score_l2": 6.0}


@pytest.fixture
def scratch_name():
    """A loss name that is removed from the registry after the test."""
    name = "scratch_test_loss"
    yield name
    LOSSES.pop(name, None)


class ToyLoss(nn.Module):
    default_weight = 3.0
    needs_score = False

    def __init__(self, channels: int, gain: float = 1.0) -> None:
        super().__init__()
        self.channels, self.gain = channels, gain


def test_available_methods_are_the_six_losses_and_none():
    assert available_methods() == ["admd", "cwd", "mgd", "mse", "none", "pkd", "score_l2"]


def test_registering_a_taken_name_raises_and_keeps_the_original():
    original = LOSSES["mse"]
    with pytest.raises(ValueError, match="'mse' is already registered"):
        register_loss("mse")(ToyLoss)
    assert LOSSES["mse"] is original


def test_registering_the_same_new_name_twice_raises(scratch_name):
    register_loss(scratch_name)(ToyLoss)
    with pytest.raises(ValueError, match="already registered"):
        register_loss(scratch_name)(ToyLoss)


def test_none_is_reserved_for_the_student_trained_alone():
    with pytest.raises(ValueError, match="reserved"):
        register_loss("none")


def test_a_registered_loss_is_listed_and_built_with_its_params(scratch_name):
    register_loss(scratch_name)(ToyLoss)
    assert scratch_name in available_methods()
    loss = build_loss(scratch_name, 7, gain=2.0)
    assert isinstance(loss, ToyLoss) and (loss.channels, loss.gain) == (7, 2.0)


def test_registering_a_class_without_the_attributes_raises(scratch_name):
    class Bare(nn.Module):
        pass

    with pytest.raises(TypeError, match="default_weight"):
        register_loss(scratch_name)(Bare)
    assert scratch_name not in LOSSES


def test_unknown_method_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        build_loss("admdd", 8)
    assert str(err.value) == "distill.method must be one of admd, cwd, mgd, mse, none, pkd, score_l2; got 'admdd'"


def test_building_none_explains_that_the_student_trains_alone():
    with pytest.raises(ValueError, match="trains the student alone"):
        build_loss("none", 8)


@pytest.mark.parametrize(
    ("method", "bad", "valid"),
    [
        ("admd", "taux", "discrepancy, eps, mask, normalize, tau"),
        ("cwd", "temperature", "tau"),
        ("mgd", "alpha", "mask_ratio"),
        ("pkd", "tau", "eps"),
        ("mse", "tau", "(none)"),
    ],
)
def test_unknown_param_names_the_loss_the_key_and_the_valid_keys(method, bad, valid):
    with pytest.raises(ValueError) as err:
        build_loss(method, 8, **{bad: 1.0})
    message = str(err.value)
    assert f"'{method}'" in message and f"'{bad}'" in message and f"valid keys: {valid}" in message


@pytest.mark.parametrize(
    ("method", "params", "error", "words"),
    [
        ("admd", {"mask": "lin"}, ValueError, "mask must be one of linear, softmax, uniform"),
        ("admd", {"discrepancy": "l2"}, ValueError, "discrepancy must be one of mse, l1, cosine"),
        ("admd", {"tau": 0.0}, ValueError, "tau must be > 0"),
        ("admd", {"eps": -1.0}, ValueError, "eps must be > 0"),
        ("admd", {"tau": "1"}, TypeError, "tau must be a number"),
        ("cwd", {"tau": -1.0}, ValueError, "tau must be > 0"),
        ("cwd", {"tau": float("nan")}, ValueError, "tau must be finite"),
        ("mgd", {"mask_ratio": 1.5}, ValueError, r"mask_ratio must be in \[0, 1\]"),
        ("pkd", {"eps": 0.0}, ValueError, "eps must be > 0"),
    ],
)
def test_invalid_param_values_say_what_is_valid(method, params, error, words):
    with pytest.raises(error, match=words):
        build_loss(method, 8, **params)


@pytest.mark.parametrize("channels", [0, -4, 2.0, True])
def test_channels_must_be_a_positive_int(channels):
    with pytest.raises(ValueError, match="channels must be a positive int"):
        build_loss("mse", channels)


@pytest.mark.parametrize("method", sorted(DEFAULT_WEIGHTS))
def test_each_loss_declares_its_default_weight_and_whether_it_needs_scores(method):
    cls = LOSSES[method]
    assert cls.default_weight == DEFAULT_WEIGHTS[method]
    assert cls.needs_score is (method == "score_l2")
    loss = build_loss(method, 8)
    assert isinstance(loss, cls) and loss.channels == 8


def test_the_package_reexports_its_interface():
    names = {"build_loss", "register_loss", "available_methods", "LOSSES", "KDWeight", "build_align", "KDCriterion", "KDOutput"}
    assert names <= set(distill.__all__)
    assert all(hasattr(distill, name) for name in names)


def test_the_distillation_library_never_imports_ultralytics():
    root = Path(distill.__file__).parent
    files = [root / f for f in ("__init__.py", "registry.py", "align.py", "weighting.py", "criterion.py")]
    files += sorted((root / "losses").glob("*.py"))
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m.split(".")[0] == "ultralytics" for m in modules), f"{path.name} imports ultralytics"
