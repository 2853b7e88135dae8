"""``admd_deploy.distill(teacher=..., student=..., data=..., method="admd", **train_args)``."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from admd_deploy.kd.config import (DistillConfig, knob_docs, knob_fields, knob_signature, start_defaults,
                                    uses_teacher)
from admd_deploy.errors import MissingFileError, UsageError

LOGGER = logging.getLogger(__name__)

TASKS = ("detect", "obb")


@dataclass(frozen=True)
class DistillResult:
    """What a distillation run produced.

    Attributes:
        save_dir: The run folder (``results.csv``, ``args.yaml``, ``weights/``).
        best: ``weights/best.pt``: a plain Ultralytics student checkpoint.
        last: ``weights/last.pt``.
        metrics: Final validation metrics of ``best.pt`` (``metrics/mAP50(B)`` and friends).
    """

    save_dir: Path
    best: Path
    last: Path
    metrics: dict[str, float] = field(default_factory=dict)


def _existing_file(value: str | Path, what: str, suffixes: tuple[str, ...]) -> Path:
    path = Path(value).expanduser()
    if path.suffix not in suffixes:
        raise UsageError(f"{what} must be a {' or '.join(suffixes)} file; got {str(value)!r}")
    if not path.is_file():
        raise MissingFileError(f"{what} not found: {path.resolve()} (admd-deploy uses local files only)")
    return path.resolve()


def _model_spec(value: str | Path, what: str) -> str:
    """A local .pt must exist; a .yaml may also be a model name that Ultralytics ships (yolo11n.yaml)."""
    path = Path(value).expanduser()
    if path.suffix == ".pt":
        return str(_existing_file(path, what, (".pt",)))
    if path.suffix in {".yaml", ".yml"}:
        return str(path.resolve()) if path.is_file() else str(value)
    raise UsageError(f"{what} must be a local .pt checkpoint or a model .yaml; got {str(value)!r}")


def _check_train_args(train_args: dict[str, Any]) -> None:
    """The recipe's own checks of the same values: a flag and a recipe value are refused alike."""
    from admd_deploy import checks

    own = {"project", "name", "exist_ok", "model", "data", "task", "resume", "distill"}
    for key, value in train_args.items():
        if key not in own:
            checks.train_arg(key, key)
        if value is None:
            continue
        if key in ("epochs", "batch"):
            checks.positive_int(key, value)
        elif key == "imgsz":
            checks.image_size(key, value)
        elif key == "device":
            train_args[key] = checks.device(key, value)
            checks.device_available(key, train_args[key])


def guess_task(student: str) -> str:
    """detect or obb, read from the student model (its YAML head or checkpoint), without building it."""
    from admd_deploy import checks

    task = checks.model_task("student", student)  # the model inside a .pt, not its file name (best.pt says nothing)
    if task not in TASKS:
        raise UsageError(f"student {student!r} is a {task!r} model; admd-deploy distils {', '.join(TASKS)} models")
    return task


