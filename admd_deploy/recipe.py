"""The recipe: one YAML file that says what to distil, how, and how to check the result.

``load_recipe(path, overrides)`` returns a typed, validated :class:`Recipe`; any wrong key,
type, value, unknown method or missing file fails here, before any work starts, with the
field's path, the valid values and the fix (:class:`~admd_deploy.schema.RecipeError`).
Relative paths in a recipe are relative to the recipe file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from admd_deploy import checks
from admd_deploy.errors import UsageError
from admd_deploy.kd.config import DistillConfig, check_knobs, knob_fields, start_defaults, uses_teacher, with_knobs
from admd_deploy.schema import RecipeError, dump, load, set_dotted

DataSource = Literal["synthetic", "yolo", "dota", "dior"]
ExportFormat = Literal["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu", "engine"]
STAGES = ("data", "pretrain", "teacher", "baseline", "student", "evaluate", "export", "verify", "report")


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
        checks.positive_int("epochs", self.epochs)
        checks.positive_int("batch", self.batch)
        checks.image_size("imgsz", self.imgsz)
        for key in self.args:
            if key in self._MANAGED:
                raise UsageError(f"args.{key} is set by the pipeline itself; remove it (use the recipe's own field)")
            if key in self._OWN:
                raise UsageError(f"args.{key}: set it as `{key}:` in this section, not under args")
            checks.train_arg(f"args.{key}", key)

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
    allow_corrupt: bool = False  # train even when images or label files would be dropped (they are listed)
    # Unlabelled target images for the KD term (a folder, searched recursively); for source synthetic also a count:
    # that many more tiles of the same draw, images only. Used by the distilled student, never by the baseline.
    unlabelled: int | str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.unlabelled, int):
            if self.source != "synthetic":
                raise UsageError(f"unlabelled: a count ({self.unlabelled}) makes synthetic tiles, but source is "
                                 f"{self.source!r}. Fix: give the folder of your unlabelled images instead")
            if self.unlabelled < 1:
                raise UsageError(f"unlabelled must be a count >= 1 or a folder; got {self.unlabelled}. "
                                 "Fix: e.g. unlabelled: 900, or remove it")
        if self.source != "synthetic" and not self.path:
            raise UsageError(f"path is required for source {self.source!r} (the dataset on this machine)")
        if self.source == "synthetic" and self.path:
            raise UsageError("path is not used by source 'synthetic'; remove it or change source")
        if self.source == "synthetic":
            import difflib

            from admd_deploy.data import SynthConfig

            valid = [f.name for f in dataclasses.fields(SynthConfig) if f.name != "task"]
            for key in self.synthetic:
                if key not in valid:
                    close = difflib.get_close_matches(key, valid, n=1)
                    hint = f"did you mean {close[0]!r}? " if close else ""
                    raise UsageError(f"synthetic.{key}: unknown key; {hint}valid keys: {', '.join(valid)}")
            try:
                SynthConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.synthetic.items()})
            except UsageError as err:
                raise UsageError(f"synthetic: {err}") from err


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
            raise UsageError(f"teacher_epochs must be >= 1 (or null for epochs); got {self.teacher_epochs}")
        DataSection(source="synthetic", synthetic=self.synthetic)  # the same checks as data.synthetic


@dataclass
class TeacherSection(TrainSettings):
    """A local teacher checkpoint (``weights``), or a model to train from scratch (``model``)."""

    weights: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.weights is not None and self.model is not None:
            raise UsageError("set one of weights (a local .pt) or model (a YAML to train from scratch), not both")

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
            raise UsageError("set exactly one of model (a student to train) or weights (a trained student .pt)")


@dataclass
@with_knobs(DistillConfig)  # its recipe knobs: type, default, valid values and help are declared there, once
class DistillSection(TrainSettings):
    """The distillation method, its knobs, and the training of baseline and student."""

    baseline: bool = True  # also train the student alone with the same schedule
    knob_spec: ClassVar[type[DistillConfig]]  # set by with_knobs

    def __post_init__(self) -> None:
        super().__post_init__()
        check_knobs(self.knobs(), self.knob_spec)  # the method and its parameters are checked now, without a teacher

    def knobs(self) -> dict[str, Any]:
        """The knobs of this section, by name (every field of :attr:`knob_spec` but the teacher)."""
        return {f.name: getattr(self, f.name) for f in knob_fields(self.knob_spec, recipe=True)}

    def config(self, teacher: str | None, *, trained: bool = False) -> DistillConfig:
        """The full settings, with ``teacher`` (unused by method ``none``); ``trained``: the student starts from
        trained weights, which sets the method's defaults for that start (:func:`~admd_deploy.kd.config.start_defaults`)."""
        knobs = start_defaults(self.knobs(), trained)
        return self.knob_spec(**{**knobs, "params": dict(knobs["params"])},
                              teacher=teacher if uses_teacher(self.method, self.pseudo_conf) else None)


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
            raise UsageError("formats must include 'onnx' (the other formats are built from it)")
        checks.positive_int("batch", self.batch)
        checks.positive_int("calib_images", self.calib_images)
        if self.imgsz is not None:
            checks.image_size("imgsz", self.imgsz)


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
    min_map50_95: float = 1.0  # floor for the student and every export: a model with mAP 0 never passes

    def __post_init__(self) -> None:
        if not 0 < self.min_map50_95 <= 100:
            raise UsageError(f"gates.min_map50_95 must be in (0, 100] points; got {self.min_map50_95} (e.g. 1.0)")


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
    device: str | int | list[int] = "cpu"  # cpu, mps, or CUDA indices: 0, "0,1", [0, 1]
    source: str | None = None  # the recipe file this was loaded from (set by load_recipe)

    def to_dict(self) -> dict[str, Any]:
        return dump(self)

    def __post_init__(self) -> None:
        self.device = checks.device("device", self.device)
        for gate in dataclasses.fields(self.gates):  # every gate, the ones added later too
            value = getattr(self.gates, gate.name)
            if isinstance(value, (int, float)) and value < 0:
                raise UsageError(f"gates.{gate.name} must be >= 0 (a limit: mAP points, or an absolute difference for "
                                 f"parity_atol); got {value}. Fix: use a limit >= 0, or null where the gate is optional")
        if self.data.source == "dota" and self.task != "obb":
            raise UsageError("task: data.source 'dota' gives oriented boxes; got task detect. Fix: set task: obb")
        if self.student.model and self.distill.method == "none" and not self.teacher.given:
            raise UsageError("distill.method: 'none' without a teacher trains only the student alone, which is the "
                             "baseline stage already; the pipeline compares a distilled student with its teacher and "
                             "baseline. Fix: set a method (e.g. admd) and teacher.weights or teacher.model, or train one "
                             "model with `admd-deploy distill --method none`")
        if self.student.model and self.distill.method != "none" and not self.teacher.given:
            raise UsageError(f"teacher: method {self.distill.method!r} needs a teacher: set teacher.weights (a local "
                             ".pt) or teacher.model (a YAML to train from scratch)")
        if self.distill.pseudo_conf is not None and self.data.unlabelled is None:
            raise UsageError("distill.pseudo_conf: pseudo-labels are the teacher's detections on the unlabelled images, "
                             "but data.unlabelled is not set. Fix: set data.unlabelled (a folder of frames, or a count "
                             "for synthetic data), or remove distill.pseudo_conf")
        if self.pretrain is not None:
            for where, model in (("teacher.model", self.teacher.model), ("student.model", self.student.model)):
                if model is not None and not model.endswith((".yaml", ".yml")):
                    raise UsageError(f"pretrain: {where} must be a model YAML to pretrain from scratch; got {model!r}. "
                                     "Remove the pretrain section to start from a checkpoint of your own")
            if self.student.model is None:
                raise UsageError("pretrain: needs student.model (a YAML); student.weights skips training altogether")

    @property
    def student_starts_trained(self) -> bool:
        """Whether the student's training starts from trained weights: a ``.pt`` model, or the pretrain stage's."""
        model = self.student.model
        return model is not None and (self.pretrain is not None or Path(model).suffix == ".pt")

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
    if isinstance(recipe.data.unlabelled, str):
        from admd_deploy.data.unlabelled import list_images

        try:
            list_images(recipe.data.unlabelled)
        except UsageError as err:
            raise RecipeError("data.unlabelled", str(err)) from err
    if recipe.teacher.weights and not recipe.teacher.weights.endswith(".pt"):
        raise RecipeError("teacher.weights", f"must be a .pt checkpoint; got {recipe.teacher.weights}")
    for where, value in (("student.model", recipe.student.model), ("teacher.model", recipe.teacher.model)):
        if value and value.endswith(".pt"):
            need(where, value, "model checkpoint")
        elif value and not value.endswith((".yaml", ".yml")):
            raise RecipeError(where, f"must be a model .yaml (e.g. yolo11n-obb.yaml) or a local .pt; got {value!r}")
    # Read every model's task now (a YAML's head, a checkpoint's saved model): a missing YAML, a text file named
    # .pt or a detect model under task obb fails here, not after the teacher and baseline have trained.
    for where in ("teacher.weights", "teacher.model", "student.model", "student.weights"):
        section, key = where.split(".")
        value = getattr(getattr(recipe, section), key)
        if value is not None:
            checks.task_matches(where, value, recipe.task)
    if recipe.data.source == "yolo":
        from admd_deploy.data.check import resolve_data_yaml

        resolve_data_yaml(recipe.data.path, "data.path")


def parse_override(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise RecipeError(text, "an override is KEY=VALUE with a dotted key, e.g. distill.epochs=5")
    return key.strip(), yaml.safe_load(value)


def load_recipe(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Recipe:
    """Read, override, validate and resolve a recipe file."""
    path = Path(path).expanduser()
    if not path.is_file() and path.suffix == "" and len(path.parts) == 1:  # a recipe shipped in the package, by name
        path = Path(str(resources.files("admd_deploy") / "recipes" / f"{path.name}.yaml"))
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
                         ("data", "path"), ("data", "unlabelled")):
        node = data.get(section)
        if isinstance(node, dict) and isinstance(node.get(key), str):
            node[key] = _resolve(base, node[key])
    data["source"] = str(path.resolve())
    recipe = load(Recipe, data)
    try:
        _check_files(recipe)
    except RecipeError:
        raise
    except UsageError as err:  # the shared checks name the field themselves
        raise RecipeError("", str(err)) from err
    return recipe


def save_recipe(recipe: Recipe, path: Path) -> None:
    path.write_text(yaml.safe_dump(recipe.to_dict(), sort_keys=False))
