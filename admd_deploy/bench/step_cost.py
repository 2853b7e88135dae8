"""``admd-deploy bench step-cost``: a distilled training step against a student-only step, on the real trainer's batches.

    admd-deploy bench step-cost --teacher yolo11s.yaml --student yolo11n.yaml --imgsz 256 --batch 8
    python benchmarks/step_cost.py --teacher yolo11s.yaml --student yolo11n.yaml --imgsz 256 --batch 8   # same

Times, interleaved in one process (the machine is noisy, so ratios are measured together):
  student   forward + loss + backward of the student alone
  teacher   the teacher's forward (no_grad, fused) alone
  distilled the KDModel step: teacher forward + student forward + det loss + KD loss + backward
  kd_loss   the KD criterion (align + loss + weight) forward + backward alone
and reports medians, IQRs, the ratio distilled/student, its lower bound (student + teacher)/student and
the share of the KD loss in the distilled step. Models built from YAML are untrained: cost does not
depend on the weights. Runs on CPU; the data is a small synthetic set in a temporary folder.
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from admd_deploy.errors import UsageError

STEPS = ("student", "teacher", "distilled", "kd_loss")


def timed(fn: Callable[[], Any], reps: int) -> list[float]:
    """Wall times of ``reps`` calls of ``fn``, in milliseconds."""
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def summarize(times: dict[str, list[float]]) -> dict[str, Any]:
    """Medians, IQRs (ms) and the ratios of the four steps' samples (see the module docstring).

    Raises:
        UsageError: If a step is missing or has fewer than 2 samples (no IQR).
    """
    missing = [k for k in STEPS if len(times.get(k, ())) < 2]
    if missing:
        raise UsageError(f"step-cost needs at least 2 samples of each step ({', '.join(STEPS)}); "
                         f"too few for {', '.join(missing)}: raise --reps or --rounds")
    med = {k: statistics.median(times[k]) for k in STEPS}
    iqr = {}
    for k in STEPS:
        q = statistics.quantiles(times[k], n=4)
        iqr[k] = q[2] - q[0]
    return {
        "median_ms": med,
        "iqr_ms": iqr,
        "distilled_over_student": med["distilled"] / med["student"],
        "lower_bound": (med["student"] + med["teacher"]) / med["student"],
        "kd_loss_share": med["kd_loss"] / med["distilled"],
    }


def run_step_cost(
    teacher: str = "yolo11s.yaml",
    student: str = "yolo11n.yaml",
    method: str = "admd",
    imgsz: int = 256,
    batch: int = 8,
    reps: int = 10,
    rounds: int = 3,
) -> dict[str, Any]:
    """Time the four steps interleaved, ``rounds`` x ``reps`` each, after one warm-up call.

    Args:
        teacher: Teacher model YAML or local .pt.
        student: Student model YAML or local .pt (its task picks the trainer: detect or obb).
        method: Distillation method (see ``admd-deploy distill --method``).
        imgsz: Training image size.
        batch: Batch size.
        reps: Repeats of each step per round.
        rounds: Rounds; each runs every step ``reps`` times, in turn.

    Returns:
        The setup (``torch``, ``threads``, the arguments), the raw ``times_ms`` per step and
        :func:`summarize`'s ``median_ms``, ``iqr_ms``, ``distilled_over_student``, ``lower_bound``
        ``(student + teacher) / student`` and ``kd_loss_share`` (a fraction of the distilled step).

    Raises:
        UsageError: If ``batch``, ``reps`` or ``rounds`` is not positive, ``imgsz`` is not a multiple of 32,
            ``method`` is ``none``, ``reps * rounds`` < 2 (no IQR), or the method or models are invalid.
    """
    from admd_deploy import checks

    for name, value in (("batch", batch), ("reps", reps), ("rounds", rounds)):
        checks.positive_int(f"--{name}", value)
    checks.image_size("--imgsz", imgsz)  # the recipe's own check of the same value
    if method == "none":
        raise UsageError("--method: step-cost times a distilled step against the student alone, and 'none' has no "
                         "distilled step. Fix: pick a distillation method, e.g. --method admd (or cwd, mgd, mse, pkd, "
                         "score_l2)")
    if reps * rounds < 2:
        raise UsageError(f"--reps x --rounds must be >= 2 to give an IQR; got {reps} x {rounds}")
    import torch

    from admd_deploy.data import SynthConfig, generate_synthetic
    from admd_deploy.api import guess_task
    from admd_deploy.kd.config import DistillConfig
    from admd_deploy.kd.taps import FeatureTap
    from admd_deploy.ultra.model import detection_head
    from admd_deploy.ultra.trainer import trainer_for_task

    task = guess_task(student)
    cfg = DistillConfig(method=method, teacher=teacher)
    tmp = Path(tempfile.mkdtemp(prefix="step-cost-"))
    try:
        data = generate_synthetic(tmp / "data", SynthConfig(task=task, n_train=batch * 2, n_val=4, imgsz=imgsz))
        trainer = trainer_for_task(task)(overrides=dict(
            model=student, data=str(data), imgsz=imgsz, batch=batch, nbs=batch, device="cpu", plots=False,
            project=str(tmp / "runs"), name="cost", exist_ok=True, distill=cfg.to_dict(), mosaic=0.0,
        ))
        trainer._setup_train()
        model = trainer.model
        model.train()
        images = trainer.preprocess_batch(next(iter(trainer.train_loader)))
        student_net, teacher_net = model.student_model, model.teacher

        def student_step() -> None:
            loss, _ = student_net.loss(images)
            loss.sum().backward()

        def teacher_fwd() -> None:
            with torch.no_grad():
                teacher_net(images["img"])

        def distilled_step() -> None:
            loss, _ = model(images)
            loss.sum().backward()

        with torch.no_grad(), FeatureTap(detection_head(teacher_net)) as tt:
            teacher_net(images["img"])
        with FeatureTap(detection_head(student_net)) as ts:
            student_net(images["img"])
        s_feats = [f.detach().requires_grad_() for f in ts.require()]

        def kd_only() -> None:
            model.kd(s_feats, tt.require(), epoch=0.0).loss.backward()

        steps = dict(zip(STEPS, (student_step, teacher_fwd, distilled_step, kd_only)))
        for fn in steps.values():
            fn()  # warm-up
        times: dict[str, list[float]] = {k: [] for k in STEPS}
        for _ in range(rounds):
            for k, fn in steps.items():
                times[k] += timed(fn, reps)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "teacher": teacher, "student": student,
        "method": method, "task": task, "imgsz": imgsz, "batch": batch, "reps": reps, "rounds": rounds,
        "times_ms": times, **summarize(times),
    }


def markdown(result: dict[str, Any]) -> str:
    """The setup line, the table of medians and IQRs, and the ratio line (what the script always printed)."""
    med, iqr = result["median_ms"], result["iqr_ms"]
    lines = [
        f"torch {result['torch']}, {result['threads']} threads, {result['teacher']} -> {result['student']}, "
        f"method {result['method']}, batch {result['batch']}, imgsz {result['imgsz']}, "
        f"{result['rounds']}x{result['reps']} reps",
        "| step | median ms | IQR ms |",
        "|---|---|---|",
        *(f"| {k} | {med[k]:.1f} | {iqr[k]:.1f} |" for k in STEPS),
        "",
        f"distilled / student = {result['distilled_over_student']:.2f}; "
        f"lower bound (student + teacher) / student = {result['lower_bound']:.2f}; "
        f"KD loss share of the distilled step = {100 * result['kd_loss_share']:.1f}%",
    ]
    return "\n".join(lines)
