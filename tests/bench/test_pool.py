"""``bench pool``: paired deltas of several ``bench kd`` folders, each pair within its own folder, by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from admd_deploy.bench.kd import mixed_machine_pairs
from admd_deploy.bench.pool import load_source, pool, run_pool
from admd_deploy.bench.stats import RESOLVED_GAIN, TOO_FEW
from admd_deploy.cli import main
from admd_deploy.errors import UsageError

ADMD = {"method": "admd", "loss_weight": 0.25, "weight": None, "params": {}}


def run(m: float, sha: str, cpu: str | None = None) -> dict:
    r = {"map50": m + 0.2, "map50_95": m, "sha256": sha}
    if cpu:
        r["machine"] = {"cpu": cpu, "cores": 2}
    return r


def bench_folder(path, seeds, none, methods, teacher=0.70, configs=None, recipe=None, cpu=None):
    """A bench kd folder: ``none`` and each method's mAP50-95 per seed (sha256 from the folder and seed)."""
    path.mkdir(parents=True)
    runs = {"none": [run(v, f"{path.name}-none-{s}", cpu) for s, v in zip(seeds, none)]}
    for name, vals in methods.items():
        runs[name] = [run(v, f"{path.name}-{name}-{s}", cpu) for s, v in zip(seeds, vals)]
    cfgs = {"none": {"method": "none"}, **(configs or {name: ADMD for name in methods})}
    result = {"runs": runs, "seeds": seeds, "configs": cfgs, "teacher": {"map50": 0.9, "map50_95": teacher}}
    (path / "bench-kd.json").write_text(json.dumps(result))
    if recipe is not None:
        (path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    return path


RECIPE = {"name": "r", "seed": 0, "device": "cpu", "data": {"source": "synthetic", "synthetic": {"n_train": 300}},
          "distill": {"epochs": 50, "method": "admd"}}


def test_pairs_stay_within_a_folder_and_pool_by_config(tmp_path):
    # folder a: admd at default (spelled `admd`); folder b: the same config spelled out. Seeds overlap (0 in both):
    # a's seed 0 pairs with a's none, b's seed 0 with b's none, never across.
    a = bench_folder(tmp_path / "a", [0, 1], [0.50, 0.52], {"admd": [0.52, 0.535]}, teacher=0.60, recipe=RECIPE)
    b = bench_folder(tmp_path / "b", [0, 2], [0.40, 0.41], {"admd:loss_weight=0.25": [0.42, 0.43]}, teacher=0.50,
                     recipe={**RECIPE, "name": "other", "device": "0", "seed": 3})
    rows = pool([load_source(str(a)), load_source(str(b))])
    assert len(rows) == 1
    r = rows[0]
    assert r.method == "admd" and r.aliases == ("admd:loss_weight=0.25",)
    assert r.seeds == ("a:0", "a:1", "b:0", "b:2") and r.per_source == {"a": 2, "b": 2}
    assert r.deltas == pytest.approx((0.02, 0.015, 0.02, 0.02))
    mean, sd = 0.075 / 4, math.sqrt((3 * 0.00125 ** 2 + 0.00375 ** 2) / 3)
    assert r.mean == pytest.approx(mean) and r.std == pytest.approx(sd)
    half = 3.1824463 * sd / 2  # t(0.975, 3) * sd / sqrt(4)
    assert (r.ci_low, r.ci_high) == pytest.approx((mean - half, mean + half), abs=1e-7)
    assert r.verdict == RESOLVED_GAIN
    # gap: each pair against its own folder's gap: a 0.60 - 0.51 = 0.09 (twice), b 0.50 - 0.405 = 0.095 (twice)
    assert r.gap_closed == pytest.approx(0.075 / (2 * 0.09 + 2 * 0.095))


def test_one_name_with_two_configs_stays_two_methods(tmp_path):
    old = {**ADMD, "loss_weight": 1.0}
    a = bench_folder(tmp_path / "a", [0], [0.50], {"admd": [0.48]}, configs={"admd": old})
    b = bench_folder(tmp_path / "b", [0], [0.50], {"admd": [0.51]})
    rows = pool([load_source(str(a)), load_source(str(b))])
    assert sorted(r.method for r in rows) == ["admd (loss_weight 0.25)", "admd (loss_weight 1.0)"]
    assert all(r.verdict == TOO_FEW and len(r.seeds) == 1 for r in rows)


def test_a_knob_added_later_at_its_neutral_value_pools_with_a_folder_that_ran_before_it_existed(tmp_path):
    newer = {**ADMD, "align_init": "random", "ramp_epochs": 0.0}  # what a newer bench kd records for the same run
    a = bench_folder(tmp_path / "a", [0], [0.50], {"admd": [0.51]})
    b = bench_folder(tmp_path / "b", [1], [0.50], {"admd": [0.52], "admd:align_init=lstsq": [0.53]},
                     configs={"admd": newer, "admd:align_init=lstsq": {**newer, "align_init": "lstsq"}})
    rows = {r.method: r for r in pool([load_source(str(a)), load_source(str(b))])}
    assert sorted(rows) == ["admd", "admd:align_init=lstsq"]  # not "admd (...)" twice
    assert rows["admd"].seeds == ("a:0", "b:1") and rows["admd:align_init=lstsq"].seeds == ("b:1",)


def test_a_pair_copied_into_a_second_folder_counts_once(tmp_path):
    a = bench_folder(tmp_path / "a", [0], [0.50], {"admd": [0.52]})
    b = bench_folder(tmp_path / "b", [0, 1], [0.50, 0.49], {"admd": [0.52, 0.50]})
    data = json.loads((b / "bench-kd.json").read_text())  # b's seed 0 is a's run, copied
    data["runs"]["none"][0]["sha256"], data["runs"]["admd"][0]["sha256"] = "a-none-0", "a-admd-0"
    (b / "bench-kd.json").write_text(json.dumps(data))
    notes: list[str] = []
    rows = pool([load_source(str(a)), load_source(str(b))], notes=notes)
    assert rows[0].seeds == ("a:0", "b:1")
    assert notes == ["admd b:0 is the same pair of runs as a:0 (same weights); counted once"]


def test_different_recipes_are_refused_with_the_fields(tmp_path):
    a = bench_folder(tmp_path / "a", [0], [0.5], {"admd": [0.5]}, recipe=RECIPE)
    other = {**RECIPE, "distill": {"epochs": 8, "method": "admd"}}
    b = bench_folder(tmp_path / "b", [0], [0.5], {"admd": [0.5]}, recipe=other)
    with pytest.raises(UsageError, match=r"distill.epochs: 50 in a, 8 in b.*Pool only folders of one recipe"):
        run_pool([str(a), str(b)], tmp_path / "out")


def test_fields_allowed_to_differ_pool_and_are_listed(tmp_path, capsys):
    pre_a = {**RECIPE, "pretrain": {"epochs": 16}, "student": {"model": "/x/a/student.pt"}}
    pre_b = {**RECIPE, "pretrain": {"epochs": 12}, "student": {"model": "/y/b/student.pt"}}
    a = bench_folder(tmp_path / "a", [0], [0.50], {"admd": [0.52]}, recipe=pre_a)
    b = bench_folder(tmp_path / "b", [0], [0.40], {"admd": [0.41]}, recipe=pre_b)
    out = tmp_path / "out"
    # refused without --allow, and the message names the --allow that accepts exactly these fields
    assert main(["bench", "pool", str(a), str(b), "--out", str(out)]) == 2
    assert "--allow pretrain.epochs,student.model" in capsys.readouterr().err and not out.exists()
    # a section allows its fields; an allowed field does not allow another one
    with pytest.raises(UsageError, match=r"student.model: '/x/a/student.pt' in a, '/y/b/student.pt' in b"):
        run_pool([str(a), str(b)], out, allow=["pretrain", "student.mod"])
    assert main(["bench", "pool", str(a), str(b), "--allow", "pretrain, student.model", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| admd | 2 | a:0 +2.00, b:0 +1.00 | +1.50 ± 0.71 |" in text
    assert "- allowed to differ: pretrain.epochs: 16 in a, 12 in b" in text
    assert "- allowed to differ: student.model: '/x/a/student.pt' in a, '/y/b/student.pt' in b" in text


@pytest.mark.parametrize("specs, match", [
    (["{a}"], "at least two"),
    (["{a}", "a={b}"], "share a label"),
    (["{a}", "{tmp}/nowhere"], "nowhere; give a `bench kd` output folder \\(with bench-kd.json\\)"),
])
def test_bad_sources_say_what_to_do(tmp_path, specs, match):
    a = bench_folder(tmp_path / "a", [0], [0.5], {"admd": [0.5]})
    b = bench_folder(tmp_path / "b", [0], [0.5], {"admd": [0.5]})
    with pytest.raises(UsageError, match=match):
        run_pool([s.format(a=a, b=b, tmp=tmp_path) for s in specs], tmp_path / "out")


def test_a_json_that_bench_kd_did_not_write_is_refused(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"rows": []}))
    with pytest.raises(UsageError, match="has no runs, seeds, configs: not written by `admd-deploy bench kd`"):
        load_source(str(tmp_path / "x.json"))


def test_the_command_writes_the_table_json_and_plot(tmp_path, capsys):
    a = bench_folder(tmp_path / "a", [0, 1], [0.50, 0.52], {"admd": [0.52, 0.535]}, cpu="EPYC", recipe=RECIPE)
    bench_folder(tmp_path / "b", [0], [0.40], {"admd": [0.42]}, cpu="Xeon")
    out = tmp_path / "pooled"
    assert main(["bench", "pool", str(a), f"xeon={tmp_path / 'b' / 'bench-kd.json'}", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| a | EPYC | [0, 1] | 70.0 | 51.0 |" in text and "| xeon | Xeon | [0] | 70.0 | 40.0 |" in text
    assert "| admd | 3 | a:0 +2.00, a:1 +1.50, xeon:0 +2.00 | +1.83 ± 0.29 |" in text
    assert "xeon: no recipe.yaml beside bench-kd.json; its data and schedule were not checked" in text
    saved = json.loads((out / "bench-kd-pooled.json").read_text())
    assert saved["pooled"][0]["seeds"] == ["a:0", "a:1", "xeon:0"] and (out / "bench-kd-pooled.png").stat().st_size > 0


def test_bench_kd_flags_a_pair_trained_on_two_machines():
    runs = {"none": [run(0.5, "n0", "EPYC"), run(0.5, "n1", "EPYC"), run(0.5, "n2")],
            "admd": [run(0.5, "a0", "EPYC"), run(0.5, "a1", "Xeon"), run(0.5, "a2", "Xeon")]}
    # seed 1: another CPU than its baseline; seed 2: the baseline recorded no machine, so it is not judged
    assert mixed_machine_pairs(runs, [0, 1, 2]) == ["admd/seed1"]


def test_the_command_exits_2_with_the_fix_for_one_folder(tmp_path, capsys):
    a = bench_folder(tmp_path / "a", [0], [0.5], {"admd": [0.5]})
    assert main(["bench", "pool", str(a), "--out", str(tmp_path / "out")]) == 2
    assert "give at least two `bench kd` folders" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything is written


def _tables(text: str) -> list[str]:
    """A pooled table's lines but its notes (``- ...``: which recipes were checked depends on whether a
    ``recipe.yaml`` sits beside the inputs, as in a run folder, or not, as in ``benchmarks/results``)."""
    return [line for line in text.splitlines() if not line.startswith("- ")]


@pytest.mark.parametrize("inputs, pooled", [
    (("epyc=bench-kd-scratch-2seeds.json", "xeon=bench-kd-scratch-xeon.json"), "bench-kd-scratch-pooled.md"),
    (("epyc=bench-kd-pretrained-eval.json", "xeon=bench-kd-pretrained-eval-xeon.json"), "bench-kd-pretrained-pooled.md"),
    (("eval=bench-kd-pretrained-eval-xeon-all.json", "eval2=bench-kd-pretrained-eval2-xeon.json"),
     "bench-kd-pretrained-splits-pooled.md"),
    (("eval=bench-kd-pretrained-eval-xeon-all.json", "eval2=bench-kd-pretrained-eval2-xeon.json",
      "eval3=bench-kd-pretrained-eval3-xeon.json"), "bench-kd-pretrained-splits3-pooled.md"),
    (("eval=bench-kd-pretrained-eval-xeon-all.json", "eval2=bench-kd-pretrained-eval2-xeon.json",
      "eval3=bench-kd-pretrained-eval3-xeon.json", "eval4=bench-kd-pretrained-eval4-amd.json"),
     "bench-kd-pretrained-splits4-pooled.md"),
    (("xeon=bench-kd-pretrained-tune-xeon-n100.json", "amd=bench-kd-pretrained-tune-amd-n100.json"),
     "bench-kd-pretrained-tune-n100-pooled.md"),
    (("s1=bench-kd-pretrained-tune-amd-unl900.json", "s6=bench-kd-pretrained-tune6-amd-unl900.json"),
     "bench-kd-pretrained-tune-unl900-pooled.md"),
])
def test_the_committed_pooled_table_is_what_bench_pool_computes_from_the_committed_runs(tmp_path, inputs, pooled):
    results = Path(__file__).resolve().parents[2] / "benchmarks" / "results"
    specs = [f"{label}={results / name}" for label, name in (s.split("=") for s in inputs)]
    run_pool(specs, tmp_path)
    computed, committed = (tmp_path / "bench-kd-pooled.md").read_text(), (results / pooled).read_text()
    assert _tables(computed) == _tables(committed)
    assert "| admd" in committed and len(_tables(committed)) > 12  # a real table, not an empty file


def test_machine_facts_name_this_machine():
    import os

    from admd_deploy.bench.machine import machine_facts

    facts = machine_facts()
    assert facts["cores"] == os.cpu_count() and facts["cpu"].strip() and facts["torch"][0].isdigit()
