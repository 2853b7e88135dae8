"""The data, teacher, baseline and student stages."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path
from typing import Any

from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.ledger import file_sha256, stable_hash, write_json_atomic
from admd_deploy.recipe import TrainSettings

LOGGER = logging.getLogger(__name__)


# --- data -------------------------------------------------------------------------------------------
def data_inputs(ctx: Context) -> dict[str, Any]:
    d = ctx.recipe.data
    data = {"source": d.source, "path": d.path, "synthetic": d.synthetic, "dota": d.dota, "dior": d.dior}
    if d.unlabelled is not None:  # only when set: the keys of runs made before it existed stay valid
        data["unlabelled"] = d.unlabelled
    return {"task": ctx.recipe.task, "data": data}


def run_data(ctx: Context, out: Path) -> dict[str, Any]:
    d, task = ctx.recipe.data, ctx.recipe.task
    if d.source == "synthetic":
        from admd_deploy.data import SynthConfig, generate_synthetic

        cfg = SynthConfig(task=task, **{k: tuple(v) if isinstance(v, list) else v for k, v in d.synthetic.items()})
        yaml_path = generate_synthetic(out / "synthetic", cfg)
    elif d.source == "yolo":
        yaml_path = Path(d.path).resolve()
    elif d.source == "dota":
        if task != "obb":
            raise ValueError("data.source 'dota' gives oriented boxes: set task: obb")
        from admd_deploy.data.dota import convert_dota

        yaml_path = convert_dota(d.path, out / "dota", **d.dota)
    else:
        from admd_deploy.data.dior import convert_dior

        yaml_path = convert_dior(d.path, out / "dior", oriented=task == "obb", **d.dior)
    from admd_deploy.data.check import require_clean

    require_clean(yaml_path, d.allow_corrupt, "data")  # files training would drop: refused unless allowed
    return {"data_yaml": str(yaml_path), "fingerprint": _dataset_fingerprint(Path(yaml_path)),
            **_unlabelled(ctx, out)}


def _unlabelled(ctx: Context, out: Path) -> dict[str, Any]:
    """The data stage's unlabelled images: a synthetic count is generated here; a folder is used in place."""
    d, task = ctx.recipe.data, ctx.recipe.task
    if d.unlabelled is None:
        return {}
    from admd_deploy.data import unlabelled as unl

    if isinstance(d.unlabelled, int):
        from admd_deploy.data import SynthConfig
        from admd_deploy.data.synth import generate_unlabelled

        cfg = SynthConfig(task=task, **{k: tuple(v) if isinstance(v, list) else v for k, v in d.synthetic.items()})
        folder = generate_unlabelled(out / "unlabelled", cfg, d.unlabelled)
    else:
        folder = Path(d.unlabelled).resolve()
    files = unl.list_images(folder)
    LOGGER.info("data: %d unlabelled images for the KD term in %s", len(files), folder)
    return {"unlabelled": str(folder), "unlabelled_images": len(files),
            "unlabelled_fingerprint": unl.fingerprint(folder, files)}


def distill_key(ctx: Context, cfg: dict[str, Any]) -> dict[str, Any]:
    """A student's distill settings as its cache key hashes them: :func:`~admd_deploy.kd.config.cache_form`, with
    the unlabelled images it distils on named by their fingerprint (content), not their folder."""
    from admd_deploy.kd.config import cache_form

    return cache_form({**cfg, "unlabelled": unlabelled_images(ctx, cfg.get("method", "none"),
                                                              cfg.get("pseudo_conf"))[1]})


def unlabelled_images(ctx: Context, method: str, pseudo_conf: float | None = None) -> tuple[str | None, str | None]:
    """(folder, fingerprint) of the unlabelled images a student of ``method`` distils on (or, with ``pseudo_conf``,
    trains on with the teacher's labels); (None, None) for ``none`` without pseudo-labels (the student alone has no
    KD term) or without ``data.unlabelled``."""
    from admd_deploy.kd.config import uses_teacher

    data = ctx.out("data")
    if not uses_teacher(method, pseudo_conf) or not data.get("unlabelled"):
        return None, None
    return data["unlabelled"], data["unlabelled_fingerprint"]


