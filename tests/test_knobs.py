"""One owner per knob: DistillConfig declares each distillation knob once; the CLI flags, the recipe's distill
section (and its reference), the distill() keywords and the checks of KDWeight / KDCriterion all derive from it."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from admd_deploy.cli import add_knob_arguments, build_parser, main
from admd_deploy.kd.config import DistillConfig, check_knob, knob, knob_docs, knob_fields, knob_signature, with_knobs
from admd_deploy.recipe import DistillSection, Recipe, TrainSettings, load_recipe
from admd_deploy.schema import RecipeError, load

ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = ROOT / "recipes" / "quickstart.yaml"
KNOBS = [f.name for f in knob_fields()]


def _distill_parser() -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["distill"]


# --------------------------------------------------------------------------------------------- the sets agree
def test_the_distill_command_has_one_flag_per_knob_named_as_before():
    group = next(g for g in _distill_parser()._action_groups if g.title == "distillation")
    flags = {a.dest: a.option_strings for a in group._group_actions}
    assert list(flags) == KNOBS
    assert flags == {"method": ["--method"], "teacher": ["--teacher"], "loss_weight": ["--loss-weight"],
                     "params": ["--param"], "weight": ["--weight"], "beta": ["--beta"],
                     "warmup_epochs": ["--warmup-epochs"], "w_max": ["--w-max"],
                     "align_warmup_epochs": ["--align-warmup-epochs"], "align_init": ["--align-init"],
                     "ramp_epochs": ["--ramp-epochs"], "levels": ["--levels"], "unlabelled": ["--unlabelled"],
                     "pseudo_conf": ["--pseudo-conf"]}


def test_the_recipe_distill_section_has_every_knob_but_the_teacher_with_the_declared_defaults():
    own = {f.name for f in dataclasses.fields(TrainSettings)} | {"baseline"}
    section = [f for f in dataclasses.fields(DistillSection) if f.name not in own]
    assert [f.name for f in section] == [k for k in KNOBS if k not in ("teacher", "unlabelled")]  # data.unlabelled
    defaults = DistillSection()
    for f in knob_fields(recipe=True):
        assert getattr(defaults, f.name) == getattr(DistillConfig(teacher="t.pt"), f.name), f.name


def test_the_python_api_takes_every_knob_as_a_keyword_and_documents_it():
    from admd_deploy.api import distill

    params = inspect.signature(distill).parameters
    assert list(params)[:4] == ["teacher", "student", "data", "method"]
    for name in KNOBS:
        assert name in params, name
        assert f"        {name}: " in distill.__doc__ or name == "teacher", name
    for name in set(KNOBS) - {"teacher", "method"}:
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY and params[name].default is None


# --------------------------------------------------------------------------------------------- a new knob
@dataclass(frozen=True)
class WithGamma(DistillConfig):
    gamma: float = knob(0.5, low=0, note="0 = off", help="A knob added in one place.")


@dataclass
@with_knobs(WithGamma)
class SectionWithGamma(DistillSection):
    pass


@dataclass
class RecipeWithGamma(Recipe):
    distill: SectionWithGamma = field(default_factory=SectionWithGamma)


def test_a_knob_declared_once_appears_as_a_flag_with_its_type_and_help():
    parser = argparse.ArgumentParser()
    add_knob_arguments(parser, WithGamma)
    assert parser.parse_args(["--gamma", "2"]).gamma == 2.0
    assert parser.parse_args([]).gamma is None  # unset: the declared default applies downstream
    assert "A knob added in one place. (default 0.5)" in " ".join(parser.format_help().split())


def test_a_knob_declared_once_is_checked_by_its_declared_bounds_everywhere():
    message = "distill.gamma must be >= 0 (0 = off); got -1.0"
    with pytest.raises(ValueError, match=r"^distill\.gamma must be >= 0 \(0 = off\); got -1\.0$"):
        check_knob("gamma", -1.0, spec=WithGamma)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        WithGamma(method="none", gamma=-1.0)
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load(SectionWithGamma, {"gamma": -1.0}, "distill")


def test_a_knob_declared_once_is_a_recipe_key_that_reaches_the_config_and_the_reference(recipe_reference):
    section = load(SectionWithGamma, {"gamma": 2, "method": "cwd"}, "distill")
    assert section.gamma == 2.0 and section.config("t.pt") == WithGamma(method="cwd", teacher="t.pt", gamma=2.0)
    assert load(SectionWithGamma, {}, "distill").gamma == 0.5
    text = recipe_reference.render(RecipeWithGamma)
    assert "| `gamma` | number | `0.5` | `>= 0` | A knob added in one place. |" in text


def test_a_knob_declared_once_is_a_keyword_of_the_python_api_with_its_docs():
    from admd_deploy.api import distill

    sig = knob_signature(distill, "method", WithGamma)
    assert sig.parameters["gamma"].kind is inspect.Parameter.KEYWORD_ONLY and sig.parameters["gamma"].default is None
    assert "gamma: A knob added in one place. Default: ``0.5``." in knob_docs(spec=WithGamma)


# --------------------------------------------------------------------------------------------- one validator
@pytest.mark.parametrize(("knob_name", "arg", "value"), [("beta", "beta", 1.0), ("beta", "beta", "x"),
                                                         ("warmup_epochs", "warmup_epochs", -1.0),
                                                         ("w_max", "w_max", 0.5), ("weight", "mode", "expo")])
def test_kd_weight_refuses_what_the_recipe_refuses_with_the_same_words(knob_name, arg, value):
    from admd_deploy.kd import KDWeight

    with pytest.raises(ValueError) as recipe_err:
        DistillConfig(method="admd", teacher="t.pt", **{knob_name: value})
    with pytest.raises(ValueError) as library_err:
        KDWeight(**{arg: value})
    assert str(library_err.value).removeprefix(f"KDWeight: {arg}") == str(recipe_err.value).removeprefix(
        f"distill.{knob_name}")


@pytest.mark.parametrize(("name", "value"), [("align_warmup_epochs", -1.0), ("loss_weight", 0.0), ("loss_weight", "2")])
def test_kd_criterion_refuses_what_the_recipe_refuses_with_the_same_message(name, value):
    from admd_deploy.kd import KDCriterion

    with pytest.raises(ValueError) as recipe_err:
        DistillConfig(method="admd", teacher="t.pt", **{name: value})
    with pytest.raises(ValueError) as library_err:
        KDCriterion("admd", [4, 8], [8, 8], **{name: value})
    assert str(library_err.value) == str(recipe_err.value)


def test_the_weight_modes_are_listed_once_in_the_package():
    sources = [p.read_text() for p in (ROOT / "admd_deploy").rglob("*.py")]
    assert sum(s.count('"adaptive", "constant", "linear"') for s in sources) == 1


# --------------------------------------------------------------------------------------------- no placeholders
def test_knobs_are_checked_without_a_placeholder_teacher():
    sources = {p: p.read_text() for p in (ROOT / "admd_deploy").rglob("*.py")}
    assert not [p for p, s in sources.items() if "placeholder.pt" in s]
    assert DistillSection(method="cwd", params={"tau": 2.0}).knobs()["params"] == {"tau": 2.0}
    with pytest.raises(RecipeError, match="distill.params: .*'taux'"):
        load_recipe(QUICKSTART, ["distill.params={taux: 1}"])


def test_a_baseline_config_is_legal_without_a_teacher_and_a_distilling_one_is_not():
    assert DistillConfig(method="none").to_dict()["teacher"] is None
    with pytest.raises(ValueError, match="distill.teacher is required for method 'cwd'"):
        DistillConfig(method="cwd")


def test_bench_kd_checks_its_method_list_before_a_teacher_exists_with_the_same_knobs(tmp_path):
    from admd_deploy.bench.kd import distill_config

    recipe = load_recipe(QUICKSTART)
    for spec in ("admd", "cwd:params.tau=2", "admd:weight=constant:w_max=3", "none"):
        later = distill_config(recipe, spec, "/runs/teacher.pt")
        assert distill_config(recipe, spec, None) == {**later, **({"teacher": None} if "teacher" in later else {})}
    with pytest.raises(ValueError, match="w_max must be >= 1"):
        distill_config(recipe, "admd:w_max=0.5", None)


# The cache keys of the pipeline's student stage and of bench kd, as the code before the knob spec made them
# (computed on commit e02921c): finished runs must stay cached. The KD keys changed once on purpose (2026-12-06): they
# name the loss weight that runs, and ADMD's default went from 1 to 0.25; the baseline's key ("none") did not.
STUDENT_KEY = "0141f408916373b09ec79ce68976ba2929f5a15e3ffcea0a8ef9319135575313"
BENCH_KEYS = {
    "admd": "5284f9ebf252edbbc9781906f9f80f1b83ed1352f2ee9a4cd4490721e0468868",
    "cwd:params.tau=2": "2f4302c4a0a23ccb494067d41826e8aeb0408a2dc49813e2752941d3d73871b2",
    "admd:weight=constant:params.mask=uniform:w_max=3": "9a2b83b3b49a24f6b69b1833b985762a3b9a411ac02ff8ac67adb5429242116e",
    "none": "9cc44150cb22763fd0114e7738394a6a06117e559fb7ba9f789497b999a060e8",
    "mgd": "db82092078190fe2150e025b983f25444171ec2ab04a120ffa8f22c09cb3beaf",
}


def test_the_distill_settings_in_the_cache_keys_are_what_they_were(monkeypatch):
    from admd_deploy.bench.kd import distill_config
    from admd_deploy.kd.config import cache_form
    from admd_deploy.pipeline import training
    from admd_deploy.pipeline.ledger import stable_hash

    recipe = load_recipe(QUICKSTART)
    monkeypatch.setattr(training, "student_common", lambda ctx: {})  # the data and schedule parts are not ours
    ctx = types.SimpleNamespace(recipe=recipe, out=lambda stage: {})
    assert stable_hash(training.student_inputs(ctx)) == STUDENT_KEY
    got = {spec: stable_hash(cache_form(distill_config(recipe, spec, "/runs/teacher/weights/best.pt")))
           for spec in BENCH_KEYS}
    assert got == BENCH_KEYS


def test_the_pipeline_keys_a_pretrained_admd_student_by_the_settings_it_trains_with(monkeypatch):
    from admd_deploy.kd.config import DistillConfig, cache_form
    from admd_deploy.pipeline import training

    recipe = load_recipe(ROOT / "recipes" / "bench-kd-pretrained.yaml")  # a pretrain section: a trained start
    monkeypatch.setattr(training, "student_common", lambda ctx: {})
    ctx = types.SimpleNamespace(recipe=recipe, out=lambda stage: {})
    variant = DistillConfig(method="admd", teacher="teacher.pt", align_init="lstsq", weight="constant",
                            levels="P3,P4").to_dict()
    assert training.student_inputs(ctx)["distill"] == cache_form(variant)
    config = recipe.distill.config("teacher.pt", trained=recipe.student_starts_trained)  # what run_student trains
    assert (config.align_init_mode, config.weight_mode, config.levels) == ("lstsq", "constant", "P3,P4")


# --------------------------------------------------------------------------------------------- CLI to API
def test_the_cli_hands_only_the_knobs_it_was_given_to_distill(tmp_path, monkeypatch, capsys):
    import admd_deploy.api as api

    seen = {}

    def fake_distill(teacher, student, data, **kwargs):
        seen.update(kwargs, teacher=teacher)
        return api.DistillResult(save_dir=tmp_path, best=tmp_path / "best.pt", last=tmp_path / "last.pt")

    monkeypatch.setattr(api, "distill", fake_distill)
    code = main(["distill", "--student", "yolo11n.yaml", "--data", "d.yaml", "--w-max", "4", "--param", "tau=0.5",
                 "--param", "mask=softmax", "--project", str(tmp_path)])
    assert code == 0, capsys.readouterr().err
    knobs = {k: v for k, v in seen.items() if k in KNOBS}
    assert knobs == {"teacher": None, "w_max": 4.0, "params": {"tau": 0.5, "mask": "softmax"}}


def test_a_train_arg_named_like_a_knob_is_refused_naming_the_knobs_flag(capsys):
    code = main(["distill", "--student", "yolo11n.yaml", "--data", "d.yaml", "--train-arg", "warmup_epochs=3"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--train-arg warmup_epochs: in distill, warmup_epochs is the distillation knob --warmup-epochs" in err


def test_the_python_api_refuses_a_knob_of_the_wrong_type_before_anything_runs(tmp_path):
    from admd_deploy.api import distill

    with pytest.raises(ValueError, match="^distill.beta must be a number; got str '0.9'$"):
        distill(None, "yolo11n.yaml", tmp_path / "missing.yaml", "none", beta="0.9")


def test_the_readmes_knob_table_names_each_knob_by_its_recipe_key_and_flag():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Knobs", 1)[1].split("\n\n", 2)[1]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]
    for f in knob_fields(recipe=True):
        flag = f.metadata["knob"].cli_flag(f.name)
        assert any(key.startswith((f"`{f.name}`", f"`{f.name}:")) and f"`{flag}" in cli for _, key, cli, _ in rows), f.name


@pytest.mark.parametrize(("student", "expected"), [("student.pt", ("lstsq", "constant", "P3,P4")),
                                                  ("yolo11n-obb.yaml", (None, None, None))])
def test_the_python_api_gives_a_trained_admd_student_its_fine_tuning_defaults(tmp_path, monkeypatch, stand_in_checkpoint,
                                                                               student, expected):
    import admd_deploy.data.check
    import admd_deploy.ultra.trainer
    from admd_deploy import api, checks

    seen = {}

    class Captured(RuntimeError):
        pass

    def trainer_for_task(task):
        def make(overrides):
            seen.update(overrides["distill"])
            raise Captured

        return make

    monkeypatch.setattr(admd_deploy.ultra.trainer, "trainer_for_task", trainer_for_task)
    monkeypatch.setattr(admd_deploy.data.check, "require_clean", lambda *a, **k: None)
    monkeypatch.setattr(checks, "task_matches", lambda *a, **k: "obb")
    if student.endswith(".pt"):
        student = str(stand_in_checkpoint(tmp_path / student))
    (tmp_path / "data.yaml").write_text("path: .\n")
    with pytest.raises(Captured):
        api.distill(str(stand_in_checkpoint(tmp_path / "t.pt")), student, tmp_path / "data.yaml", "admd",
                    project=str(tmp_path / "runs"))
    assert (seen["align_init"], seen["weight"], seen["levels"]) == expected
