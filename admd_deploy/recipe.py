"""The recipe: one YAML file that says what to distil, how, and how to check the result.

``load_recipe(path, overrides)`` returns a typed, validated :class:`Recipe`; any wrong key,
type, value, unknown method or missing file fails here, before any work starts, with the
field's path, the valid values and the fix (:class:`~admd_deploy.schema.RecipeError`).
Relative paths in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

from admd_deploy.kd.config import DistillConfig
from admd_deploy.schema import RecipeError, dump, load, set_dotted

DataSource = Literal["synthetic", "yolo", "dota", "dior"]
ExportFormat = Literal["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu", "engine"]
STAGES = ("data", "pretrain", "teacher", "baseline", "student", "evaluate", "export", "verify", "report")


@cache
def ultralytics_train_keys() -> frozenset[str]:
    """Ultralytics' argument names, read from its default.yaml without importing the package."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    cfg = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(cfg.read_text()))


@dataclass
class TrainSettings:
    """Ultralytics training settings shared by the teacher, baseline and student stages."""

    epochs: int = 100
    imgsz: int = 640
    batch: int = 16
    nbs: int | None = None
    lr0: float | None = None
    optimizer: str | None = None
    patience: int | None = None
    mosaic: float | None = None
    close_mosaic: int | None = None
    args: dict[str, Any] = field(default_factory=dict)  # any other Ultralytics training argument

    _OWN = ("epochs", "imgsz", "batch", "nbs", "lr0", "optimizer", "patience", "mosaic", "close_mosaic")
    _MANAGED = frozenset({"model", "data", "project", "name", "exist_ok", "resume", "task", "device", "seed", "distill"})

    def __post_init__(self) -> None:
        for key in ("epochs", "imgsz", "batch"):
            if getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1; got {getattr(self, key)}")
        known = ultralytics_train_keys()
        for key in self.args:
            if key in self._MANAGED:
                raise ValueError(f"args.{key} is set by the pipeline itself; remove it (use the recipe's own field)")
            if key in self._OWN:
                raise ValueError(f"args.{key}: set it as `{key}:` in this section, not under args")
            if known and key not in known:
                import difflib

                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(f"args.{key} is not an Ultralytics training argument; {hint}see `yolo cfg`")

    def ultralytics_args(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self._OWN if getattr(self, k) is not None}
        out.update(self.args)
        return out


@dataclass
class DataSection:
    """Where the images come from. ``synthetic`` needs nothing; the others need ``path``."""

    source: DataSource = "synthetic"
    path: str | None = None  # yolo: data YAML; dota/dior: the dataset's root folder
    synthetic: dict[str, Any] = field(default_factory=dict)  # SynthConfig fields (n_train, imgsz, ...)
    dota: dict[str, Any] = field(default_factory=dict)  # convert_dota options (version, crop_size, gap, ...)
    dior: dict[str, Any] = field(default_factory=dict)  # convert_dior options (oriented)

    def __post_init__(self) -> None:
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"path is required for source {self.source!r} (the dataset on this machine)")
        if self.source == "synthetic" and self.path:
            raise ValueError("path is not used by source 'synthetic'; remove it or change source")
        if self.source == "synthetic":
            import dataclasses
            import difflib

            from admd_deploy.data import SynthConfig

            valid = [f.name for f in dataclasses.fields(SynthConfig) if f.name != "task"]
            for key in self.synthetic:
                if key not in valid:
                    close = difflib.get_close_matches(key, valid, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise ValueError(f"synthetic.{key}: unknown key; {hint}valid keys: {', '.join(valid)}")
            try:
                SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.synthetic.items()})
            except (TypeError, ValueError) as err:
                raise ValueError(f"synthetic: {err}") from err


@dataclass
class PretrainSection(TrainSettings):
    """A source-domain start for the teacher and the student, standing in for COCO-pretrained weights.

    Real users fine-tune a pretrained nano student; distillation is measured in that regime. The
    ``pretrain`` stage trains ``teacher.model`` (``teacher_epochs``) and ``student.model`` (``epochs``)
    from scratch on synthetic *source* data (``synthetic``: SynthConfig fields; use another seed,
    scene style and scale than the target data). Every later training (teacher fine-tune, baseline,
    student) starts from those checkpoints. They are cached under ``$ADMD_DEPLOY_HOME/pretrain/<hash
    of these inputs>`` and reused by every run and benchmark with the same inputs.
    """

    epochs: int = 16
    imgsz: int = 256
    teacher_epochs: int | None = None  # default: epochs
    synthetic: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.teacher_epochs is not None and self.teacher_epochs < 1:
            raise ValueError(f"teacher_epochs must be >= 1 (or null for epochs); got {self.teacher_epochs}")
        try:
            DataSection(source="synthetic", synthetic=self.synthetic)  # the same checks as data.synthetic
        except ValueError as err:
            raise ValueError(str(err)) from err