def _dataset_fingerprint(yaml_path: Path) -> str:
    """Changes when the data YAML or the set/size of label files changes (cheap: no image hashing)."""
    import yaml

    meta = yaml.safe_load(yaml_path.read_text())
    root = Path(meta.get("path") or yaml_path.parent)
    if not root.is_absolute():
        root = (yaml_path.parent / root).resolve()
    labels = sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("labels/**/*.txt"))
    return stable_hash({"yaml": yaml_path.read_text(), "labels": labels})


# --- training stages ----------------------------------------------------------------------------------
def _resumable(last: Path) -> bool:
    """An interrupted run's last.pt still has its optimizer state; a finished one was stripped (epoch -1)."""
    if not last.is_file():
        return False
    import torch

    try:
        ckpt = torch.load(last, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - a truncated file is simply not resumable
        return False
    return ckpt.get("epoch", -1) != -1 and ckpt.get("optimizer") is not None


def train(ctx: Context, stage: str, out: Path, model: str, settings: TrainSettings, distill: dict[str, Any],
          data_yaml: str | None = None) -> dict:
    """Train one model in ``out/train``, resuming an interrupted attempt of the same stage inputs.

    ``data_yaml`` defaults to the data stage's dataset (the pretrain stage passes its source data)."""
    from admd_deploy.ultra.trainer import trainer_for_task

    recipe = ctx.recipe
    data_yaml = data_yaml or ctx.out("data")["data_yaml"]
    run = out / "train"
    last = run / "weights" / "last.pt"
    resume = ctx.resumable and _resumable(last)
    if resume:
        LOGGER.info("%s: resuming the interrupted training from %s", stage, last)
        overrides = {"resume": str(last), "model": str(last), "data": data_yaml}
    else:
        if run.exists():
            shutil.rmtree(run)  # results of other inputs: this stage's own folder only
        overrides = {
            **settings.ultralytics_args(), "model": model, "data": data_yaml,
            "project": str(out), "name": "train", "exist_ok": True, "seed": recipe.seed, "device": recipe.device,
            "distill": distill,
        }
    trainer = trainer_for_task(recipe.task)(overrides=overrides)
    trainer.train()
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    save_dir = Path(trainer.save_dir)
    return {"weights": str(best), "sha256": file_sha256(best), "run_dir": str(save_dir),
            "results_csv": str(save_dir / "results.csv")}


# --- pretrain: a source-domain start for teacher and student, cached across runs ------------------------
def pretrain_inputs(ctx: Context) -> dict[str, Any]:
    r = ctx.recipe
    if r.pretrain is None:
        return {"enabled": False}
    return {"pretrain": r.to_dict()["pretrain"], "task": r.task, "teacher": r.teacher.model, "student": r.student.model,
            "seed": r.seed}


def pretrain_cache(ctx: Context) -> Path:
    """Where the pretrained checkpoints of these inputs live, shared by every run and benchmark."""
    from admd_deploy.ultra import env as yolo_env

    return yolo_env.home() / "pretrain" / stable_hash(pretrain_inputs(ctx))[:16]


def run_pretrain(ctx: Context, out: Path) -> dict[str, Any]:
    """Train the teacher and student models from scratch on the source data, or reuse the cached ones."""
    import json

    r = ctx.recipe
    if r.pretrain is None:
        return {"skipped": "no pretrain section: teacher and student start from their recipe models"}
    cache = pretrain_cache(ctx)
    done = cache / "pretrain.json"
    if done.is_file():
        outputs = json.loads(done.read_text())
        if all(Path(v["weights"]).is_file() for v in outputs["models"].values()):
            LOGGER.info("pretrain: reusing %s", cache)
            return {**outputs, "reused": True}
    p = r.pretrain
    from admd_deploy.data import SynthConfig, generate_synthetic

    synth = SynthConfig(task=r.task, **{k: tuple(v) if isinstance(v, list) else v for k, v in p.synthetic.items()})
    data_yaml = str(generate_synthetic(cache / "source", synth))
    models: dict[str, Any] = {}
    for role, model, epochs in (("teacher", r.teacher.model, p.teacher_epochs or p.epochs), ("student", r.student.model, p.epochs)):
        if model is None:
            continue
        settings = dataclasses.replace(p, epochs=epochs)
        res = train(ctx, f"pretrain {role}", cache / role, model, settings, {"method": "none"}, data_yaml=data_yaml)
        models[role] = {"weights": res["weights"], "sha256": res["sha256"], "results_csv": res["results_csv"]}
    outputs = {"cache": str(cache), "source_data": data_yaml, "models": models}
    write_json_atomic(done, outputs)  # written last: an interrupted pretrain is never taken as done
    return {**outputs, "reused": False}


def start_model(ctx: Context, role: str) -> str | None:
    """The model a training of ``role`` (teacher / student) starts from: the pretrained checkpoint when
    the recipe pretrains, else the recipe's own model."""
    pre = ctx.out("pretrain").get("models", {}).get(role)
    if pre:
        return pre["weights"]
    return ctx.recipe.teacher.model if role == "teacher" else ctx.recipe.student.model


def _start_sha(ctx: Context, role: str) -> str | None:
    return ctx.out("pretrain").get("models", {}).get(role, {}).get("sha256")


# --- teacher, baseline, student ----------------------------------------------------------------------
def teacher_inputs(ctx: Context) -> dict[str, Any]:
    t = ctx.recipe.teacher
    weights = {"weights_sha256": file_sha256(t.weights)} if t.weights else {}
    start = {"start_sha256": s} if (s := _start_sha(ctx, "teacher")) else {}
    return {"teacher": ctx.recipe.to_dict()["teacher"], **weights, **start, "data": ctx.out("data").get("fingerprint"),
            "seed": ctx.recipe.seed}


def run_teacher(ctx: Context, out: Path) -> dict[str, Any]:
    t = ctx.recipe.teacher
    if not t.given:
        return {"skipped": "no teacher in the recipe"}
    if t.weights:
        return {"weights": t.weights, "sha256": file_sha256(t.weights), "trained": False}
    return {**train(ctx, "teacher", out, start_model(ctx, "teacher"), t, {"method": "none"}), "trained": True}


def student_common(ctx: Context) -> dict[str, Any]:
    """What every student training of ``ctx`` shares (start model, schedule, data, seed): the part of a
    student stage's inputs before the distillation settings (the pipeline and ``bench kd`` key on it)."""
    d = ctx.recipe.distill
    start = {"start_sha256": s} if (s := _start_sha(ctx, "student")) else {}
    return {"student": ctx.recipe.student.model, **start, "train": d.ultralytics_args(),
            "data": ctx.out("data").get("fingerprint"), "seed": ctx.recipe.seed}


def baseline_inputs(ctx: Context) -> dict[str, Any]:
    return {**student_common(ctx), "enabled": ctx.recipe.distill.baseline}


def run_baseline(ctx: Context, out: Path) -> dict[str, Any]:
    if ctx.recipe.student.weights:
        return {"skipped": "student.weights given: nothing to train"}
    if not ctx.recipe.distill.baseline:
        return {"skipped": "distill.baseline is false"}
    return train(ctx, "baseline", out, start_model(ctx, "student"), ctx.recipe.distill, {"method": "none"})


def student_inputs(ctx: Context) -> dict[str, Any]:
    if ctx.recipe.student.weights:
        return {"weights_sha256": file_sha256(ctx.recipe.student.weights)}
    from admd_deploy.kd.config import DistillConfig, start_defaults, uses_teacher

    # The knobs as DistillConfig.to_dict() has them; the teacher is keyed by its sha256 below. "teacher" keeps the
    # value this key has always held (the teacher's path is not known before its stage), so finished runs stay cached.
    knobs = start_defaults(ctx.recipe.distill.knobs(), ctx.recipe.student_starts_trained)
    cfg = {**DistillConfig.knob_dict(knobs),
           "teacher": "teacher.pt" if uses_teacher(ctx.recipe.distill.method, ctx.recipe.distill.pseudo_conf) else None}
    return {**student_common(ctx), "distill": distill_key(ctx, cfg), "teacher_sha256": ctx.out("teacher").get("sha256")}


def run_student(ctx: Context, out: Path) -> dict[str, Any]:
    if ctx.recipe.student.weights:
        w = ctx.recipe.student.weights
        return {"weights": w, "sha256": file_sha256(w), "trained": False}
    cfg = ctx.recipe.distill.config(ctx.out("teacher")["weights"], trained=ctx.recipe.student_starts_trained)
    cfg = dataclasses.replace(cfg, unlabelled=unlabelled_images(ctx, cfg.method, cfg.pseudo_conf)[0])
    return train(ctx, "student", out, start_model(ctx, "student"), ctx.recipe.distill, cfg.to_dict())
