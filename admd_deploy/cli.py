"""``admd-deploy``: the command line. Thin: parses, validates, calls the Python API."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from admd_deploy.errors import UsageError
from admd_deploy.failure import EXIT_USAGE, INTERRUPTED, report_failure

OVERRIDE = re.compile(r"^[A-Za-z_][\w.]*=")

EPILOG_DISTILL = """\
examples:
  admd-deploy distill --teacher teacher.pt --student yolo11n-obb.yaml --data /data/dota/data.yaml --epochs 100
  admd-deploy distill --teacher teacher.pt --student yolo11n.yaml --data dior.yaml --method cwd --loss-weight 5
  admd-deploy distill --teacher teacher.pt --student yolo11n.yaml --data dior.yaml --param mask=softmax --param tau=0.5
  admd-deploy distill --student yolo11n.yaml --data dior.yaml --method none          # the baseline
  admd-deploy distill --project runs/distill --name admd --resume                     # continue an interrupted run

Checkpoints: weights/best.pt and last.pt are plain Ultralytics student checkpoints; the KD state
(align modules, KD weight) for --resume is in weights/distill_last.pt. Nothing is downloaded:
teacher, student .pt and data must be local files.
"""


EPILOG_STEP_COST = """\
examples:
  admd-deploy bench step-cost --teacher yolo11s.yaml --student yolo11n.yaml --imgsz 256 --batch 8
  admd-deploy bench step-cost --teacher yolo11m.yaml --student yolo11n-obb.yaml --method cwd --rounds 5
"""

EPILOG_POOL = """\
examples:
  admd-deploy bench pool runs/bench-kd-scratch epyc=/mnt/other/bench-kd-scratch --out runs/bench-kd-pooled
  admd-deploy bench pool a=runs/a/bench-kd.json b=runs/b/bench-kd.json

Each method's seed k is paired with the baseline's seed k in the same folder (one machine: training is
deterministic on a machine, not across machines); every pair counts once in the pooled mean, standard
deviation and 95% t interval. Methods are matched by their resolved config, so `admd` at the default
weight and `admd:loss_weight=0.25` pool together. Folders must have run one recipe (but for its name,
seed and device); --allow names fields that may differ, and the table lists each such difference.
"""

EPILOG_EDGE = """\
examples:
  admd-deploy bench edge --threads 2 --runs 60
  admd-deploy bench edge --obb runs/quickstart/export/student.onnx \\
      --int8 runs/quickstart/export/student.int8.onnx --json edge-bench.json
  admd-deploy bench edge --detect det.onnx --obb obb.onnx --no-ultralytics     # admd-edge and raw ONNX Runtime only

Memory: the peak RSS (VmHWM) of a fresh Python that imports the runtime, loads the model and runs
10 predictions on a synthetic image the size of the photo.
"""


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


def _cli_text(text: str) -> str:
    """A knob's help (written for docs, in reST) as plain ``--help`` text."""
    text = re.sub(r"``None``", "unset", text).replace("``", "")
    return text.replace("%", "%%")


def add_knob_arguments(group: Any, spec: type | None = None) -> None:
    """One flag per distillation knob of ``spec`` (default :class:`~admd_deploy.kd.config.DistillConfig`).

    Flag, type, valid values and help come from the knob's declaration; every flag defaults to ``None``
    (unset: the declared default applies), and its ``dest`` is the knob's name.
    """
    from admd_deploy.kd.config import DistillConfig, knob_default, knob_fields, knob_kinds, knob_types

    spec = spec or DistillConfig
    hints = knob_types(spec)
    for f in knob_fields(spec):
        k, tp = f.metadata["knob"], hints[f.name]
        kinds, _ = knob_kinds(tp)
        default = knob_default(f)
        text = _cli_text(k.help) + (f" (default {default})" if default not in (None, {}) else "")
        options: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
        if dict in kinds:
            options.update(action="append", type=_key_value, metavar="KEY=VALUE", help=f"{text} Repeatable: "
                           f"{k.cli_flag(f.name)} KEY=VALUE")
        elif float in kinds:
            options.update(type=float)
        elif not callable(k.choices) and k.choices:
            options.update(choices=tuple(k.choices))
        group.add_argument(k.cli_flag(f.name), **options)


