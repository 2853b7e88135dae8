from __future__ import annotations

import dataclasses
import re

import pytest

from admd_deploy.kd.config import DistillConfig, cache_form, start_defaults


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
    with pytest.raises(ValueError, match=r"unknown key\(s\) distill.lamda; valid keys: align_init, align_warmup_epochs, beta, levels, loss_weight, method"):
        DistillConfig.from_dict({"method": "admd", "teacher": "t.pt", "lamda": 2})


def test_config_round_trips_through_a_plain_dict():
    cfg = DistillConfig(method="admd", teacher="t.pt", params={"mask": "softmax", "tau": 0.5}, w_max=4.0, loss_weight=2.0)
    assert DistillConfig.from_dict(cfg.to_dict()) == cfg
    default = DistillConfig(method="admd", teacher="t.pt")  # loss_weight None comes back as the value it stands for
    assert DistillConfig.from_dict(default.to_dict()) == dataclasses.replace(default, loss_weight=0.25)


@pytest.mark.parametrize(("method", "mode"), [("admd", "adaptive"), ("cwd", "constant"), ("score_l2", "constant")])
def test_weight_schedule_defaults_to_adaptive_for_admd_only(method, mode):
    assert DistillConfig(method=method, teacher="t.pt").weighting()["mode"] == mode


def test_baseline_needs_no_teacher():
    assert DistillConfig(method="none").teacher is None


# bench kd and the pipeline's student stage hash to_dict() into their cache keys: its keys and values are pinned,
# so that a change here (a renamed or added knob, a changed default) is a deliberate one. A knob added later is
# hashed only away from its KEY_NEUTRAL value (cache_form), so that runs cached before it existed stay valid.
DEFAULT_DICT = {"method": "admd", "teacher": "t.pt", "loss_weight": 0.25, "params": {}, "weight": None, "beta": 0.99,
                "warmup_epochs": 1.0, "w_max": 10.0, "align_warmup_epochs": 1.0, "align_init": None,
                "ramp_epochs": 0.0, "levels": None, "unlabelled": None, "pseudo_conf": None}


def test_the_default_config_dict_has_the_keys_and_values_the_cache_keys_were_made_with():
    from admd_deploy.pipeline.ledger import stable_hash

    got = DistillConfig(method="admd", teacher="t.pt").to_dict()
    assert list(got) == list(DEFAULT_DICT) and got == DEFAULT_DICT
    assert stable_hash(cache_form(got)) == "e4238a975f50eba1e95c342f40cff33000c371392ff4f6fcf8b10559ae2eb76f"


def test_a_knob_added_later_is_hashed_only_away_from_the_value_that_trains_as_before():
    base = DistillConfig(method="admd", teacher="t.pt").to_dict()
    assert cache_form(base) == {k: v for k, v in base.items()
                                if k not in ("ramp_epochs", "align_init", "levels", "unlabelled", "pseudo_conf")}
    ramped = DistillConfig(method="admd", teacher="t.pt", ramp_epochs=2.0, align_init="lstsq", pseudo_conf=0.5).to_dict()
    assert cache_form(ramped)["ramp_epochs"] == 2.0 and cache_form(ramped)["align_init"] == "lstsq"
    assert cache_form(ramped)["pseudo_conf"] == 0.5
    assert DistillConfig.from_dict(base).ramp_epochs == 0.0 and DistillConfig.from_dict(ramped).ramp_epochs == 2.0


def test_align_init_left_unset_hashes_as_random_did():
    unset, random = (DistillConfig(method="admd", teacher="t.pt", align_init=a).to_dict() for a in (None, "random"))
    assert cache_form(unset) == cache_form(random)
    assert DistillConfig(method="admd", teacher="t.pt").align_init_mode == "random"