def distill(
    teacher: str | Path | None,
    student: str | Path,
    data: str | Path,
    method: str | None = None,
    *,
    task: str | None = None,
    resume: bool | str | Path = False,
    allow_corrupt: bool = False,
    **kwargs: Any,
) -> DistillResult:
    """Distil ``teacher`` into ``student`` on ``data`` with Ultralytics' trainer.

    Every distillation knob of :class:`~admd_deploy.kd.config.DistillConfig` is a keyword argument (the
    list below and the signature are generated from it); ``None`` takes its declared default. Every other
    keyword argument is handed to Ultralytics' trainer.

    Args:
        teacher: Local teacher ``.pt`` (or a model YAML, untrained, for plumbing tests). Ignored for
            method ``none``.
        student: Student model YAML (e.g. ``yolo11n-obb.yaml``) or local ``.pt`` to start from.
        data: Local dataset YAML (Ultralytics format).
<knobs>
        task: ``detect`` or ``obb``; read from the student when ``None``.
        resume: ``True`` resumes ``project/name/weights/last.pt``; a path resumes that checkpoint.
        allow_corrupt: Train even when images or label files of ``data`` would be dropped (they are
            listed in a warning); by default such a dataset is refused before training.
        **kwargs: The knobs above, and any Ultralytics training argument (``epochs``, ``imgsz``,
            ``batch``, ``device``, ``project``, ``name``, ``nbs``, ``seed``, ...).

    Returns:
        The run folder, checkpoints and final metrics.

    Raises:
        UsageError: A bad argument, a missing or unreadable file, a student whose head is not ``task``,
            an unknown Ultralytics argument, a device this machine lacks, or a dataset with files
            training would drop (unless ``allow_corrupt``), each in one line, before any training.
    """
    from admd_deploy import checks

    names = {f.name for f in knob_fields()} - {"teacher"}
    knobs = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
    knobs = {k: v for k, v in {**knobs, "method": method}.items() if v is not None}
    if isinstance(knobs.get("params"), Mapping):
        knobs["params"] = dict(knobs["params"])
    if knobs.get("unlabelled") is not None:  # checked now (a folder with images), and absolute for the trainer
        from admd_deploy.data.unlabelled import list_images

        knobs["unlabelled"] = str(Path(str(knobs["unlabelled"])).expanduser().resolve())
        list_images(knobs["unlabelled"])
    if knobs.get("pseudo_conf") is not None and knobs.get("unlabelled") is None:
        raise UsageError("pseudo_conf labels the unlabelled images with the teacher's detections: pass unlabelled= "
                         "(--unlabelled) too, or remove pseudo_conf")
    method = knobs.get("method", DistillConfig.method)
    train_args = kwargs
    _check_train_args(train_args)
    config = None
    if not resume:  # a resumed run continues with the settings saved in its checkpoint
        knobs = start_defaults(knobs, trained=Path(str(student)).suffix == ".pt")
        needed = uses_teacher(method, knobs.get("pseudo_conf"))
        config = DistillConfig(teacher=_model_spec(teacher, "teacher") if needed and teacher is not None else None,
                               **knobs)
    if task is not None and task not in TASKS:
        raise UsageError(f"task must be one of {', '.join(TASKS)}; got {task!r}")
    data_path = _existing_file(data, "data", (".yaml", ".yml"))
    student_spec = _model_spec(student, "student")
    if not resume:  # a resumed run reads its model from last.pt
        task = checks.task_matches("student", student_spec, task, "task") if task else guess_task(student_spec)
    else:
        task = task or guess_task(student_spec)
    if config is not None and config.teacher is not None:  # a text file named .pt fails here, not in the trainer
        checks.task_matches("teacher", config.teacher, task, "task")
    from admd_deploy.data.check import require_clean

    require_clean(data_path, allow_corrupt, "data", "--allow-corrupt (allow_corrupt=True)")
    project = Path(train_args.pop("project", None) or "runs/distill").expanduser().resolve()
    name = train_args.pop("name", None) or method

    args: dict[str, Any] = {"model": student_spec, "data": str(data_path), "project": str(project), "name": name}
    args.update({k: v for k, v in train_args.items() if v is not None})
    if resume:
        last = project / name / "weights" / "last.pt" if resume is True else Path(resume).expanduser().resolve()
        if not last.is_file():
            raise MissingFileError(f"nothing to resume: {last} does not exist (check --project/--name)")
        args = {k: v for k, v in args.items() if k not in {"project", "name"}}  # they come from the checkpoint
        args.update(resume=str(last), model=str(last))
    else:
        args.setdefault("exist_ok", False)

    from admd_deploy.ultra.trainer import trainer_for_task

    if config is not None:
        args["distill"] = config.to_dict()
    trainer = trainer_for_task(task)(overrides={**args, "task": task})
    trainer.train()
    metrics = {k: float(v) for k, v in (trainer.metrics or {}).items() if isinstance(v, (int, float))}
    return DistillResult(save_dir=Path(trainer.save_dir), best=Path(trainer.best), last=Path(trainer.last), metrics=metrics)


distill.__signature__ = knob_signature(distill, after="method")  # type: ignore[attr-defined]
distill.__doc__ = (distill.__doc__ or "").replace("<knobs>", knob_docs(skip=("teacher",)))
