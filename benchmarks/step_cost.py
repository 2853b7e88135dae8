"""Cost of a distilled training step against a student-only step, on the real trainer's batches.

    python benchmarks/step_cost.py --teacher yolo11s.yaml --student yolo11n.yaml --imgsz 256 --batch 8

Times, interleaved in one process (the machine is noisy, so ratios are measured together):
  student   forward + loss + backward of the student alone
  teacher   the teacher's forward (no_grad, fused) alone
  distilled the KDModel step: teacher forward + student forward + det loss + KD loss + backward
  kd_loss   the KD criterion (align + loss + weight) forward + backward alone
and prints medians, the ratio distilled/student and its lower bound (student + teacher)/student.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch


def timed(fn, reps: int) -> list[float]:
    out = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1e3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="yolo11s.yaml")
    ap.add_argument("--student", default="yolo11n.yaml")
    ap.add_argument("--method", default="admd")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from admd_deploy.data import SynthConfig, generate_synthetic
    from admd_deploy.kd.config import DistillConfig
    from admd_deploy.kd.yolo import trainer_for_task
    from admd_deploy.kd.api import guess_task

    task = guess_task(args.student)
    tmp = Path(tempfile.mkdtemp(prefix="step-cost-"))
    data = generate_synthetic(tmp / "data", SynthConfig(task=task, n_train=args.batch * 2, n_val=4, imgsz=args.imgsz))
    cfg = DistillConfig(method=args.method, teacher=args.teacher)
    trainer = trainer_for_task(task)(overrides=dict(
        model=args.student, data=str(data), imgsz=args.imgsz, batch=args.batch, nbs=args.batch, device="cpu",
        plots=False, project=str(tmp / "runs"), name="cost", exist_ok=True, distill=cfg.to_dict(), mosaic=0.0,
    ))
    trainer._setup_train()
    model = trainer.model
    model.train()
    batch = trainer.preprocess_batch(next(iter(trainer.train_loader)))
    student, teacher = model.student_model, model.teacher

    def student_step():
        loss, _ = student.loss(batch)
        loss.sum().backward()

    def teacher_fwd():
        with torch.no_grad():
            teacher(batch["img"])

    def distilled_step():
        loss, _ = model(batch)
        loss.sum().backward()

    from admd_deploy.kd.taps import FeatureTap
    from admd_deploy.kd.yolo.model import detection_head

    with torch.no_grad(), FeatureTap(detection_head(teacher)) as tt:
        teacher(batch["img"])
    with FeatureTap(detection_head(student)) as ts:
        student(batch["img"])
    s_feats = [f.detach().requires_grad_() for f in ts.require()]

    def kd_only():
        model.kd(s_feats, tt.require(), epoch=0.0).loss.backward()

    for fn in (student_step, teacher_fwd, distilled_step, kd_only):
        fn()  # warm-up
    times: dict[str, list[float]] = {"student": [], "teacher": [], "distilled": [], "kd_loss": []}
    for _ in range(args.rounds):
        times["student"] += timed(student_step, args.reps)
        times["teacher"] += timed(teacher_fwd, args.reps)
        times["distilled"] += timed(distilled_step, args.reps)
        times["kd_loss"] += timed(kd_only, args.reps)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.teacher} -> {args.student}, "
          f"method {args.method}, batch {args.batch}, imgsz {args.imgsz}, {args.rounds}x{args.reps} reps")
    print("| step | median ms | IQR ms |\n|---|---|---|")
    for k, v in times.items():
        q = statistics.quantiles(v, n=4)
        print(f"| {k} | {med[k]:.1f} | {q[2] - q[0]:.1f} |")
    print(f"\ndistilled / student = {med['distilled'] / med['student']:.2f}; "
          f"lower bound (student + teacher) / student = {(med['student'] + med['teacher']) / med['student']:.2f}; "
          f"KD loss share of the distilled step = {100 * med['kd_loss'] / med['distilled']:.1f}%")


if __name__ == "__main__":
    main()
