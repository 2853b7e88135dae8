"""Generate docs/recipe.md, the reference of every recipe key, from the recipe's own dataclasses.

The keys, types, defaults and valid values are read from :mod:`admd_deploy.recipe` (and the loss registry,
the synthetic generator and the dataset converters it hands its mappings to), so they cannot drift from what
``admd-deploy recipe check`` accepts. Only the one-line descriptions are written here, in :data:`DESCRIPTIONS`,
where a field has no comment or docstring of its own. ``tests/test_docs.py`` fails when docs/recipe.md differs
from what this script renders, or when a key has no description.

Usage (from the repository root)::

    python docs/recipe_reference.py --write    # rewrite docs/recipe.md
    python docs/recipe_reference.py --check    # exit 1 when docs/recipe.md is stale
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, Union

DOC = Path(__file__).resolve().parent / "recipe.md"

# Descriptions for fields that carry no comment or docstring of their own. Keys are dotted recipe paths;
# `train.` is the set of training settings the teacher and distill sections share.
DESCRIPTIONS = {
    "name": "Run name: the run folder is `runs/<name>/` unless `--out` says otherwise.",
    "task": "`detect` (horizontal boxes, DIOR-style) or `obb` (oriented boxes, DOTA-style); teacher and "
            "student must be models of this task.",
    "seed": "Seed for data generation and every training stage.",
    "device": "Training device, as Ultralytics takes it: `cpu`, `0`, `0,1` (multi-GPU), ...",
    "source": "Set by admd-deploy to the recipe file it loaded; do not set it.",
    "train.epochs": "Training epochs (>= 1).",
    "train.imgsz": "Training image size in pixels (>= 1; Ultralytics rounds it to a multiple of the stride, 32).",
    "train.batch": "Batch size (>= 1).",
    "train.nbs": "Nominal batch size for gradient accumulation and weight decay scaling (Ultralytics `nbs`); "
                 "null = Ultralytics' default (64).",
    "train.lr0": "Initial learning rate; null = Ultralytics' default.",
    "train.optimizer": "Ultralytics optimizer name (`SGD`, `AdamW`, `auto`, ...); null = Ultralytics' default.",
    "train.patience": "Early-stopping patience in epochs; null = Ultralytics' default.",
    "train.mosaic": "Mosaic augmentation probability (0-1); null = Ultralytics' default.",
    "train.close_mosaic": "Turn mosaic off for the last N epochs; null = Ultralytics' default.",
    "train.args": "Any other Ultralytics training argument (checked against Ultralytics' `default.yaml`); not the "
                  "ones this section or the pipeline set themselves.",
    "data.source": "`synthetic` (generated, needs nothing), `yolo` (a data.yaml you have), `dota` / `dior` "
                   "(converted from the official release; see docs/data.md).",
    "data.unlabelled": "Unlabelled target images for the KD term: a folder (searched recursively, relative to the "
                       "recipe file or absolute), or for source `synthetic` a count of extra tiles of the same draw "
                       "(images only). Each distillation step also runs the KD loss on a batch of them; the detection "
                       "loss and the baseline never see them. null = labelled images only.",
    "paper_eval.protocol": "Paper protocol: `dota` (polygon IoU 0.5, VOC07 11-point AP, difficult ignored), `dior` "
                           "(box IoU 0.5) or `dior-r` (polygon IoU 0.5).",
    "paper_eval.gap": "Overlap in pixels between neighbouring patches when whole images are split (DOTA: 200).",
    "paper_eval.conf": "Confidence threshold of the predictions that are merged and scored.",
    "paper_eval.merge": "How patch predictions are merged across patches: `polygon` NMS (DOTA_devkit) or `rotated` "
                        "(ProbIoU) NMS.",
    "paper_eval.merge_iou": "IoU threshold of the merge NMS (DOTA_devkit: 0.1).",
    "pretrain.synthetic": "Options of the synthetic *source* data, the keys of `data.synthetic`; use another seed, "
                          "scene style and scale than the target data.",
    "teacher.weights": "A local teacher checkpoint (`.pt`), relative to the recipe file or absolute. Set this or "
                       "`model`, not both.",
    "teacher.model": "A model YAML (e.g. `yolo11s-obb.yaml`) to train the teacher from scratch. Set this or "
                     "`weights`, not both.",
    "distill.params": "Keyword parameters of the loss (see [Loss parameters](#loss-parameters-distillparams)); "
                      "must be empty for `none`.",
    "distill.baseline": "Also train the student alone with the same schedule (the baseline the report compares to).",
    "export.formats": "Artifacts to export; must include `onnx` (the others are built from it). `engine` is "
                      "skipped with its reason where TensorRT or a GPU is missing.",
    "export.batch": "Batch size baked into the exported graph (>= 1).",
    "export.dynamic": "Export with dynamic input shapes.",
    "export.opset": "ONNX opset.",
    "export.simplify": "Simplify the ONNX graph (onnxslim).",
    "export.int8_quantizer": "Who quantises `onnx_int8` (TensorRT's Q/DQ format): `auto` = NVIDIA ModelOpt where "
                             "installed, else ONNX Runtime; `modelopt` fails before training when it is missing.",
    "export.engine_precision": "Precision of the TensorRT engine; it is built from `student.fp16.onnx` (fp16) or "
                               "`student.int8.onnx` (int8) when those are exported.",
    "gates.parity_atol": "Largest absolute difference allowed between the ONNX and PyTorch student's raw outputs.",
    "gates.fp32_map_drop": "Largest mAP drop (points) of the FP32 ONNX against the PyTorch student.",
    "gates.fp16_map_drop": "Largest mAP drop (points) of the FP16 ONNX against the PyTorch student.",
    "gates.int8_map_drop": "Largest mAP drop (points) of each INT8 ONNX against the PyTorch student.",
    "report.plots": "Write the report's figures.",
    "report.latency_runs": "Timed runs per model for the report's latency table.",
}

INTERNAL = {"source"}  # top-level fields the user does not set
INTRO = """\
# Recipe reference

