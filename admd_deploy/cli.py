"""``admd-deploy``: the command line. Thin: parses, validates, calls the Python API."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

import yaml

EXIT_USAGE = 2

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


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), yaml.safe_load(value)


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
    d.add_argument("--teacher", help="local teacher checkpoint .pt (a model .yaml builds an untrained one: tests only)")
    d.add_argument("--student", required=True, help="student model YAML (e.g. yolo11n-obb.yaml) or a local .pt to start from")
    d.add_argument("--data", required=True, help="local dataset YAML in Ultralytics format")
    d.add_argument("--method", default="admd", help="admd (default), mse, score_l2, cwd, mgd, pkd, or none (student alone)")
    d.add_argument("--task", choices=("detect", "obb"), help="read from the student model when omitted")
    d.add_argument("--epochs", type=int, help="training epochs (Ultralytics default 100)")
    d.add_argument("--imgsz", type=int, help="training image size (Ultralytics default 640)")
    d.add_argument("--batch", type=int, help="batch size (Ultralytics default 16)")
    d.add_argument("--device", help="'cpu', '0', '0,1' (multi-GPU DDP), ...")
    d.add_argument("--project", help="folder of runs (default ./runs/distill)")
    d.add_argument("--name", help="run name inside --project (default: the method)")
    d.add_argument("--resume", nargs="?", const=True, default=False, metavar="LAST_PT",
                   help="continue an interrupted run: its last.pt, or project/name/weights/last.pt when given no path")
    k = d.add_argument_group("distillation")
    k.add_argument("--loss-weight", type=float, help="lambda in L = L_det + lambda * w_t * L_kd (default: the method's)")
    k.add_argument("--weight", choices=("adaptive", "constant", "linear"),
                   help="KD weight schedule (default: adaptive for admd, constant for the peers)")
    k.add_argument("--w-max", type=float, help="maximum KD weight (default 10)")
    k.add_argument("--beta", type=float, help="EMA factor of the KD loss in the weighting module (default 0.99)")
    k.add_argument("--warmup-epochs", type=float, help="epochs before the adaptive weight freezes its reference (default 1)")
    k.add_argument("--param", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="loss parameter, repeatable: admd discrepancy=mse|l1|cosine mask=linear|softmax|uniform tau=1.0; "
                   "cwd tau=1.0; mgd mask_ratio=0.65; pkd eps=1e-6")
    d.add_argument("--train-arg", action="append", type=_key_value, default=[], metavar="KEY=VALUE",
                   help="any other Ultralytics training argument, repeatable (e.g. nbs=16 seed=1 patience=20)")
    return parser


def _cmd_distill(ns: argparse.Namespace) -> int:
    from admd_deploy.kd.api import distill

    train_args = dict(ns.train_arg)
    for key in ("epochs", "imgsz", "batch", "device", "project", "name"):
        if getattr(ns, key) is not None:
            train_args[key] = getattr(ns, key)
    result = distill(
        ns.teacher,
        ns.student,
        ns.data,
        ns.method,
        task=ns.task,
        params=dict(ns.param),
        loss_weight=ns.loss_weight,
        weight=ns.weight,
        beta=ns.beta,
        warmup_epochs=ns.warmup_epochs,
        w_max=ns.w_max,
        resume=ns.resume,
        **train_args,
    )
    print(f"run folder: {result.save_dir}\nstudent:    {result.best}")
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)"):
        if key in result.metrics:
            print(f"{key}: {result.metrics[key]:.4f}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input, with a one-line reason and no traceback)."""
    parser = build_parser()
    ns = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if ns.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    commands = {"distill": _cmd_distill}
    try:
        return commands[ns.command](ns)
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"admd-deploy {ns.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"admd-deploy {ns.command}: interrupted; rerun with --resume to continue", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