@pytest.mark.parametrize(("knobs", "trained", "expected"), [
    # a trained start: ADMD's fine-tuning defaults fill what is unset
    ({"method": "admd"}, True, {"method": "admd", "align_init": "lstsq", "weight": "constant", "levels": "P3,P4"}),
    ({"method": "admd", "align_init": None, "weight": None, "levels": None}, True,
     {"method": "admd", "align_init": "lstsq", "weight": "constant", "levels": "P3,P4"}),
    ({}, True, {"align_init": "lstsq", "weight": "constant", "levels": "P3,P4"}),  # method left unset is admd
    # what the user set is kept
    ({"method": "admd", "weight": "adaptive"}, True,
     {"method": "admd", "weight": "adaptive", "align_init": "lstsq", "levels": "P3,P4"}),
    ({"method": "admd", "levels": "P3,P4,P5"}, True,
     {"method": "admd", "levels": "P3,P4,P5", "align_init": "lstsq", "weight": "constant"}),
    ({"method": "admd", "align_init": "random"}, True, {"method": "admd", "align_init": "random"}),
    ({"method": "admd", "align_init": "lstsq", "weight": None}, True,
     {"method": "admd", "align_init": "lstsq", "weight": None}),
    # lstsq fits on the connector warm-up: without one, nothing changes
    ({"method": "admd", "align_warmup_epochs": 0}, True, {"method": "admd", "align_warmup_epochs": 0}),
    # from scratch, and the peers: nothing changes
    ({"method": "admd"}, False, {"method": "admd"}),
    ({"method": "mgd"}, True, {"method": "mgd"}),
    ({"method": "none"}, True, {"method": "none"}),
])
def test_start_defaults_fill_only_unset_knobs_of_a_trained_admd_start(knobs, trained, expected):
    before = dict(knobs)
    assert start_defaults(knobs, trained) == expected
    assert knobs == before  # a copy


def test_a_trained_admd_start_hashes_like_the_variant_it_was_measured_as():
    # The bench's `admd:align_init=lstsq:weight=constant:levels=P3+P4` runs are what the trained-start default trains.
    default = DistillConfig(teacher="t.pt", **start_defaults({"method": "admd"}, True)).to_dict()
    variant = DistillConfig(method="admd", teacher="t.pt", align_init="lstsq", weight="constant",
                            levels="P3+P4").to_dict()
    assert cache_form(default) == cache_form(variant)
    scratch = DistillConfig(teacher="t.pt", **start_defaults({"method": "admd"}, False)).to_dict()
    assert cache_form(scratch) == cache_form(DistillConfig(method="admd", teacher="t.pt").to_dict())


def test_knob_values_keep_the_type_they_were_given_so_cache_keys_do_not_move():
    # A bench variant `admd:w_max=3` has always been hashed with the int 3: the checks must not turn it into 3.0.
    assert DistillConfig(method="admd", teacher="t.pt", w_max=3).to_dict()["w_max"] == 3
    assert isinstance(DistillConfig(method="admd", teacher="t.pt", w_max=3).to_dict()["w_max"], int)