A recipe is one YAML file: what to distil, how, and how to check the result. `admd-deploy recipe check
RECIPE.yaml` validates it without running anything; `admd-deploy run RECIPE.yaml KEY=VALUE ...` runs it with
dotted overrides (e.g. `distill.epochs=5`). Unknown keys, wrong types and invalid values are refused before any
work starts, naming the key, the valid values and the fix. Relative paths in a recipe are relative to the
recipe file. `null` means "not set": the default named in the description applies.

<!-- GENERATED by docs/recipe_reference.py from admd_deploy/recipe.py and admd_deploy/kd/config.py; do not edit by hand.
     Regenerate: python docs/recipe_reference.py --write  (tests/test_docs.py fails when this file is stale) -->

Minimal recipe (train a teacher from scratch on synthetic data, distil a nano student):

```yaml
name: my-first-run
task: obb
teacher: {model: yolo11s-obb.yaml, epochs: 12, imgsz: 256}
student: {model: yolo11n-obb.yaml}
distill: {epochs: 8, imgsz: 256}
```

On your own data: `data: {source: yolo, path: /data/mine/data.yaml}` (see [data.md](data.md)) and
`teacher: {weights: /models/teacher.pt}`. The shipped recipes in `recipes/` are complete examples.
"""


# --------------------------------------------------------------------------------------------- type rendering
def type_name(tp: Any) -> str:
    """A field's type in recipe (YAML) words: `int`, `number or null`, `list of string`, ..."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return "any"
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names) + (" or null" if type(None) in args else "")
    if origin is Literal:
        return "string" if all(isinstance(a, str) for a in typing.get_args(tp)) else "value"
    if origin in (list, tuple):
        return f"list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "mapping"
    return {bool: "bool", int: "int", float: "number", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def choices_of(tp: Any) -> list[Any]:
    """The values a ``Literal`` (also inside ``X | None`` or ``list[...]``) allows; empty for other types."""
    origin = typing.get_origin(tp)
    if origin is Literal:
        return list(typing.get_args(tp))
    if origin in (Union, types.UnionType, list, tuple):
        return [c for a in typing.get_args(tp) for c in choices_of(a)]
    return []


def yaml_value(value: Any) -> str:
    """A default as it would be written in a recipe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, float) and (abs(value) < 1e-2 and value != 0):
        return f"{value:.0e}".replace("e-0", "e-")
    return str(value)


def section_class(tp: Any) -> type | None:
    """The dataclass of a recipe section typed ``Section`` or ``Section | None``; None for a plain key."""
    if dataclasses.is_dataclass(tp):
        return tp
    if typing.get_origin(tp) in (Union, types.UnionType):
        found = [a for a in typing.get_args(tp) if dataclasses.is_dataclass(a)]
        return found[0] if found else None
    return None


def default_of(f: dataclasses.Field) -> str:
    if f.default is not dataclasses.MISSING:
        return yaml_value(f.default)
    if f.default_factory is not dataclasses.MISSING:
        return yaml_value(f.default_factory())
    return "required"


# --------------------------------------------------------------------------------------------- descriptions
def inline_comments(cls: type) -> dict[str, str]:
    """``field: type = default  # comment`` comments in a dataclass's source, by field name (own fields only)."""
    found = {}
    for line in inspect.getsource(cls).splitlines():
        m = re.match(r"^\s{4}(\w+): [^#]*#\s*(.+)$", line)
        if m:
            found[m.group(1)] = m.group(2).strip()
    return found


def docstring_items(obj: Any, section: str = "Attributes") -> dict[str, str]:
    """``name: text`` items of a Google docstring section (continuation lines joined)."""
    doc = inspect.getdoc(obj) or ""
    m = re.search(rf"^{section}:\n((?:[ \t]+.*\n?|\n)+)", doc, re.M)
    items: dict[str, str] = {}
    last = None
    for line in (m.group(1) if m else "").splitlines():
        item = re.match(r"^ {4}(\w+)(?: \([^)]*\))?: (.*)$", line)
        if item:
            last = item.group(1)
            items[last] = item.group(2).strip()
        elif last and line.strip():
            items[last] += " " + line.strip()
    return items


def sphinx_to_md(text: str) -> str:
    """A docstring or comment as one markdown table cell: inline code, YAML spellings, capitalised."""
    text = re.sub(r":\w+:`~?([\w.]+)`", lambda m: f"`{m.group(1).rsplit('.', 1)[-1]}`", text)
    text = text.replace("``", "`").replace("|", "\\|")
    for py, yml in (("None", "null"), ("True", "true"), ("False", "false")):
        text = text.replace(f"`{py}`", f"`{yml}`")
    return text[:1].upper() + text[1:]


# --------------------------------------------------------------------------------------------- tables
@dataclasses.dataclass
class Row:
    key: str
    type: str
    default: str
    valid: str
    description: str


def section_rows(cls: type, prefix: str, extra_valid: dict[str, list[Any]] | None = None,
                 docs: dict[str, str] | None = None) -> list[Row]:
    """One row per init field of ``cls``; ``prefix`` is its dotted path (empty at the top level)."""
    hints = typing.get_type_hints(cls)
    comments: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            comments.update(inline_comments(klass))
    rows = []
    for f in dataclasses.fields(cls):
        if not f.init or (not prefix and f.name in INTERNAL) or section_class(hints[f.name]):
            continue
        path = f"{prefix}.{f.name}" if prefix else f.name
        shared = f"train.{f.name}" if _is_train_field(cls, f.name) else None
        knob = f.metadata.get("knob")  # a distillation knob: its help and valid values are declared in kd/config.py
        description = (DESCRIPTIONS.get(path) or (docs or {}).get(f.name) or (knob.help if knob else None) or
                       (DESCRIPTIONS.get(shared) if shared else None) or comments.get(f.name, ""))
        valid = choices_of(hints[f.name]) or (extra_valid or {}).get(f.name, [])
        valid = valid or (knob.valid_values() if knob else [])
        cell = ", ".join(f"`{v}`" for v in valid) or (f"`{knob.bounds()}`" if knob and knob.bounds() else "")
        rows.append(Row(f.name, type_name(hints[f.name]), default_of(f), cell, sphinx_to_md(description)))
    return rows


def _is_train_field(cls: type, name: str) -> bool:
    from admd_deploy.recipe import TrainSettings

    return issubclass(cls, TrainSettings) and name in {f.name for f in dataclasses.fields(TrainSettings)}


def table(rows: list[Row]) -> list[str]:
    out = ["| key | type | default | valid values | description |", "|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| `{r.key}` | {r.type} | `{r.default}` | {r.valid or ''} | {r.description} |")
    return out


def params_rows(fn: Any, skip: int = 0, exclude: tuple[str, ...] = ()) -> list[Row]:
    """Rows for the keyword parameters of a callable (a class: its constructor), with its docstring's Args."""
    docs = docstring_items(fn, "Args") or docstring_items(getattr(fn, "__init__", fn), "Args")
    hints = typing.get_type_hints(fn.__init__ if inspect.isclass(fn) else fn)
    rows = []
    for p in list(inspect.signature(fn).parameters.values())[skip:]:
        if p.name in exclude or p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        tp = hints.get(p.name, Any)
        default = "required" if p.default is p.empty else yaml_value(p.default)
        rows.append(Row(p.name, type_name(tp), default, ", ".join(f"`{v}`" for v in choices_of(tp)),
                        sphinx_to_md(docs.get(p.name, ""))))
    return rows


# --------------------------------------------------------------------------------------------- the document
def render(recipe_cls: type | None = None) -> str:
    """The whole of docs/recipe.md for ``recipe_cls`` (default: :class:`admd_deploy.recipe.Recipe`)."""
    from admd_deploy.data import CLASS_NAMES, SynthConfig, convert_dior, convert_dota
    from admd_deploy.kd.registry import LOSSES
    from admd_deploy.recipe import Recipe

    recipe_cls = recipe_cls or Recipe
    hints = typing.get_type_hints(recipe_cls)
    lines = [INTRO, "## Top level", ""]
    lines += table(section_rows(recipe_cls, ""))
    for f in dataclasses.fields(recipe_cls):
        cls = section_class(hints[f.name])
        if cls is None:
            continue
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        optional = not required and f.default is None  # `Section | None = None`: the section switches it on
        note = " (required)" if required else " (optional: absent or null = off)" if optional else ""
        lines += ["", f"## `{f.name}`{note}", ""]
        doc = inspect.getdoc(cls)
        if doc and not doc.startswith(cls.__name__ + "("):
            lines += [sphinx_to_md(doc.split("\n\n")[0].replace("\n", " ")), ""]
        lines += table(section_rows(cls, f.name))
    lines += ["", "## Mappings handed on", "",
              "### `data.synthetic`", "",
              "Options of the synthetic aerial generator (`admd-deploy data synth` makes the same data). "
              "`task` comes from the recipe's `task`.", ""]
    synth_docs = docstring_items(SynthConfig)
    synth_rows = params_rows(SynthConfig, exclude=("task",))
    for r in synth_rows:
        r.description = sphinx_to_md(synth_docs.get(r.key, ""))
        if r.key == "classes":
            r.valid = ", ".join(f"`{c}`" for c in CLASS_NAMES)
    lines += table(synth_rows)
    lines += ["", "### `data.dota`", "", "Options of the DOTA converter (`source: dota`; as `admd-deploy data dota`).", ""]
    lines += table(params_rows(convert_dota, exclude=("src", "out")))
    lines += ["", "### `data.dior`", "",
              "Options of the DIOR converter (`source: dior`; `oriented` follows the recipe's `task`: `obb` reads "
              "DIOR-R's oriented boxes).", ""]
    lines += table(params_rows(convert_dior, exclude=("src", "out", "oriented")))
    lines += ["", "### Loss parameters (`distill.params`)", "",
              "Each `distill.method` takes its own parameters; anything else is refused with the valid keys.", ""]
    for name in sorted(LOSSES):
        rows = params_rows(LOSSES[name], skip=1)
        lines += [f"#### `{name}`", ""]
        lines += table(rows) if rows else ["No parameters."]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def undescribed(text: str) -> list[str]:
    """Table rows of a rendered reference whose description cell is empty."""
    return [line.split("|")[1].strip() for line in text.splitlines()
            if line.startswith("| `") and line.rstrip().endswith("|  |")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--write", action="store_true", help="rewrite docs/recipe.md")
    mode.add_argument("--check", action="store_true", help="exit 1 when docs/recipe.md is stale")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC}")
        return 0
    if not DOC.is_file() or DOC.read_text() != text:
        print(f"{DOC} is stale: run python docs/recipe_reference.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(DOC.parents[1]))  # this checkout's admd_deploy, not another installed one
    sys.exit(main())