@dataclass
class TeacherSection(TrainSettings):
    """A local teacher checkpoint (``weights``), or a model to train from scratch (``model``)."""

    weights: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights is not None and self.model is not None:
            raise ValueError("set one of weights (a local .pt) or model (a YAML to train from scratch), not both")

    @property
    def given(self) -> bool:
        return self.weights is not None or self.model is not None


@dataclass
class StudentSection:
    """The student to train (``model``), or an already trained one to evaluate and export (``weights``)."""

    model: str | None = None  # a model YAML (yolo11n-obb.yaml), or a local .pt to start from
    weights: str | None = None  # a trained student .pt: no training, straight to evaluate/export/verify

    def __post_init__(self) -> None:
        if (self.model is None) == (self.weights is None):
            raise ValueError("set exactly one of model (a student to train) or weights (a trained student .pt)")


@dataclass
class DistillSection(TrainSettings):
    """The distillation method, its knobs, and the training of baseline and student."""

    # The knobs' defaults are DistillConfig's own, so the recipe and the Python API cannot drift apart.
    method: str = DistillConfig.method
    loss_weight: float | None = DistillConfig.loss_weight
    params: dict[str, Any] = field(default_factory=dict)
    weight: str | None = DistillConfig.weight
    beta: float = DistillConfig.beta
    warmup_epochs: float = DistillConfig.warmup_epochs
    w_max: float = DistillConfig.w_max
    baseline: bool = True  # also train the student alone with the same schedule

    def __post_init__(self) -> None:
        super().__post_init__()
        self.config("placeholder.pt")  # validate method and its parameters now

    def config(self, teacher: str | None) -> DistillConfig:
        return DistillConfig(
            method=self.method, teacher=None if self.method == "none" else teacher, loss_weight=self.loss_weight,
            params=dict(self.params), weight=self.weight, beta=self.beta, warmup_epochs=self.warmup_epochs,
            w_max=self.w_max,
        )


@dataclass
class ExportSection:
    formats: list[ExportFormat] = field(default_factory=lambda: ["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu",
                                                                 "engine"])
    imgsz: int | None = None  # default: distill.imgsz
    batch: int = 1
    dynamic: bool = False
    opset: int = 17
    simplify: bool = True
    fast_dfl: bool = True  # rewrite the head's DFL softmax into an equivalent graph (see pipeline/onnx_passes.py)
    calib_images: int = 64  # validation images used to calibrate INT8
    # who quantises onnx_int8 (TensorRT's Q/DQ): NVIDIA ModelOpt where installed ("auto"), or ONNX Runtime
    int8_quantizer: Literal["auto", "onnxruntime", "modelopt"] = "auto"
    engine_precision: Literal["fp16", "fp32", "int8"] = "fp16"

    def __post_init__(self) -> None:
        if "onnx" not in self.formats and self.formats:
            raise ValueError("formats must include 'onnx' (the other formats are built from it)")
        if self.batch < 1 or self.calib_images < 1:
            raise ValueError("batch and calib_images must be >= 1")


@dataclass
class GatesSection:
    """Limits the exported student must meet; mAP limits are in points (0-100)."""

    parity_atol: float = 1e-3
    fp32_map_drop: float = 0.3
    fp16_map_drop: float = 0.5
    int8_map_drop: float = 5.0
    teacher_gap: float | None = None  # max points the student may trail the teacher
    cross_check: float = 0.5  # edge runtime vs Ultralytics' own val of the same ONNX
    teacher_over_baseline: float | None = None  # min points the teacher must lead the baseline (a sanity gate)


@dataclass
class ReportSection:
    plots: bool = True
    samples: int = 6  # validation images in the teacher/student prediction grid
    latency_runs: int = 20


