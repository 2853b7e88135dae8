"""``admd-deploy bench kd``: every method x seed on one recipe's data, teacher and schedule.

The teacher is trained once (or taken from the recipe); each student run trains with the same data,
schedule and seed as the others, under its own ledger record ``<method>/seed<k>``, so a finished run
is never repeated and an interrupted one resumes from its ``last.pt``. Every step is a stage of the
pipeline's runner (:mod:`admd_deploy.pipeline.runner`): the same ledger, skipping, resuming and failure
handling as ``admd-deploy run``. The table reports mAP50 and
mAP50-95 per method (mean and sample standard deviation over seeds), the share of the
teacher-baseline gap closed ``(student - baseline) / (teacher - baseline)``, and seconds per epoch.
A second table pairs every method's seed ``k`` with the baseline's seed ``k`` (:mod:`.stats`): the
per-seed deltas, their mean, standard deviation and 95% t interval, and a verdict (resolved gain / no
resolved difference / resolved loss). A third pairs the runs epoch by epoch (each run's per-epoch validation
mAP50-95 from its ``results.csv`` minus the baseline's of the same seed): the largest mean lead, its epoch, and
the end.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import math
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from admd_deploy.bench import stats
from admd_deploy.bench.machine import machine_facts
from admd_deploy.pipeline import runner, training
from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.evaluate import protocol, val_metrics
from admd_deploy.pipeline.ledger import Ledger
from admd_deploy.pipeline.runner import Stage
from admd_deploy.recipe import Recipe, save_recipe
from admd_deploy.errors import UsageError

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class MethodRow:
    method: str
    seeds: int
    map50: float
    map50_std: float
    map50_95: float
    map50_95_std: float
    gap_closed: float | None
    seconds_per_epoch: float


def parse_method_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """Split a method spec ``METHOD[:KEY=VALUE[:KEY=VALUE...]]`` into the method and its overrides.

    Keys are :class:`~admd_deploy.kd.config.DistillConfig` fields (``loss_weight``, ``weight``,
    ``beta``, ``warmup_epochs``, ``w_max``) or loss parameters as ``params.NAME``; values are YAML
    scalars. E.g. ``admd:weight=constant`` (ADMD without its weight-increasing module),
    ``admd:params.mask=uniform``, ``admd:loss_weight=2:w_max=3``.

    Raises:
        ValueError: an unknown method or key, a part without ``=``, or a variant of ``none``.
    """
    from admd_deploy.kd.config import DistillConfig
    from admd_deploy.kd.registry import available_methods

    method, *parts = [p.strip() for p in spec.strip().split(":")]
    if method not in available_methods():
        raise UsageError(f"--methods: unknown method {method!r} in {spec!r}; valid: {', '.join(available_methods())}")
    if method == "none" and any(not p.startswith("pseudo_conf=") for p in parts):
        raise UsageError(f"--methods: {spec!r}: method 'none' (the baseline) takes no knobs but pseudo_conf (the "
                         "student alone on the labelled and the teacher-labelled images), e.g. none:pseudo_conf=0.5")
    fields = sorted(f.name for f in dataclasses.fields(DistillConfig)
                    if f.name not in {"method", "teacher", "params", "unlabelled"})  # unlabelled: data.unlabelled
    overrides: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise UsageError(f"--methods: {spec!r}: {part!r} is not KEY=VALUE; e.g. admd:weight=constant")
        if key not in fields and not (key.startswith("params.") and len(key) > len("params.")):
            raise UsageError(f"--methods: {spec!r}: unknown knob {key!r}; valid: {', '.join(fields)}, params.<name>")
        overrides[key] = yaml.safe_load(value)
    return method, overrides


def distill_config(recipe: Recipe, spec: str, teacher: str | None) -> dict[str, Any]:
    """The recipe's own method keeps its recipe knobs; the peers run with their published defaults.

    Knobs in the spec (``admd:weight=constant``) are applied on top; the result is validated (without a
    teacher, ``None``, before the teacher has trained: the knobs alone).
    """
    from admd_deploy.kd.config import DistillConfig, start_defaults

    method, overrides = parse_method_spec(spec)
    if method == "none" and not overrides:
        return {"method": "none"}  # the baseline: its key is the one it has always had
    own = method != "none" and method == recipe.distill.method  # the recipe's own method keeps its recipe knobs
    cfg = recipe.distill.knobs() if own else {"method": method}
    for key, value in overrides.items():
        if key.startswith("params."):
            cfg["params"] = {**cfg.get("params", {}), key.removeprefix("params."): value}
        else:
            cfg[key] = value
    cfg = start_defaults(cfg, recipe.student_starts_trained)  # after the spec's knobs: only what is left unset
    try:
        if teacher is None:
            return DistillConfig.knob_dict(cfg)
        return DistillConfig.from_dict({**cfg, "teacher": teacher}).to_dict()
    except (ValueError, TypeError) as err:
        raise UsageError(f"--methods: {spec!r}: {err}") from err


def seconds_per_epoch(results_csv: Path) -> float:
    with open(results_csv, newline="") as f:
        rows = [{k.strip(): v for k, v in r.items()} for r in csv.DictReader(f)]
    return float(rows[-1]["time"]) / len(rows) if rows else float("nan")


MAP_COLUMN = "metrics/mAP50-95(B)"


def map_curve(results_csv: str | Path | None) -> list[float]:
    """Per-epoch validation mAP50-95 (fraction) from a run's ``results.csv``; empty when the file or column is
    missing (a folder copied without its runs), NaN for an epoch without a number."""
    from admd_deploy.plots import read_results_csv

    if not results_csv or not Path(results_csv).is_file():
        return []
    try:
        column = read_results_csv(results_csv).get(MAP_COLUMN)
    except ValueError:  # a header without epochs
        return []
    values = [] if column is None else [float(v) for v in column]
    return values if any(math.isfinite(v) for v in values) else []


def run_curves(runs: dict[str, list[dict[str, Any]]], seeds: list[int]) -> dict[str, dict[int, list[float]]]:
    """Method -> seed -> per-epoch mAP50-95, for every run whose ``results.csv`` can be read."""
    curves: dict[str, dict[int, list[float]]] = {}
    for method, rs in runs.items():
        for seed, r in zip(seeds, rs):
            curve = map_curve(r.get("results_csv"))
            if curve:
                curves.setdefault(method, {})[seed] = curve
    return curves


def aggregate(runs: dict[str, list[dict[str, float]]], teacher_map50_95: float | None) -> list[MethodRow]:
    """Mean/std per method; the gap closed is measured against the mean of method ``none``."""
    def mean_std(xs: list[float]) -> tuple[float, float]:
        return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)

    base = statistics.fmean(r["map50_95"] for r in runs["none"]) if runs.get("none") else None
    rows = []
    for method, rs in runs.items():
        m50, s50 = mean_std([r["map50"] for r in rs])
        m, s = mean_std([r["map50_95"] for r in rs])
        gap = None
        if base is not None and teacher_map50_95 is not None and abs(teacher_map50_95 - base) > 1e-9:
            gap = (m - base) / (teacher_map50_95 - base)
        rows.append(MethodRow(method, len(rs), m50, s50, m, s, gap, statistics.fmean(r["sec_per_epoch"] for r in rs)))
    return rows


def markdown(rows: list[MethodRow], teacher: dict[str, float] | None, header: str) -> str:
    lines = [header, "", "| method | seeds | mAP50 | mAP50-95 | gap closed (mAP50-95) | s/epoch |", "|---|---|---|---|---|---|"]
    if teacher:
        lines.append(f"| teacher | - | {100 * teacher['map50']:.1f} | {100 * teacher['map50_95']:.1f} | - | - |")
    for r in rows:
        gap = "n/a" if r.gap_closed is None else f"{100 * r.gap_closed:.0f}%"
        lines.append(f"| {r.method} | {r.seeds} | {100 * r.map50:.1f} ± {100 * r.map50_std:.1f} | "
                     f"{100 * r.map50_95:.1f} ± {100 * r.map50_95_std:.1f} | {gap} | {r.seconds_per_epoch:.1f} |")
    return "\n".join(lines) + "\n"


def run_kd_bench(recipe: Recipe, methods: list[str], seeds: list[int], out: Path) -> dict[str, Any]:
    """Train and evaluate every (method, seed) not already done; write bench-kd.json/.md and plots.

    Every step is a stage of the pipeline's runner (:func:`~admd_deploy.pipeline.runner.run_stages`), with
    the pipeline's ledger, skipping, resuming and failure handling: ``data``, ``pretrain``, ``teacher``
    (the pipeline's own stages), ``teacher_eval``, one stage ``<method>/seed<k>`` per run, and ``report``.
    """
    if len(set(methods)) != len(methods):
        raise UsageError(f"--methods: a method is listed twice: {', '.join(methods)}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds: give distinct seeds, e.g. 0,1,2; got {seeds}")
    # Every spec is checked before the first (long) training starts; the teacher path is filled in later.
    knobs = {m: {k: v for k, v in distill_config(recipe, m, None).items() if k != "teacher"} for m in methods}
    pseudo = [m for m in methods if knobs[m].get("pseudo_conf") is not None]
    if pseudo and recipe.data.unlabelled is None:
        raise UsageError(f"--methods: {', '.join(pseudo)} pseudo-label the unlabelled images, but the recipe has no "
                         "data.unlabelled. Fix: add data.unlabelled=<folder or count>, or drop pseudo_conf")
    out = out.resolve()
    with runner.removed_if_failed(out):
        out.mkdir(parents=True, exist_ok=True)
        save_recipe(recipe, out / "recipe.yaml")
        ctx = Context(recipe=recipe, run_dir=out, ledger=Ledger(out))
        if not all((out / f).is_file() for f in ("bench-kd.json", "bench-kd.md")):
            ctx.ledger.invalidate(["report"])  # a deleted table is written again
        upstream = [s for s in runner.PIPELINE if s.name in UPSTREAM]
        total = len(upstream) + 2 + len(methods) * len(seeds)
        runner.run_stages(ctx, upstream, total=total)
        teacher = ctx.out("teacher")
        stages = [*([teacher_eval_stage(recipe, teacher)] if teacher.get("weights") else []),
                  *student_stages(recipe, methods, seeds, teacher), _report_stage(recipe, methods, seeds, knobs, teacher)]
        runner.run_stages(ctx, stages, first=len(upstream) + 1, total=total - (0 if teacher.get("weights") else 1))
        return ctx.out("report")


UPSTREAM = ("data", "pretrain", "teacher")  # the pipeline's stages a benchmark shares


def teacher_eval_stage(recipe: Recipe, teacher: dict[str, Any]) -> Stage:
    """``teacher_eval``: the teacher's mAP on the validation split, keyed on its sha256 and the image size."""
    imgsz = recipe.distill.imgsz
    return Stage("teacher_eval", lambda ctx: {"t": teacher.get("sha256"), "imgsz": imgsz},
                 lambda ctx, d: val_metrics(teacher["weights"], ctx.out("data")["data_yaml"], imgsz,
                                            recipe.distill.batch, recipe.device),
                 "evaluate the teacher")


def student_run_inputs(ctx: Context, cfg: dict[str, Any], teacher_sha256: str | None) -> dict[str, Any]:
    """What one student run's ledger key hashes: the shared student settings, its distill config, the teacher.

    The student alone (``none``, without pseudo-labels) never sees the teacher, so its key leaves the teacher out, as
    the pipeline's ``baseline`` stage does: a retrained or longer-trained teacher reruns the KD runs and reuses the
    baselines.
    """
    from admd_deploy.kd.config import uses_teacher

    inputs = {**training.student_common(ctx), "distill": training.distill_key(ctx, cfg)}
    return {**inputs, "teacher": teacher_sha256} if uses_teacher(cfg.get("method", "none"), cfg.get("pseudo_conf")) \
        else inputs


def student_stages(recipe: Recipe, methods: list[str], seeds: list[int], teacher: dict[str, Any]) -> list[Stage]:
    """One stage ``<method>/seed<k>`` per method and seed: train the student (distilled from ``teacher``,
    the teacher stage's outputs) with the recipe's seed set to ``k``, then evaluate it."""
    stages = []
    for method in methods:
        cfg = distill_config(recipe, method, teacher.get("weights"))
        for seed in seeds:
            stages.append(_student_stage(method, seed, cfg, teacher.get("sha256")))
    return stages


def _student_stage(method: str, seed: int, cfg: dict[str, Any], teacher_sha256: str | None) -> Stage:
    name = sctx_name(method, seed)

    def seeded(ctx: Context) -> Context:  # the runner's context (its resume flag included), with seed k
        return dataclasses.replace(ctx, recipe=dataclasses.replace(ctx.recipe, seed=seed))

    def run(ctx: Context, d: Path) -> dict[str, Any]:
        sctx = seeded(ctx)
        r = sctx.recipe
        folder = training.unlabelled_images(sctx, cfg.get("method", "none"), cfg.get("pseudo_conf"))[0]
        res = training.train(sctx, name, d, training.start_model(sctx, "student"), r.distill,
                             {**cfg, "unlabelled": folder} if folder else cfg)
        metrics = val_metrics(res["weights"], ctx.out("data")["data_yaml"], r.distill.imgsz, r.distill.batch, r.device)
        return {**res, "map50": metrics["map50"], "map50_95": metrics["map50_95"],
                "sec_per_epoch": seconds_per_epoch(Path(res["results_csv"])), "machine": machine_facts()}

    return Stage(name, lambda ctx: student_run_inputs(seeded(ctx), cfg, teacher_sha256), run, f"train {method}, seed {seed}")


def _report_stage(recipe: Recipe, methods: list[str], seeds: list[int], knobs: dict[str, Any],
                  teacher: dict[str, Any]) -> Stage:
    """``report``: bench-kd.json/.md and the plots in the output folder itself, from the runs' ledger records."""

    def inputs(ctx: Context) -> dict[str, Any]:
        runs = {m: [ctx.out(sctx_name(m, s)) for s in seeds] for m in methods}
        metrics = ctx.out("teacher_eval") if teacher.get("weights") else None
        return {"runs": runs, "teacher": metrics or None, "methods": methods, "seeds": seeds, "configs": knobs,
                "teacher_weights": teacher.get("weights")}

    def run(ctx: Context, out: Path) -> dict[str, Any]:
        i = inputs(ctx)
        return _write_report(recipe, out, i["runs"], i["teacher"], methods, seeds, knobs, teacher)

    return Stage("report", inputs, run, "write bench-kd.md / .json and the plots", folder="")


def _write_report(recipe: Recipe, out: Path, runs: dict[str, list[dict[str, Any]]], teacher_metrics: dict | None,
                  methods: list[str], seeds: list[int], knobs: dict[str, Any], teacher: dict[str, Any]) -> dict[str, Any]:
    imgsz = recipe.distill.imgsz
    teacher_map = teacher_metrics["map50_95"] if teacher_metrics else None
    rows = aggregate(runs, teacher_map)
    paired = stats.paired_table({m: dict(zip(seeds, (r["map50_95"] for r in rs))) for m, rs in runs.items()}, teacher_map)
    header = (f"# KD comparison: {recipe.name} ({recipe.task}), {recipe.student.model} from "
              f"{Path(str(teacher.get('weights'))).name}, {recipe.distill.epochs} epochs, seeds {seeds}\n\n"
              f"Protocol: {protocol(recipe.task, imgsz)}. mAP in points; ± is the sample standard deviation over seeds.")
    curves = stats.paired_curves(run_curves(runs, seeds))
    result = {"rows": [dataclasses.asdict(r) for r in rows], "paired": [dataclasses.asdict(p) for p in paired],
              "paired_curves": [dataclasses.asdict(c) for c in curves],
              "teacher": teacher_metrics, "runs": runs, "methods": methods, "seeds": seeds, "configs": knobs}
    result = json.loads(json.dumps(result, default=str))  # as bench-kd.json and the ledger hold it, read back
    (out / "bench-kd.json").write_text(json.dumps(result, indent=2))
    text = markdown(rows, teacher_metrics, header)
    if paired:
        text += ("\n## Paired against `none` (mAP50-95, same seed)\n\n" + stats.markdown(paired)
                 + "\nThe interval is the 95% Student-t interval of the mean per-seed delta; the verdict says whether "
                   "it excludes zero.\n")
        mixed = mixed_machine_pairs(runs, seeds)
        if mixed:
            text += (f"\n**Not like with like:** {', '.join(mixed)} ran on another CPU than the baseline of the same seed "
                     "(training differs across machines); rerun them in one place, or pool folders with "
                     "`admd-deploy bench pool`.\n")
    if curves:
        text += ("\n## During training (per-epoch validation mAP50-95 minus `none`'s of the same seed)\n\n"
                 + stats.curves_markdown(curves)
                 + "\nFrom each run's results.csv (Ultralytics' validation after every epoch). A method can lead during "
                   "training and end level: the learning rate decays to the end and the student alone catches up.\n")
    (out / "bench-kd.md").write_text(text)
    _plots(out, rows, runs, teacher_map, seeds, paired, curves)
    return result


def mixed_machine_pairs(runs: dict[str, list[dict[str, Any]]], seeds: list[int], baseline: str = "none") -> list[str]:
    """``method/seed<k>`` of every run whose recorded CPU differs from the baseline's run of the same seed
    (a folder copied to another machine and continued there). Runs without a record are not judged."""
    def cpu(r: dict[str, Any]) -> str | None:
        m = r.get("machine")
        return str(m.get("cpu")) if isinstance(m, dict) else None

    base = dict(zip(seeds, runs.get(baseline, [])))
    return [sctx_name(m, s) for m, rs in runs.items() if m != baseline for s, r in zip(seeds, rs)
            if s in base and cpu(r) and cpu(base[s]) and cpu(r) != cpu(base[s])]


def sctx_name(method: str, seed: int) -> str:
    """Run folder (and ledger record) of one spec and seed: ``admd:weight=constant`` -> ``admd-weight-constant/seed0``."""
    return f"{re.sub(r'[^A-Za-z0-9._]+', '-', method).strip('-')}/seed{seed}"


def _plots(out: Path, rows: list[MethodRow], runs: dict[str, list[dict[str, Any]]], teacher: float | None,
           seeds: list[int], paired: list[stats.PairedDelta], curves: list[stats.PairedCurve] | None = None) -> None:
    """``bench-kd.png`` (every method), ``bench-kd-paired.png`` and ``bench-kd-paired-curves.png`` (the paired
    deltas at the end and per epoch) and ``admd-kd-curves.png``: ADMD's KD loss and weight over training,
    for every seed of plain ``admd`` and the first seed of each ADMD variant (e.g. the ablations), at most 5
    (more lines do not read)."""
    from admd_deploy import plots

    per_seed = {m: [r["map50_95"] for r in rs] for m, rs in runs.items()}
    plots.plot_method_comparison([dataclasses.asdict(r) for r in rows], out / "bench-kd.png", per_seed, teacher)
    if paired:
        plots.plot_paired_deltas([dataclasses.asdict(p) for p in paired], out / "bench-kd-paired.png")
    if curves:
        plots.plot_paired_curves([dataclasses.asdict(c) for c in curves], out / "bench-kd-paired-curves.png")
    csvs = {f"admd seed {seed}": r["results_csv"] for seed, r in zip(seeds, runs.get("admd", []))}
    for method, rs in runs.items():
        if method.startswith("admd:") and rs:
            csvs[f"{method} seed {seeds[0]}"] = rs[0]["results_csv"]
    if csvs:
        plots.plot_training_curves(dict(list(csvs.items())[:5]), out / "admd-kd-curves.png")