def build_parser() -> argparse.ArgumentParser:
    from admd_deploy import __version__

    parser = argparse.ArgumentParser(prog="admd-deploy", description="Distil a YOLO teacher into a nano student with ADMD.")
    parser.add_argument("--version", action="version", version=f"admd-deploy {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    d = sub.add_parser(
        "distill",
        help="train a student with knowledge distillation from a teacher",
        description="Train a student (detect or obb) with feature distillation from a frozen teacher.",
        epilog=EPILOG_DISTILL,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--student", required=True, help="student model YAML (e.g. yolo11n-obb.yaml) or a local .pt to start from")
    d.add_argument("--data", required=True, help="local dataset YAML in Ultralytics format")
    d.add_argument("--task", choices=("detect", "obb"), help="read from the student model when omitted")
    d.add_argument("--epochs", type=int, help="training epochs (Ultralytics default 100)")
    d.add_argument("--imgsz", type=int, help="training image size (Ultralytics default 640)")
    d.add_argument("--batch", type=int, help="batch size (Ultralytics default 16)")
    d.add_argument("--device", help="'cpu', '0', '0,1' (multi-GPU DDP), ...")
    d.add_argument("--project", help="folder of runs (default ./runs/distill)")
    d.add_argument("--name", help="run name inside --project (default: the method)")
    d.add_argument("--resume", nargs="?", const=True, default=False, metavar="LAST_PT",
                   help="continue an interrupted run: its last.pt, or project/name/weights/last.pt when given no path")
    d.add_argument("--allow-corrupt", action="store_true",
                   help="train even when images or label files would be dropped (they are listed); default: refuse")
    add_knob_arguments(d.add_argument_group("distillation"))
    d.add_argument("--train-arg", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="any other Ultralytics training argument, repeatable (e.g. nbs=16 seed=1 patience=20)")
    r = sub.add_parser("run", help="run a recipe: data, pretrain, teacher, baseline, student, evaluate, export, verify, report",
                       description="Run every stage of a recipe; stages whose inputs did not change are skipped, "
                       "an interrupted training stage continues from its last.pt.")
    r.add_argument("recipe", help="recipe YAML (see recipes/)")
    r.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. distill.epochs=5")
    r.add_argument("--from", dest="from_stage", metavar="STAGE",
                   help="rerun from this stage on: data, pretrain, teacher, baseline, student, evaluate, export, verify, "
                   "report")
    r.add_argument("--out", help="run folder (default runs/<recipe name>)")
    r.epilog = ("A failed or interrupted run continues where it stopped when the same command is run again "
                "(finished stages are skipped); --from STAGE reruns from that stage on.")

    q = sub.add_parser("quickstart", help="the built-in demo: synthetic aerial OBB data, teacher, baseline, ADMD "
                       "student, export, verify, report (about 15 minutes on 2 CPU cores)")
    q.add_argument("--out", help="run folder (default runs/quickstart)")
    q.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. distill.epochs=2")
    q.add_argument("--from", dest="from_stage", metavar="STAGE", help="rerun from this stage on")

    rc = sub.add_parser("recipe", help="recipe tools")
    rcs = rc.add_subparsers(dest="recipe_command", metavar="ACTION", required=True)
    chk = rcs.add_parser("check", help="validate a recipe without running it (exit 2 with the reason when invalid)")
    chk.add_argument("recipe")
    chk.add_argument("overrides", nargs="*", metavar="KEY=VALUE")

    ex = sub.add_parser("export", help="export a trained student .pt: ONNX, INT8 ONNX, TensorRT where possible, "
                        "then verify it, bundle it and report", description="Export, verify and bundle a trained "
                        "student (e.g. weights/best.pt of `admd-deploy distill`) through the pipeline's own stages.")
    ex.add_argument("weights", help="the trained student checkpoint (.pt)")
    ex.add_argument("--data", required=True, help="dataset YAML whose val split is used for checks and calibration")
    ex.add_argument("--teacher", help="teacher .pt, to report the student's gap to it under the same protocol")
    ex.add_argument("--imgsz", type=int, help="export/evaluation image size (default: the checkpoint's training size)")
    ex.add_argument("--formats", default="onnx,onnx_fp16,onnx_int8,onnx_int8_cpu,engine",
                    help="comma list of onnx, onnx_fp16 (FP16 for TensorRT engines, decode in FP32), onnx_int8 (S8S8 "
                    "Q/DQ for TensorRT), onnx_int8_cpu (U8S8 Q/DQ for ONNX Runtime on CPU), engine")
    ex.add_argument("--out", help="run folder (default runs/export-<weights stem>)")
    ex.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. gates.int8_map_drop=3")

    vf = sub.add_parser("verify", help="re-run verification (gates, bundle, report) of a run folder's exports")
    vf.add_argument("run_dir", help="a run folder with recipe.yaml (from run, quickstart or export)")
    vf.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. gates.fp32_map_drop=0.5")

    bn = sub.add_parser("bench", help="benchmarks (KD methods compared over seeds, distillation step cost, "
                        "edge runtime speed and memory)")
    bns = bn.add_subparsers(dest="bench_command", metavar="WHAT", required=True)
    bk = bns.add_parser("kd", help="every distillation method x seed on one recipe's data, teacher and schedule; "
                        "resumable", description="Train the teacher once (or take the recipe's), then one student "
                        "per method and seed with the same data and schedule; finished runs are not repeated. Writes "
                        "bench-kd.md / bench-kd.json and plots in the output folder.")
    bk.add_argument("recipe")
    bk.add_argument("--methods", default="admd,score_l2,cwd,mgd,pkd,mse,none",
                    help="comma list of METHOD or METHOD:KEY=VALUE[:KEY=VALUE] variants, e.g. "
                    "admd:weight=constant (no weight-increasing module), admd:params.mask=uniform, "
                    "admd:loss_weight=2 (default: every method at its defaults)")
    bk.add_argument("--seeds", default="0,1,2", help="comma list of seeds (default 0,1,2)")
    bk.add_argument("--out", help="output folder (default runs/bench-kd-<recipe name>)")
    bk.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. distill.epochs=20")
    bp = bns.add_parser("pool", help="one paired KD table from `bench kd` folders run on several machines",
                        description="Pool the paired deltas of `bench kd` folders of one recipe (each pair within one "
                        "folder); write bench-kd-pooled.md / .json / .png.", epilog=EPILOG_POOL,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bp.add_argument("sources", nargs="+", metavar="[LABEL=]PATH",
                    help="`bench kd` output folders or their bench-kd.json (label: the folder's name unless given)")
    bp.add_argument("--out", default="runs/bench-kd-pooled", help="output folder (default runs/bench-kd-pooled)")
    bp.add_argument("--allow", default="", metavar="FIELD[,FIELD]",
                    help="recipe fields or sections that may differ between the folders, e.g. "
                    "pretrain,teacher.model,student.model when each machine trained its own pretrained start; "
                    "each difference is listed in the table's notes (default: none)")
    bs = bns.add_parser("step-cost", help="time of a distilled training step against a student-only step (CPU)",
                        description="Time, interleaved on one batch of the real trainer: the student step, the "
                        "teacher forward, the distilled step and the KD loss alone; print medians, IQRs, the ratio "
                        "distilled/student and its lower bound (student + teacher)/student. YAML models are "
                        "untrained: cost does not depend on the weights.", epilog=EPILOG_STEP_COST,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    bs.add_argument("--teacher", default="yolo11s.yaml", help="teacher model YAML or local .pt (default yolo11s.yaml)")
    bs.add_argument("--student", default="yolo11n.yaml",
                    help="student model YAML or local .pt; its task picks the trainer (default yolo11n.yaml)")
    bs.add_argument("--method", default="admd", help="distillation method, as in distill --method (default admd)")
    bs.add_argument("--imgsz", type=int, default=256, help="training image size (default 256)")
    bs.add_argument("--batch", type=int, default=8, help="batch size (default 8)")
    bs.add_argument("--reps", type=int, default=10, help="repeats of each step per round (default 10)")
    bs.add_argument("--rounds", type=int, default=3, help="rounds of interleaved repeats (default 3)")
    be = bns.add_parser("edge", help="admd-edge end to end vs raw ONNX Runtime vs Ultralytics predict: time per "
                        "image, peak memory, rotated NMS (CPU)", description="Time admd-edge (pre, infer, post, "
                        "end to end) against the bare InferenceSession.run and Ultralytics' YOLO(onnx).predict in "
                        "three scenarios (a photo at conf 0.25, the photo with 500 NMS candidates, a frame at the "
                        "model's size); measure the peak RSS of a fresh interpreter per model and runtime; time "
                        "rotated NMS on 10,000 boxes.", epilog=EPILOG_EDGE,
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    be.add_argument("--detect", help="detector ONNX (default: an untrained YOLO11n exported at 640; needs Ultralytics)")
    be.add_argument("--obb", help="OBB ONNX (default: an untrained YOLO11n-OBB exported at 256; needs Ultralytics)")
    be.add_argument("--int8", action="append", default=[], metavar="PATH",
                    help="INT8 Q/DQ ONNX, timed in the same scenarios as the FP32 models; repeatable or a comma list")
    be.add_argument("--image", help="BGR photo to time on (default: Ultralytics' bus.jpg, else a synthetic 1280x720)")
    be.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads of admd-edge (default 2)")
    be.add_argument("--runs", type=int, default=60, help="timed runs per row (default 60; Ultralytics: half)")
    be.add_argument("--no-ultralytics", action="store_true",
                    help="skip the Ultralytics predict column and its memory measurement")
    be.add_argument("--json", metavar="OUT", help="also write every number to this JSON file")

    dt = sub.add_parser("data", help="make or convert datasets")
    dts = dt.add_subparsers(dest="data_command", metavar="SOURCE", required=True)
    sy = dts.add_parser("synth", help="generate the synthetic aerial dataset")
    sy.add_argument("out")
    sy.add_argument("--task", choices=("detect", "obb"), default="obb")
    sy.add_argument("--n-train", type=int, default=400)
    sy.add_argument("--n-val", type=int, default=64)
    sy.add_argument("--imgsz", type=int, default=256)
    sy.add_argument("--seed", type=int, default=0)
    sc = dts.add_parser("scenes", help="generate large synthetic scenes (2000-5000 px) with DOTA labels, to try "
                        "sliced predict and `admd-deploy evaluate --protocol dota`")
    sc.add_argument("out", help="new or empty folder; gets images/, labelTxt/ and scenes.json")
    sc.add_argument("--n-scenes", type=int, default=2)
    sc.add_argument("--size", type=int, default=2048, help="scene side in px, rounded up to a multiple of --tile")
    sc.add_argument("--tile", type=int, default=256, help="training image size whose object sizes the scenes keep")
    sc.add_argument("--task", choices=("obb",), default="obb", help="scenes are oriented (DOTA polygons)")
    sc.add_argument("--max-objects", type=int, default=12, help="most objects per tile (raise for dense scenes)")
    sc.add_argument("--seed", type=int, default=0)
    do = dts.add_parser("dota", help="convert DOTA v1.0/v1.5 to YOLO-OBB and split it into patches")
    do.add_argument("src", help="DOTA root with train/ and val/ (images/, labelTxt/)")
    do.add_argument("out")
    do.add_argument("--version", choices=("1.0", "1.5"), default="1.0")
    do.add_argument("--crop-size", type=int, default=1024)
    do.add_argument("--gap", type=int, default=200)
    do.add_argument("--rates", type=float, nargs="+", default=[1.0], help="multi-scale rates, e.g. 0.5 1.0 1.5")
    do.add_argument("--no-split", action="store_true", help="convert only, do not cut patches")
    do.add_argument("--drop-difficult", action="store_true", help="leave out objects flagged difficult")
    di = dts.add_parser("dior", help="convert DIOR (VOC XML) or DIOR-R (--oriented) to YOLO format")
    di.add_argument("src", help="DIOR root with JPEGImages-*, Annotations/, ImageSets/Main/")
    di.add_argument("out")
    di.add_argument("--oriented", action="store_true", help="DIOR-R oriented boxes (YOLO-OBB labels)")
    dc = dts.add_parser("check", help="check a YOLO dataset without training: the files training would drop",
                        description="Read the data YAML, check its folders, and verify every train and val image "
                        "and label file as Ultralytics' dataset scan does; list the files training would drop "
                        "(corrupt images, malformed label lines). Exit 0 when clean, 2 otherwise.")
    dc.add_argument("data_yaml", help="dataset YAML in Ultralytics format")
    from admd_deploy.evaluation.cli import add_evaluate_parser

    add_evaluate_parser(sub)
    return parser


def _load(path: str, overrides: list[str]):
    from admd_deploy.recipe import load_recipe

    return load_recipe(path, overrides)


def _cmd_run(ns: argparse.Namespace, recipe=None) -> int:
    from admd_deploy.pipeline import run_pipeline
    from admd_deploy.pipeline.report import markdown_table, summary_rows

    recipe = recipe or _load(ns.recipe, ns.overrides)
    result = run_pipeline(recipe, ns.out, ns.from_stage, verify_only=getattr(ns, "verify_only", False))
    rep = result.report
    print()
    print(markdown_table(summary_rows(rep), ("model", "mAP50", "mAP50-95", "params", "CPU latency (batch 1)")))
    gc = rep.get("gap_closed_map50_95")
    if gc is not None:
        print(f"\nteacher-baseline gap closed by {rep['method']}: {100 * gc:.0f}% (mAP50-95)")
    if rep.get("kd_note"):
        print(rep["kd_note"])
    print(f"protocol: {rep.get('protocol')}\nreport:   {result.run_dir / 'report.md'}\nbundle:   {rep.get('bundle')}")
    if not result.passed:
        failed = [g["name"] for g in rep.get("gates", []) if g["passed"] is False]
        print(f"GATES FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _cmd_quickstart(ns: argparse.Namespace) -> int:
    from importlib import resources

    path = resources.files("admd_deploy") / "recipes" / "quickstart.yaml"
    ns.out = ns.out or "runs/quickstart"
    return _cmd_run(ns, _load(str(path), ns.overrides))


def _cmd_export(ns: argparse.Namespace) -> int:
    from admd_deploy import checks
    from admd_deploy.pipeline.runner import removed_if_failed

    weights = Path(ns.weights).expanduser().resolve()
    if weights.suffix != ".pt":
        raise UsageError(f"weights must be a trained student checkpoint (.pt); got {ns.weights!r}")
    task = checks.model_task("weights", weights)  # a missing or unreadable .pt is refused here, in one line
    if task not in checks.TASKS:
        raise UsageError(f"weights: {weights.name} is a {task!r} model; admd-deploy exports detect and obb models")
    imgsz = checks.image_size("--imgsz", ns.imgsz) if ns.imgsz is not None else checks.checkpoint_imgsz("weights",
                                                                                                         weights)
    recipe = {
        "name": f"export-{weights.stem}", "task": task,
        "data": {"source": "yolo", "path": str(Path(ns.data).expanduser().resolve())},
        "teacher": {"weights": str(Path(ns.teacher).expanduser().resolve())} if ns.teacher else {},
        "student": {"weights": str(weights)},
        "distill": {"method": "none", "baseline": False, "imgsz": imgsz},
        "export": {"formats": _comma_list(ns.formats)},
    }
    out = Path(ns.out or f"runs/export-{weights.stem}").resolve()
    with removed_if_failed(out):  # a folder this command made is not left behind half-made
        out.mkdir(parents=True, exist_ok=True)
        (out / "export-recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        ns.out, ns.from_stage = str(out), None
        return _cmd_run(ns, _load(str(out / "export-recipe.yaml"), ns.overrides))


def _cmd_verify(ns: argparse.Namespace) -> int:
    from admd_deploy.errors import MissingFileError

    run_dir = Path(ns.run_dir)
    if not (run_dir / "recipe.yaml").is_file():
        raise MissingFileError(f"{run_dir} has no recipe.yaml: pass a run folder made by run, quickstart or export")
    ns.out, ns.from_stage, ns.verify_only = str(run_dir), "verify", True
    return _cmd_run(ns, _load(str(run_dir / "recipe.yaml"), ns.overrides))


def _cmd_bench(ns: argparse.Namespace) -> int:
    if ns.bench_command == "step-cost":
        return _cmd_bench_step_cost(ns)
    if ns.bench_command == "edge":
        return _cmd_bench_edge(ns)
    if ns.bench_command == "pool":
        return _cmd_bench_pool(ns)
    return _cmd_bench_kd(ns)


def _comma_list(text: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: a comma-list option's items, stripped, empty ones dropped."""
    return [item.strip() for item in text.split(",") if item.strip()]


def _cmd_bench_pool(ns: argparse.Namespace) -> int:
    from admd_deploy.bench.pool import run_pool

    out = Path(ns.out)
    run_pool(ns.sources, out, allow=_comma_list(ns.allow))
    print((out / "bench-kd-pooled.md").read_text())
    return 0


def _cmd_bench_kd(ns: argparse.Namespace) -> int:
    from admd_deploy.bench.kd import run_kd_bench

    recipe = _load(ns.recipe, ns.overrides)
    try:
        seeds = [int(x) for x in ns.seeds.split(",") if x.strip()]
    except ValueError as err:
        raise UsageError(f"--seeds must be a comma list of integers, e.g. 0,1,2; got {ns.seeds!r}") from err
    methods = _comma_list(ns.methods)
    out = Path(ns.out or f"runs/bench-kd-{recipe.name}")
    run_kd_bench(recipe, methods, seeds, out)
    print((out / "bench-kd.md").read_text())
    return 0


def _cmd_bench_step_cost(ns: argparse.Namespace) -> int:
    from admd_deploy.bench.step_cost import markdown, run_step_cost

    result = run_step_cost(ns.teacher, ns.student, ns.method, ns.imgsz, ns.batch, ns.reps, ns.rounds)
    print(markdown(result))
    return 0


def _cmd_bench_edge(ns: argparse.Namespace) -> int:
    import json

    if importlib.util.find_spec("admd_edge") is None:
        raise UsageError("bench edge needs the admd-edge package: pip install -e export")
    from admd_deploy.bench.edge import markdown, run_edge_bench

    int8 = [Path(p.strip()) for item in ns.int8 for p in item.split(",") if p.strip()]
    result = run_edge_bench(
        Path(ns.detect) if ns.detect else None,
        Path(ns.obb) if ns.obb else None,
        int8,
        Path(ns.image) if ns.image else None,
        threads=ns.threads,
        runs=ns.runs,
        ultralytics=not ns.no_ultralytics,
    )
    print(markdown(result))
    if ns.json:
        out = Path(ns.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result.to_dict(), indent=2, default=str))
        print(f"\njson: {out}")
    return 0


def _cmd_recipe(ns: argparse.Namespace) -> int:
    recipe = _load(ns.recipe, ns.overrides)
    print(f"{ns.recipe}: valid ({recipe.task}, {recipe.distill.method}, teacher "
          f"{recipe.teacher.weights or recipe.teacher.model}, student {recipe.student.model or recipe.student.weights}, "
          f"data {recipe.data.source})")
    return 0


def _cmd_data(ns: argparse.Namespace) -> int:
    if ns.data_command == "check":
        return _cmd_data_check(ns)
    if ns.data_command == "synth":
        from admd_deploy.data import SynthConfig, generate_synthetic

        path = generate_synthetic(ns.out, SynthConfig(task=ns.task, n_train=ns.n_train, n_val=ns.n_val,
                                                      imgsz=ns.imgsz, seed=ns.seed))
    elif ns.data_command == "scenes":
        return _cmd_data_scenes(ns)
    elif ns.data_command == "dota":
        from admd_deploy.data.dota import convert_dota

        path = convert_dota(ns.src, ns.out, version=ns.version, split=not ns.no_split, crop_size=ns.crop_size,
                            gap=ns.gap, rates=tuple(ns.rates), include_difficult=not ns.drop_difficult)
    else:
        from admd_deploy.data.dior import convert_dior

        path = convert_dior(ns.src, ns.out, oriented=ns.oriented)
    print(path)
    return 0


def _cmd_data_scenes(ns: argparse.Namespace) -> int:
    from admd_deploy.data.scenes import SceneConfig, generate_scenes
    from admd_deploy.errors import OutputExistsError

    config = SceneConfig(n_scenes=ns.n_scenes, size=ns.size, tile=ns.tile, seed=ns.seed,
                         max_objects=ns.max_objects, min_objects=min(4, ns.max_objects))
    try:
        out = generate_scenes(ns.out, config)
    except FileExistsError as err:
        raise OutputExistsError(str(err)) from err
    (cols, rows), tile = config.grid, config.tile
    print(f"{config.n_scenes} scene(s) of {cols * tile}x{rows * tile} px: {out / 'images'}\n"
          f"DOTA labels: {out / 'labelTxt'}\nsettings and counts: {out / 'scenes.json'}")
    return 0


def _cmd_data_check(ns: argparse.Namespace) -> int:
    from admd_deploy.data.check import check_dataset

    result = check_dataset(ns.data_yaml, "data_yaml")
    counts = ", ".join(f"{split} {n}" for split, n in result.images.items())
    print(f"{result.data_yaml}: {counts} images")
    for bad in result.bad:
        print(f"  {bad.split}: {bad.image}: {bad.reason}")
    if result.bad:
        print(f"admd-deploy data check: error: {result.summary()}. Fix: repair or remove them, or train with "
              "--allow-corrupt (distill) / data.allow_corrupt: true (recipe)", file=sys.stderr)
        return EXIT_USAGE
    print("clean: training will use every image")
    return 0


def _distill_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """The Ultralytics arguments of ``distill``, each flag checked by the recipe's own check of that value."""
    from admd_deploy import checks
    from admd_deploy.kd.config import knob_fields

    train_args = {}
    knobs = {f.name: f.metadata["knob"].cli_flag(f.name) for f in knob_fields()}
    for key, value in ns.train_arg:
        if key in knobs:  # distill() reads these names as its own knobs, not as Ultralytics arguments
            raise UsageError(f"--train-arg {key}: in distill, {key} is the distillation knob {knobs[key]}; use that "
                             "flag (Ultralytics' own argument of that name cannot be set here)")
        checks.train_arg(f"--train-arg {key}", key)
        train_args[key] = value
    checkers = {"epochs": checks.positive_int, "batch": checks.positive_int, "imgsz": checks.image_size,
                "device": checks.device}
    for key in ("epochs", "imgsz", "batch", "device", "project", "name"):
        value = getattr(ns, key)
        if value is not None:
            train_args[key] = checkers[key](f"--{key}", value) if key in checkers else value
    return train_args


def _knob_flags(ns: argparse.Namespace) -> dict[str, Any]:
    """The distillation flags the user set (unset ones take the declared defaults in ``distill``)."""
    from admd_deploy.kd.config import knob_fields

    knobs = {f.name: getattr(ns, f.name) for f in knob_fields() if f.name != "teacher"}
    if knobs.get("params") is not None:
        knobs["params"] = dict(knobs["params"])
    return {k: v for k, v in knobs.items() if v is not None}


def _cmd_evaluate(ns: argparse.Namespace) -> int:
    from admd_deploy.evaluation.cli import run_evaluate

    return run_evaluate(ns)


def _cmd_distill(ns: argparse.Namespace) -> int:
    from admd_deploy.api import distill

    train_args = _distill_flags(ns)
    project = Path(train_args.get("project") or "runs/distill").expanduser().resolve()
    existed = project.is_dir()
    before = set(project.iterdir()) if existed else set()
    try:
        result = distill(ns.teacher, ns.student, ns.data, task=ns.task, resume=ns.resume,
                         allow_corrupt=ns.allow_corrupt, **_knob_flags(ns), **train_args)
    except Exception:
        _remove_unfinished_runs(project, before, existed)
        raise
    print(f"run folder: {result.save_dir}\nstudent:    {result.best}")
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        if key in result.metrics:
            print(f"{key}: {result.metrics[key]:.4f}")
    return 0


def _remove_unfinished_runs(project: Path, before: set[Path], existed: bool) -> None:
    """Remove run folders a failed ``distill`` made that hold no checkpoint (nothing of the user's is in them)."""
    import shutil

    if not project.is_dir():
        return
    for folder in set(project.iterdir()) - before:
        if folder.is_dir() and not any(folder.rglob("*.pt")):
            shutil.rmtree(folder, ignore_errors=True)
    if not existed and not any(project.iterdir()):
        project.rmdir()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code.

    2: the user's input is wrong (one line: the field, the valid values, the fix). 1: a stage or a
    gate failed, or something unexpected happened (one line and the path of a log with the full
    traceback; ``-v`` prints it too). 130: interrupted.
    """
    parser = build_parser()
    ns, extra = parser.parse_known_args(argv)
    if extra:  # KEY=VALUE overrides may also follow the options (argparse stops positionals at the first option)
        if hasattr(ns, "overrides") and all(OVERRIDE.match(t) for t in extra):
            ns.overrides = [*ns.overrides, *extra]
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    commands = {"distill": _cmd_distill, "run": _cmd_run, "quickstart": _cmd_quickstart, "recipe": _cmd_recipe,
                "data": _cmd_data, "export": _cmd_export, "verify": _cmd_verify, "bench": _cmd_bench,
                "evaluate": _cmd_evaluate}
    try:
        return commands[ns.command](ns)
    except KeyboardInterrupt:
        hint = INTERRUPTED.get(ns.command)
        print(f"admd-deploy {ns.command}: interrupted{'; ' + hint if hint else ''}", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - sorted into the user's input, a failed stage, or unexpected
        return report_failure(ns.command, err, ns.verbose)


if __name__ == "__main__":
    sys.exit(main())