def test_knobs_without_a_teacher_are_checked_alone_and_give_the_dict_form_with_no_teacher():
    assert DistillConfig.knob_dict({"method": "cwd", "params": {"tau": 2.0}}) == {
        **DEFAULT_DICT, "method": "cwd", "teacher": None, "loss_weight": 5.0, "params": {"tau": 2.0}}
    with pytest.raises(ValueError, match=r"distill.beta must be in \[0, 1\) \(EMA factor, e.g. 0.99\); got 1.5"):
        DistillConfig.knob_dict({"beta": 1.5})
    with pytest.raises(ValueError, match=r"unknown key\(s\) distill.betta"):
        DistillConfig.knob_dict({"betta": 0.5})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"teacher": "t.pt", "beta": "0.9"}, "distill.beta must be a number; got str '0.9'"),
        ({"teacher": "t.pt", "w_max": True}, "distill.w_max must be a number; got bool True"),
        ({"teacher": "t.pt", "warmup_epochs": float("nan")}, "distill.warmup_epochs must be a finite number; got nan"),
        ({"teacher": "t.pt", "params": [1]}, "distill.params must be a mapping of loss parameters; got list"),
        ({"teacher": "t.pt", "weight": "constnt"}, "got 'constnt' (did you mean 'constant'?)"),
        ({"teacher": "t.pt", "align_warmup_epochs": -0.5},
         "distill.align_warmup_epochs must be >= 0 (0 = off); got -0.5"),
        ({"teacher": "t.pt", "align_init": "lsq"}, "got 'lsq' (did you mean 'lstsq'?)"),
        ({"teacher": "t.pt", "align_init": "lstsq", "align_warmup_epochs": 0},
         "distill.align_init 'lstsq' fits the connectors on the maps seen during the connector warm-up, but "
         "distill.align_warmup_epochs is 0: set align_warmup_epochs > 0 (e.g. 1) or align_init: random"),
        ({"method": "none", "pseudo_conf": 0.5}, "distill.pseudo_conf is set but method 'none' has no teacher to draw "
                                                 "pseudo-labels from"),
        ({"teacher": "t.pt", "pseudo_conf": 0.0}, "distill.pseudo_conf must be in (0, 1)"),
    ],
)
def test_a_wrong_type_or_value_is_refused_by_the_declared_rule_in_one_line(fields, message):
    with pytest.raises(ValueError) as err:
        DistillConfig(**fields)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_dict_form_names_the_loss_weight_that_runs_so_a_changed_default_changes_the_cache_key(monkeypatch):
    from admd_deploy.kd.registry import LOSSES
    from admd_deploy.pipeline.ledger import stable_hash

    assert DistillConfig(method="admd", teacher="t.pt").to_dict()["loss_weight"] == LOSSES["admd"].default_weight
    assert DistillConfig(method="admd", teacher="t.pt", loss_weight=2.0).to_dict()["loss_weight"] == 2.0
    assert DistillConfig(method="none").to_dict()["loss_weight"] is None  # no KD, no weight
    assert DistillConfig.knob_dict({"method": "pkd"})["loss_weight"] == 6.0
    before = stable_hash(DistillConfig(method="admd", teacher="t.pt").to_dict())
    monkeypatch.setattr(LOSSES["admd"], "default_weight", 1.0)
    after = DistillConfig(method="admd", teacher="t.pt").to_dict()
    assert after["loss_weight"] == 1.0 and stable_hash(after) != before


@pytest.mark.parametrize(("levels", "message"), [
    ("P3,P6x", "distill.levels must be comma-separated pyramid level names like P3,P4; got 'P3,P6x'"),
    ("", "distill.levels must be comma-separated pyramid level names like P3,P4; got ''"),
    ("P3,P3", "distill.levels names a level twice; got 'P3,P3'"),
])
def test_levels_are_checked_at_load(levels, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        DistillConfig(method="admd", teacher="t.pt", levels=levels)


def test_levels_become_one_flag_per_student_level_and_an_unknown_one_is_named():
    from admd_deploy.kd.config import level_mask

    assert level_mask(None, ["P3", "P4", "P5"]) == [True, True, True]
    assert level_mask(" P3, P4", ["P3", "P4", "P5"]) == [True, True, False]
    with pytest.raises(ValueError, match=r"distill.levels: P2 is not a level of this student \(its levels: P3, P4, "
                                         r"P5\); fix: name some of those, or remove levels to distil all"):
        level_mask("P2,P3", ["P3", "P4", "P5"])
    assert "levels" not in cache_form(DistillConfig(method="admd", teacher="t.pt").to_dict())
    assert cache_form(DistillConfig(method="admd", teacher="t.pt", levels="P3,P4").to_dict())["levels"] == "P3,P4"
    # one spelling per setting (a bench spec writes P3+P4): one cache key
    assert DistillConfig(method="admd", teacher="t.pt", levels=" P3+P4").to_dict()["levels"] == "P3,P4"
    assert DistillConfig.knob_dict({"method": "admd", "levels": "P3 + P4"})["levels"] == "P3,P4"


def test_the_student_alone_may_train_on_pseudo_labels_which_need_a_teacher():
    from admd_deploy.kd.config import check_knobs, uses_teacher

    check_knobs({"method": "none", "pseudo_conf": 0.5, "unlabelled": "/frames"})  # a recipe's knobs, no teacher yet
    cfg = DistillConfig(method="none", teacher="t.pt", pseudo_conf=0.5, unlabelled="/frames")
    assert (cfg.method, cfg.teacher, cfg.loss_weight) == ("none", "t.pt", None)
    assert [uses_teacher(m, c) for m, c in (("none", None), ("none", 0.5), ("admd", None))] == [False, True, True]
    with pytest.raises(ValueError, match="method 'none' has no KD term to run on them; remove it, pick a method "
                                         r"\(e.g. admd\), or set pseudo_conf"):
        check_knobs({"method": "none", "unlabelled": "/frames"})
