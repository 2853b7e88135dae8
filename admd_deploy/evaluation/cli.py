"""``admd-deploy evaluate``: paper-protocol scores of an exported model on whole images.

Kept out of ``admd_deploy/cli.py`` (which only registers it) so the command's flags and its runner sit
together. Imports neither torch nor Ultralytics: the model runs through the edge runtime.
"""

from __future__ import annotations

from admd_deploy.errors import MissingFileError, UsageError

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  admd-deploy evaluate runs/quickstart/export/student.onnx --images scenes/images --labels scenes/labelTxt
  admd-deploy evaluate student.onnx --images DOTA/val/images --labels DOTA/val/labelTxt --task1 submission/
  admd-deploy evaluate student.onnx --images DIOR-R/images/val --labels DIOR-R/labels/val --protocol dior-r

dota: 1024 px windows, 200 px gap, polygon NMS at 0.1 (DOTA_devkit), VOC07 11-point AP at polygon IoU 0.5,
difficult objects ignored. dior / dior-r: the same scorer (VOC07 11-point mAP@0.5) on 800 px images.
"""


def add_evaluate_parser(sub: Any) -> None:
    """Register ``evaluate`` on the ``admd-deploy`` subparsers."""
    ev = sub.add_parser("evaluate", help="paper-comparable mAP (DOTA / DIOR protocol) of an exported model on whole "
                                         "images", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    ev.add_argument("model", help="exported .onnx (or TensorRT plan, or bundle folder) run through admd-edge")
    ev.add_argument("--recipe", default=None, help="take unset options from this recipe's paper_eval section")
    ev.add_argument("--images", default=None, help="folder of whole images")
    ev.add_argument("--labels", default=None, help="folder of DOTA labelTxt files or YOLO labels, named after images")
    ev.add_argument("--protocol", choices=("dota", "dior", "dior-r"), default=None, help="default dota")
    ev.add_argument("--crop-size", type=int, default=None, help="window side (default 1024 dota, 800 dior)")
    ev.add_argument("--gap", type=int, default=None, help="window overlap in px (default 200)")
    ev.add_argument("--conf", type=float, default=None, help="score threshold (default 0.05, mmrotate's)")
    ev.add_argument("--merge", choices=("polygon", "rotated"), default=None,
                    help="polygon: DOTA_devkit's polygon NMS (default); rotated: admd-edge's slicing merge")
    ev.add_argument("--merge-iou", type=float, default=None, help="merge NMS threshold (default 0.1)")
    ev.add_argument("--ap", choices=("voc07", "area"), default=None, help="AP flavour (default the protocol's: voc07)")
    ev.add_argument("--imgsz", type=int, default=None, help="input size of a dynamic-shape model")
    ev.add_argument("--task1", default=None, metavar="DIR", help="also write Task1_<class>.txt submission files here")
    ev.add_argument("--json", default=None, metavar="FILE", help="also write the scores as JSON")


_OPTIONS = ("protocol", "images", "labels", "crop_size", "gap", "conf", "merge", "merge_iou", "ap")
_DEFAULTS = {"protocol": "dota", "images": None, "labels": None, "crop_size": None, "gap": 200, "conf": 0.05,
             "merge": "polygon", "merge_iou": 0.1, "ap": None}  # as recipe.PaperEvalSection (a test checks)


def resolve_options(ns: argparse.Namespace) -> dict[str, Any]:
    """Flags over the recipe's ``paper_eval`` section over the defaults (recipe paths relative to the recipe).

    Raises:
        ValueError: No image or label folder from either.
    """
    defaults: dict[str, Any] = dict(_DEFAULTS)
    base = Path.cwd()
    if ns.recipe:  # the recipe module pulls in torch: only when a recipe is given
        from admd_deploy.recipe import PaperEvalSection, load_recipe

        section = load_recipe(ns.recipe).paper_eval or PaperEvalSection()
        defaults, base = {k: getattr(section, k) for k in _OPTIONS}, Path(ns.recipe).resolve().parent
    options = {k: getattr(ns, k) if getattr(ns, k) is not None else defaults[k] for k in _OPTIONS}
    for key in ("images", "labels"):
        if options[key] is None:
            raise UsageError(f"evaluate needs --{key} (or paper_eval.{key} in the recipe): the folder of whole "
                             f"{'images' if key == 'images' else 'image labels (DOTA labelTxt or YOLO)'}")
        if getattr(ns, key) is None:
            options[key] = str(base / options[key])
    if options["crop_size"] is None:
        options["crop_size"] = 1024 if options["protocol"] == "dota" else 800
    return options


def run_evaluate(ns: argparse.Namespace) -> int:
    """Run ``admd-deploy evaluate``; bad input raises ValueError / FileNotFoundError (exit 2 in ``main``)."""
    from admd_deploy.evaluation.dota import iter_class_lines
    from admd_deploy.evaluation.protocol import ProtocolSettings, evaluate_images

    o = resolve_options(ns)
    crop = o["crop_size"]
    settings = ProtocolSettings(o["protocol"], crop, o["gap"], o["conf"], o["merge"], o["merge_iou"], o["ap"])
    if not Path(ns.model).exists():
        raise MissingFileError(f"model {ns.model} not found. Fix: pass the exported .onnx")
    from admd_edge import load_model

    model = load_model(ns.model, imgsz=ns.imgsz, batch=8)

    def progress(name: str, done: int, total: int) -> None:
        print(f"{name}: {done}/{total} images", file=sys.stderr, flush=True)

    scores, summary = evaluate_images(model, Path(o["images"]), Path(o["labels"]), settings,
                                      task1=Path(ns.task1) if ns.task1 else None, progress=progress)
    print(f"{settings.protocol} protocol: {summary['images']} images, {summary['windows']} windows of {crop} px "
          f"(gap {settings.gap}), {settings.merge} merge at {settings.merge_iou}, {summary['seconds']:.1f} s")
    print(f"paper metric: mAP@0.5 (polygon IoU, {scores.ap_kind} AP, difficult ignored) = {scores.map * 100:.2f}")
    for line in iter_class_lines(scores):
        print(line)
    if ns.task1:
        print(f"Task1 submission files: {ns.task1}")
    if ns.json:
        out = Path(ns.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(summary, indent=2, default=str) + "\n")
        print(f"json: {out}")
    return 0
