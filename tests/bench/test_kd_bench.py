"""admd-deploy bench kd: aggregation by hand, and a tiny resumable run end to end."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from admd_deploy.bench.kd import aggregate, distill_config, parse_method_spec, run_kd_bench, sctx_name
from admd_deploy.errors import UsageError
from admd_deploy.pipeline.context import Context
from admd_deploy.recipe import load_recipe


def test_aggregate_gives_mean_std_and_the_gap_closed_against_the_baseline_mean():
    runs = {
        "none": [{"map50": 0.5, "map50_95": 0.30, "sec_per_epoch": 1.0}, {"map50": 0.5, "map50_95": 0.34, "sec_per_epoch": 1.0}],
        "admd": [{"map50": 0.6, "map50_95": 0.40, "sec_per_epoch": 2.0}, {"map50": 0.6, "map50_95": 0.44, "sec_per_epoch": 2.0}],
    }
    rows = {r.method: r for r in aggregate(runs, teacher_map50_95=0.52)}
    assert rows["admd"].map50_95 == pytest.approx(0.42) and rows["admd"].map50_95_std == pytest.approx(0.0282843, abs=1e-6)
    assert rows["admd"].gap_closed == pytest.approx((0.42 - 0.32) / (0.52 - 0.32))  # 50%
    assert rows["none"].gap_closed == pytest.approx(0.0) and rows["admd"].seconds_per_epoch == 2.0


def test_a_method_spec_carries_knobs_and_loss_parameters():
    assert parse_method_spec("cwd") == ("cwd", {})
    assert parse_method_spec("admd:weight=constant:params.mask=uniform:loss_weight=2") == (
        "admd", {"weight": "constant", "params.mask": "uniform", "loss_weight": 2})
    assert sctx_name("admd:params.mask=uniform", 3) == "admd-params.mask-uniform/seed3"
    assert sctx_name("score_l2", 0) == "score_l2/seed0"


@pytest.mark.parametrize("spec, message", [
    ("admdd", "unknown method 'admdd'"),
    ("admd:mask=uniform", "unknown knob 'mask'; valid: align_init, align_warmup_epochs, beta, levels, loss_weight, pseudo_conf, ramp_epochs, w_max, warmup_epochs, weight, "
     "params.<name>"),
    ("admd:weight", "is not KEY=VALUE"),
    ("none:loss_weight=2", "takes no knobs"),
])
def test_a_wrong_method_spec_names_the_problem(spec, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.").replace("<", ".").replace(">", ".")):
        parse_method_spec(spec)


def test_variants_apply_on_the_recipes_knobs_and_are_validated(tmp_path):
    recipe = _tiny_recipe(tmp_path, distill={"loss_weight": 3.0, "w_max": 5.0})
    plain = distill_config(recipe, "admd", "t.pt")
    assert plain["loss_weight"] == 3.0 and plain["w_max"] == 5.0 and plain["params"] == {}
    ablated = distill_config(recipe, "admd:weight=constant:params.mask=uniform", "t.pt")
    assert {**ablated, "weight": None, "params": {}} == plain  # nothing else changes
    assert ablated["weight"] == "constant" and ablated["params"] == {"mask": "uniform"}
    peer = distill_config(recipe, "cwd:params.tau=2", "t.pt")
    assert peer["loss_weight"] == 5.0 and peer["params"] == {"tau": 2}  # peers keep their own defaults (CWD's 5)
    with pytest.raises(ValueError, match="admd:params.mask=round"):
        distill_config(recipe, "admd:params.mask=round", "t.pt")
    with pytest.raises(ValueError, match="w_max must be >= 1"):
        distill_config(recipe, "admd:w_max=0.5", "t.pt")
    with pytest.raises(ValueError, match="listed twice"):
        run_kd_bench(recipe, ["admd", "admd"], [0], tmp_path / "b")


@pytest.mark.slow
def test_a_tiny_bench_writes_its_table_and_a_rerun_trains_nothing(tmp_path, monkeypatch):
    recipe = _tiny_recipe(tmp_path)
    result = run_kd_bench(recipe, ["admd", "cwd", "none"], [0], tmp_path / "bench")
    assert [r["method"] for r in result["rows"]] == ["admd", "cwd", "none"]
    md = (tmp_path / "bench" / "bench-kd.md").read_text()
    assert "| admd | 1 |" in md and "| none | 1 |" in md and "| teacher |" in md
    saved = json.loads((tmp_path / "bench" / "bench-kd.json").read_text())
    assert saved["runs"]["cwd"][0]["sec_per_epoch"] > 0
    assert saved["runs"]["cwd"][0]["machine"]["cores"] == os.cpu_count()  # where it trained, for `bench pool`
    assert (tmp_path / "bench" / "bench-kd.png").stat().st_size > 5000
    assert (tmp_path / "bench" / "admd-kd-curves.png").is_file()

    from admd_deploy.pipeline import training

    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(training, "train", no_training)
    again = run_kd_bench(recipe, ["admd", "cwd", "none"], [0], tmp_path / "bench")
    assert again["rows"] == result["rows"]


def test_a_trained_student_start_runs_admd_with_its_fine_tuning_defaults(tmp_path, stand_in_checkpoint):
    from admd_deploy.bench.kd import student_stages
    from admd_deploy.pipeline.context import Context
    from admd_deploy.pipeline.ledger import Ledger, stable_hash

    scratch = _tiny_recipe(tmp_path)
    assert not scratch.student_starts_trained
    assert distill_config(scratch, "admd", "t.pt")["align_init"] is None  # trains as before: random, adaptive
    stand_in_checkpoint(tmp_path / "student.pt")
    recipe = _tiny_recipe(tmp_path, student="student.pt")
    assert recipe.student_starts_trained
    plain = distill_config(recipe, "admd", "t.pt")
    assert (plain["align_init"], plain["weight"], plain["levels"]) == ("lstsq", "constant", "P3,P4")
    assert distill_config(recipe, "admd:weight=adaptive", "t.pt")["weight"] == "adaptive"  # a named knob wins
    assert distill_config(recipe, "admd:align_init=random", "t.pt")["weight"] is None
    assert distill_config(recipe, "mgd", "t.pt")["align_init"] is None  # the peers: as measured, unchanged
    # The default trains what the benchmark measured as admd:align_init=lstsq:weight=constant: one cache key.
    ctx = Context(recipe=recipe, run_dir=tmp_path, ledger=Ledger(tmp_path))
    teacher = {"weights": "/nowhere/teacher.pt", "sha256": "a" * 64}
    keys = {s.name: stable_hash(s.inputs(ctx)) for s in
            student_stages(recipe, ["admd", "admd:align_init=lstsq:weight=constant:levels=P3+P4"], [0], teacher)}
    assert keys["admd/seed0"] == keys["admd-align_init-lstsq-weight-constant-levels-P3-P4/seed0"]


def test_a_pretrain_section_means_a_trained_student_start(tmp_path):
    recipe = _tiny_recipe(tmp_path, extra={"pretrain": {"epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8}})
    assert recipe.student_starts_trained and recipe.student.model.endswith(".yaml")
    assert distill_config(recipe, "admd", "t.pt")["align_init"] == "lstsq"


def _tiny_recipe(tmp_path, distill=None, student="yolo11n-obb.yaml", extra=None):
    data = {
        "name": "tinybench", "task": "obb",
        "data": {"source": "synthetic", "synthetic": {"n_train": 16, "n_val": 8, "imgsz": 128, "max_objects": 4}},
        "teacher": {"model": "yolo11s-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
        "student": {"model": student},
        "distill": {"method": "admd", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0,
                    **(distill or {})},
        **(extra or {}),
    }
    path = tmp_path / "tiny.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


# --- the stages of bench kd run through the pipeline's runner (no training: a stand-in train) ----------------
# Ledger keys written by `bench kd` before it moved onto the pipeline's runner (computed with that code, commit
# e02921c): a changed key retrains every cached benchmark run, so a change here must be deliberate. The KD runs'
# keys changed once on purpose (2026-12-06): the key names the loss weight that runs (ADMD's default went from 1
# to 0.25), so a run cached at the old default is trained again; the baseline's keys did not change. The baseline's
# keys changed once on purpose (2026-12-07): they leave out the teacher it never sees, so a new teacher reuses them.
PINNED_KEYS = {
    "data": "1de915c282c50f98b3353ace61ef829585c081db30e2f22d2830c98f45b02219",
    "pretrain": "b86c8ad9a72841ba209d28dccc2e16b35e92522d6d46717658aebb2d1070a705",
    "teacher_eval": "080b5dca52f75fbd738cd9537474f016adc085db735ec7b495f5518088c92854",
    "admd/seed0": "06af7ed9bc84b9812824f1390263c8be3814287e96964e31b3983b8396c9e925",
    "admd/seed1": "1893bde65215cc78c50c8c382bfc84fd5fadad15adaefabb1dd892d93b2f6e0b",
    "admd-weight-constant/seed0": "bdc77d89de65cf7b651fb836460b480a38e0678a76bc2e346b47b769d38822db",
    "admd-weight-constant/seed1": "04766a8191bd3e83d8c3d8843a178c0db880c5d040a05ba89332c54bc2d22746",
    "cwd/seed0": "ad90d501ea7f6a22cbe043e715cf98efd97fb899f53563b3b027147b01ab6759",
    "cwd/seed1": "5284fb7cf17673e013d8d8430770e3d7c92f9f29894443133d776393fee45efd",
    "none/seed0": "be490621dc4364c7dfc5509dc8610453a210d871fc37291bd5490393689dbee2",
    "none/seed1": "6222384ad832e63f9b010374a5110c0384eda279e227ced4a4f282aef013e957",
}


def test_the_ledger_keys_of_a_fixed_tiny_bench_are_the_ones_cached_runs_were_written_with(tmp_path):
    from admd_deploy.bench.kd import UPSTREAM, student_stages, teacher_eval_stage
    from admd_deploy.pipeline.context import Context
    from admd_deploy.pipeline.ledger import Ledger, stable_hash
    from admd_deploy.pipeline.runner import PIPELINE

    recipe = _tiny_recipe(tmp_path)
    ledger = Ledger(tmp_path)
    for name, outputs in (("data", {"data_yaml": "/nowhere/data.yaml", "fingerprint": "f" * 64}),
                          ("pretrain", {"skipped": "no pretrain section"}),
                          ("teacher", {"weights": "/nowhere/teacher.pt", "sha256": "a" * 64, "trained": True})):
        ledger.start(name, "k")
        ledger.finish(name, outputs)
    ctx = Context(recipe=recipe, run_dir=tmp_path, ledger=ledger)
    teacher = ctx.out("teacher")
    stages = [s for s in PIPELINE if s.name in UPSTREAM and s.name != "teacher"] + [teacher_eval_stage(recipe, teacher)]
    stages += student_stages(recipe, ["admd", "admd:weight=constant", "cwd", "none"], [0, 1], teacher)
    assert {s.name: stable_hash(s.inputs(ctx)) for s in stages} == PINNED_KEYS


def test_a_new_teacher_reruns_the_kd_runs_and_keeps_the_baselines(tmp_path):
    from admd_deploy.bench.kd import student_stages
    from admd_deploy.pipeline.context import Context
    from admd_deploy.pipeline.ledger import Ledger, stable_hash

    recipe = _tiny_recipe(tmp_path)
    ctx = Context(recipe=recipe, run_dir=tmp_path, ledger=Ledger(tmp_path))

    def keys(sha):
        teacher = {"weights": "/nowhere/teacher.pt", "sha256": sha}
        return {s.name: stable_hash(s.inputs(ctx)) for s in student_stages(recipe, ["admd", "cwd", "none"], [0], teacher)}

    old, new = keys("a" * 64), keys("b" * 64)
    assert [n for n in old if old[n] == new[n]] == ["none/seed0"]


class StandIn:
    """``training.train`` and ``val_metrics`` without training: each call is counted, each checkpoint distinct."""

    def __init__(self, monkeypatch, fail_on: str | None = None, error: BaseException | None = None):
        from admd_deploy.bench import kd
        from admd_deploy.pipeline import training

        self.trained: list[str] = []
        self.resumed: dict[str, bool] = {}
        self.fail_on, self.error = fail_on, error
        monkeypatch.setattr(training, "train", self.train)
        monkeypatch.setattr(kd, "val_metrics", self.val)

    def train(self, ctx, stage, out, model, settings, distill, data_yaml=None):
        from admd_deploy.pipeline.ledger import file_sha256

        self.resumed[stage] = ctx.resumable
        if stage == self.fail_on:
            raise self.error
        self.trained.append(stage)
        run = out / "train"
        (run / "weights").mkdir(parents=True, exist_ok=True)
        best = run / "weights" / "best.pt"
        best.write_text(f"{stage} {ctx.recipe.seed} {distill['method']}")
        (run / "results.csv").write_text("epoch,time\n1,2.0\n2,4.0\n")
        return {"weights": str(best), "sha256": file_sha256(best), "run_dir": str(run),
                "results_csv": str(run / "results.csv")}

    def val(self, weights, data_yaml, imgsz, batch, device):
        score = 0.2 + (sum(map(ord, open(weights).read())) % 50) / 200  # distinct per checkpoint, fixed per content
        return {"map50": score + 0.2, "map50_95": score}


class Recorder(StandIn):
    """:class:`StandIn` that also keeps the distill settings each run was trained with (``seen[stage]``)."""

    def __init__(self, monkeypatch):
        super().__init__(monkeypatch)
        self.seen: dict[str, dict] = {}

    def train(self, ctx, stage, out, model, settings, distill, data_yaml=None):
        self.seen[stage] = distill
        return super().train(ctx, stage, out, model, settings, distill, data_yaml)


def test_a_second_bench_with_the_same_settings_skips_every_stage(tmp_path, monkeypatch, capsys):
    from admd_deploy.pipeline.ledger import Ledger

    stand_in = StandIn(monkeypatch)
    recipe = _tiny_recipe(tmp_path)
    first = run_kd_bench(recipe, ["admd", "none"], [0, 1], tmp_path / "bench")
    assert stand_in.trained == ["teacher", "admd/seed0", "admd/seed1", "none/seed0", "none/seed1"]
    assert first["runs"]["none"][1]["sec_per_epoch"] == 2.0 and first["teacher"]["map50_95"] > 0
    layout = sorted(str(p.relative_to(tmp_path / "bench")) for p in (tmp_path / "bench").glob("*"))
    assert layout == ["admd", "admd-kd-curves.png", "bench-kd-paired.png", "bench-kd.json", "bench-kd.md", "bench-kd.png",
                      "data", "ledger.json", "none", "pretrain", "recipe.yaml", "teacher", "teacher_eval"]
    assert (tmp_path / "bench" / "admd" / "seed1" / "train" / "weights" / "best.pt").is_file()
    capsys.readouterr()

    again = run_kd_bench(recipe, ["admd", "none"], [0, 1], tmp_path / "bench")
    assert stand_in.trained == ["teacher", "admd/seed0", "admd/seed1", "none/seed0", "none/seed1"]  # nothing more
    records = Ledger(tmp_path / "bench").records
    assert sorted(records) == sorted(["data", "pretrain", "teacher", "teacher_eval", "admd/seed0", "admd/seed1",
                                      "none/seed0", "none/seed1", "report"])
    assert capsys.readouterr().out.count("up to date, skipped") == len(records)
    assert again["rows"] == first["rows"] and again["paired"] == first["paired"]

    (tmp_path / "bench" / "bench-kd.md").unlink()  # a deleted table is written again, nothing trained
    run_kd_bench(recipe, ["admd", "none"], [0, 1], tmp_path / "bench")
    assert (tmp_path / "bench" / "bench-kd.md").read_text().startswith("# KD comparison: tinybench")
    assert len(stand_in.trained) == 5


class CurveStandIn(StandIn):
    """As :class:`StandIn`, with a results.csv that holds a validation mAP50-95 per epoch: admd leads by 0.04 at
    epoch 2 and by 0.01 at the end (3 epochs) on every seed."""

    CURVES = {"none": [0.30, 0.40, 0.50], "admd": [0.30, 0.44, 0.51]}

    def train(self, ctx, stage, out, model, settings, distill, data_yaml=None):
        rec = super().train(ctx, stage, out, model, settings, distill, data_yaml)
        curve = [v + 0.01 * ctx.recipe.seed for v in self.CURVES[distill["method"]]]
        rows = "".join(f"{e + 1},{2.0 * (e + 1)},{v}\n" for e, v in enumerate(curve))
        Path(rec["results_csv"]).write_text("epoch, time, metrics/mAP50-95(B)\n" + rows)
        return rec


def test_the_report_pairs_the_training_curves_epoch_by_epoch(tmp_path, monkeypatch):
    CurveStandIn(monkeypatch)
    result = run_kd_bench(_tiny_recipe(tmp_path), ["none", "admd"], [0, 1], tmp_path / "bench")
    (curve,) = result["paired_curves"]
    assert curve["method"] == "admd" and curve["seeds"] == [0, 1] and curve["epochs"] == [1, 2, 3]
    assert curve["mean"] == pytest.approx([0.0, 0.04, 0.01])
    assert (curve["lead"], curve["lead_epoch"], curve["final"]) == (pytest.approx(0.04), 2, pytest.approx(0.01))
    text = (tmp_path / "bench" / "bench-kd.md").read_text()
    assert "## During training" in text and "| admd | 2 | +0.00, +4.00, +1.00 | +4.00 (2) | +1.00 |" in text
    assert (tmp_path / "bench" / "bench-kd-paired-curves.png").stat().st_size > 10_000


def test_a_failed_run_keeps_the_finished_ones_and_the_rerun_trains_only_what_is_left(tmp_path, monkeypatch):
    from admd_deploy.pipeline.ledger import Ledger
    from admd_deploy.pipeline.runner import StageFailed

    stand_in = StandIn(monkeypatch, fail_on="none/seed0", error=RuntimeError("out of memory"))
    recipe = _tiny_recipe(tmp_path)
    with pytest.raises(StageFailed, match="stage 'none/seed0' failed: RuntimeError: out of memory") as failed:
        run_kd_bench(recipe, ["admd", "none"], [0], tmp_path / "bench")
    assert failed.value.log == tmp_path / "bench" / "none" / "seed0" / "error.txt" and failed.value.log.is_file()
    records = Ledger(tmp_path / "bench").records
    assert records["none/seed0"].status == "failed" and records["none/seed0"].error == "RuntimeError: out of memory"
    assert all(records[s].status == "done" for s in ("data", "teacher", "teacher_eval", "admd/seed0"))
    assert "report" not in records and not (tmp_path / "bench" / "bench-kd.md").exists()

    stand_in.fail_on = None
    run_kd_bench(recipe, ["admd", "none"], [0], tmp_path / "bench")
    assert stand_in.trained == ["teacher", "admd/seed0", "none/seed0"]  # admd/seed0 was not trained again
    assert stand_in.resumed["none/seed0"] is True  # the same inputs: an interrupted training would resume
    assert "| none | 1 |" in (tmp_path / "bench" / "bench-kd.md").read_text()


def test_an_interrupted_bench_records_it_and_the_rerun_continues_that_run(tmp_path, monkeypatch):
    from admd_deploy.pipeline.ledger import Ledger

    stand_in = StandIn(monkeypatch, fail_on="admd/seed1", error=KeyboardInterrupt())
    recipe = _tiny_recipe(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        run_kd_bench(recipe, ["admd"], [0, 1], tmp_path / "bench")
    rec = Ledger(tmp_path / "bench").records["admd/seed1"]
    assert (rec.status, rec.error) == ("failed", "interrupted")
    stand_in.fail_on = None
    run_kd_bench(recipe, ["admd"], [0, 1], tmp_path / "bench")
    assert stand_in.trained == ["teacher", "admd/seed0", "admd/seed1"]
    assert stand_in.resumed == {"teacher": False, "admd/seed0": False, "admd/seed1": True}


def test_a_failed_bench_run_exits_1_naming_the_stage_and_its_traceback(tmp_path, monkeypatch, capsys):
    from admd_deploy.cli import main

    StandIn(monkeypatch, fail_on="admd/seed0", error=RuntimeError("CUDA error"))
    _tiny_recipe(tmp_path)
    code = main(["bench", "kd", str(tmp_path / "tiny.yaml"), "--methods", "admd", "--seeds", "0",
                 "--out", str(tmp_path / "bench")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "stage 'admd/seed0' failed: RuntimeError: CUDA error" in err
    assert str(tmp_path / "bench" / "admd" / "seed0" / "error.txt") in err
    assert "run the same command again" in err and "--from" not in err  # bench kd has no --from


def test_an_interrupted_bench_command_exits_130_and_says_how_to_continue(tmp_path, monkeypatch, capsys):
    from admd_deploy.cli import main

    StandIn(monkeypatch, fail_on="admd/seed0", error=KeyboardInterrupt())
    _tiny_recipe(tmp_path)
    code = main(["bench", "kd", str(tmp_path / "tiny.yaml"), "--methods", "admd", "--seeds", "0",
                 "--out", str(tmp_path / "bench")])
    assert code == 130
    assert "admd-deploy bench: interrupted; run the same command again to continue" in capsys.readouterr().err


def test_unlabelled_images_reach_the_kd_runs_keyed_by_content_and_leave_the_baselines_alone(tmp_path, monkeypatch):
    from admd_deploy.bench.kd import student_stages
    from admd_deploy.pipeline.ledger import Ledger, stable_hash

    seen = Recorder(monkeypatch).seen
    plain = _tiny_recipe(tmp_path / "a")
    recipe = _tiny_recipe(tmp_path / "b", extra={"data": {**plain.to_dict()["data"], "unlabelled": 5}})
    report = run_kd_bench(recipe, ["admd", "none"], [0], tmp_path / "bench")
    data = Ledger(tmp_path / "bench").outputs("data")
    folder = Path(data["unlabelled"])
    assert data["unlabelled_images"] == 5 and len(list(folder.glob("*.jpg"))) == 5
    assert seen["admd/seed0"]["unlabelled"] == str(folder) and "unlabelled" not in seen["none/seed0"]
    assert report["runs"]["admd"][0]["map50_95"] > 0

    def keys(r, fingerprint):
        ledger = Ledger(tmp_path / f"keys-{fingerprint}")
        outputs = {"data_yaml": "/nowhere/data.yaml", "fingerprint": "f" * 64}
        if fingerprint:
            outputs.update(unlabelled="/nowhere/unlabelled", unlabelled_fingerprint=fingerprint)
        ledger.start("data", "k")
        ledger.finish("data", outputs)
        ctx = Context(recipe=r, run_dir=tmp_path, ledger=ledger)
        teacher = {"weights": "/nowhere/teacher.pt", "sha256": "a" * 64}
        return {s.name: stable_hash(s.inputs(ctx)) for s in student_stages(r, ["admd", "none"], [0], teacher)}

    without, with_1, with_2 = keys(plain, None), keys(recipe, "1" * 16), keys(recipe, "2" * 16)
    assert with_1["none/seed0"] == without["none/seed0"] == with_2["none/seed0"]
    assert len({without["admd/seed0"], with_1["admd/seed0"], with_2["admd/seed0"]}) == 3  # by content, not path


def test_pseudo_labelled_runs_get_the_unlabelled_images_and_the_teacher_and_the_baseline_stays_as_it_was(
        tmp_path, monkeypatch):
    seen = Recorder(monkeypatch).seen
    plain = _tiny_recipe(tmp_path / "a")
    with pytest.raises(UsageError, match="none:pseudo_conf=0.5 pseudo-label the unlabelled images, but the recipe has "
                                         "no data.unlabelled"):
        run_kd_bench(plain, ["none", "none:pseudo_conf=0.5"], [0], tmp_path / "refused")
    recipe = _tiny_recipe(tmp_path / "b", extra={"data": {**plain.to_dict()["data"], "unlabelled": 5}})
    methods = ["none", "none:pseudo_conf=0.5", "admd:pseudo_conf=0.5"]
    run_kd_bench(recipe, methods, [0], tmp_path / "bench")
    assert seen["none/seed0"] == {"method": "none"}  # the baseline: no teacher, no images, its old key
    alone = seen["none-pseudo_conf-0.5/seed0"]
    assert (alone["method"], alone["pseudo_conf"], alone["teacher"]) == ("none", 0.5, seen["admd-pseudo_conf-0.5/seed0"]["teacher"])
    assert alone["teacher"] and alone["unlabelled"] == seen["admd-pseudo_conf-0.5/seed0"]["unlabelled"]
    assert seen["admd-pseudo_conf-0.5/seed0"]["pseudo_conf"] == 0.5

    from admd_deploy.bench.kd import student_stages
    from admd_deploy.pipeline.ledger import Ledger, stable_hash

    ctx = Context(recipe=recipe, run_dir=tmp_path / "bench", ledger=Ledger(tmp_path / "bench"))

    def keys(sha):
        teacher = {"weights": "/nowhere/teacher.pt", "sha256": sha}
        return {s.name: stable_hash(s.inputs(ctx)) for s in student_stages(recipe, methods, [0], teacher)}

    old, new = keys("a" * 64), keys("b" * 64)
    assert [n for n in old if old[n] == new[n]] == ["none/seed0"]  # the pseudo-labelled student alone has a teacher


def test_the_baseline_takes_no_knob_but_pseudo_conf():
    with pytest.raises(UsageError, match="takes no knobs but pseudo_conf"):
        parse_method_spec("none:pseudo_conf=0.5:weight=constant")
    assert parse_method_spec("none:pseudo_conf=0.5") == ("none", {"pseudo_conf": 0.5})