@dataclass
class PaperEvalSection:
    """Whole-image, paper-comparable evaluation (``admd-deploy evaluate --recipe``): see evaluation/protocol.py."""

    protocol: Literal["dota", "dior", "dior-r"] = "dota"
    images: str | None = None  # folder of whole images
    labels: str | None = None  # folder of DOTA labelTxt files or YOLO labels
    crop_size: int | None = None  # default 1024 (dota), 800 (dior, dior-r)
    gap: int = 200
    conf: float = 0.05
    merge: Literal["polygon", "rotated"] = "polygon"
    merge_iou: float = 0.1
    ap: Literal["voc07", "area"] | None = None  # default the protocol's (voc07)


@dataclass
class Recipe:
    name: str
    task: Literal["detect", "obb"]
    teacher: TeacherSection
    student: StudentSection
    data: DataSection = field(default_factory=DataSection)
    distill: DistillSection = field(default_factory=DistillSection)
    export: ExportSection = field(default_factory=ExportSection)
    gates: GatesSection = field(default_factory=GatesSection)
    report: ReportSection = field(default_factory=ReportSection)
    pretrain: PretrainSection | None = None  # a source-domain start for teacher and student (off: from scratch)
    paper_eval: PaperEvalSection | None = None  # whole-image DOTA/DIOR protocol (admd-deploy evaluate --recipe)
    seed: int = 0
    device: str = "cpu"
    source: str | None = None  # the recipe file this was loaded from (set by load_recipe)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)

    def __post_init__(self) -> None:
        if self.student.model and self.distill.method != "none" and not self.teacher.given:
            raise ValueError(f"teacher: method {self.distill.method!r} needs a teacher: set teacher.weights (a local "
                             ".pt) or teacher.model (a YAML to train from scratch)")
        if self.pretrain is not None:
            for where, model in (("teacher.model", self.teacher.model), ("student.model", self.student.model)):
                if model is not None and not model.endswith((".yaml", ".yml")):
                    raise ValueError(f"pretrain: {where} must be a model YAML to pretrain from scratch; got {model!r}. "
                                     "Remove the pretrain section to start from a checkpoint of your own")
            if self.student.model is None:
                raise ValueError("pretrain: needs student.model (a YAML); student.weights skips training altogether")

    @property
    def export_imgsz(self) -> int:
        return self.export.imgsz or self.distill.imgsz


def _resolve(base: Path, value: str | None) -> str | None:
    """Resolve a recipe path relative to the recipe; leave bare model names (yolo11n.yaml) alone."""
    if value is None:
        return None
    p = Path(value).expanduser()
    if p.is_absolute():
        return str(p)
    candidate = (base / p).resolve()
    return str(candidate) if candidate.exists() or "/" in value else value


def _check_files(recipe: Recipe) -> None:
    def need(where: str, value: str | None, what: str) -> None:
        if value is not None and not Path(value).exists():
            raise RecipeError(where, f"{what} not found: {value}. admd-deploy uses local files only: fix the path")

    need("teacher.weights", recipe.teacher.weights, "teacher checkpoint")
    need("student.weights", recipe.student.weights, "student checkpoint")
    need("data.path", recipe.data.path, "dataset")
    if recipe.teacher.weights and not recipe.teacher.weights.endswith(".pt"):
        raise RecipeError("teacher.weights", f"must be a .pt checkpoint; got {recipe.teacher.weights}")
    for where, value in (("student.model", recipe.student.model), ("teacher.model", recipe.teacher.model)):
        if value and value.endswith(".pt"):
            need(where, value, "model checkpoint")
        elif value and not value.endswith((".yaml", ".yml")):
            raise RecipeError(where, f"must be a model .yaml (e.g. yolo11n-obb.yaml) or a local .pt; got {value!r}")


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(text, "an override is KEY=VALUE with a dotted key, e.g. distill.epochs=5")
    return key.strip(), yaml.safe_load(value)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override, validate and resolve a recipe file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RecipeError("", f"recipe not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RecipeError("", f"{path} is not valid YAML: {err}") from err
    if not isinstance(data, dict):
        raise RecipeError("", f"{path} must hold a mapping of sections (name, task, data, teacher, ...)")
    for text in overrides:
        key, value = parse_override(text)
        set_dotted(data, key, value)
    base = path.resolve().parent
    for section, key in (("teacher", "weights"), ("teacher", "model"), ("student", "model"), ("student", "weights"),
                         ("data", "path")):
        node = data.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = _resolve(base, node[key])
    data["source"] = str(path.resolve())
    recipe = load(Recipe, data)
    _check_files(recipe)
    return recipe


def save_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
