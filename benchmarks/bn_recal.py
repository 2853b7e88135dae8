"""Is a fall in validation mAP a BatchNorm running-statistics lag? (the epoch-2 fall of KD fine-tuning)

For each checkpoint, prints its mAP50 and mAP50-95 under the project's protocol (`admd_deploy.pipeline.evaluate`,
the protocol of `bench kd`) as saved, and again after re-estimating every BatchNorm layer's running mean and
variance on the training images (no gradient, a cumulative average over `--batches` batches of `--batch`
images, letterboxed to `--imgsz`; nothing else changes). A checkpoint whose weights are fine but whose
statistics lag behind fast-moving features gains a lot; a converged one barely moves.

Ultralytics' BatchNorm momentum is 0.03, so the running statistics average over about 33 iterations: on the
300-image benchmark (19 iterations an epoch) that is close to two epochs.

Usage (the numbers in BENCHMARKS.md, "The epoch-2 fall is BatchNorm lag"): train with `save_period=1`, e.g.
    admd-deploy bench kd bench-kd-pretrained data.synthetic.seed=1 distill.args.save_period=1 --methods admd --seeds 0
then
    python benchmarks/bn_recal.py DATA_YAML TRAIN_IMAGES run/weights/epoch0.pt run/weights/epoch1.pt ...
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import admd_deploy  # noqa: F401  (keeps Ultralytics offline)
import torch

from admd_deploy.pipeline.evaluate import val_metrics
from admd_deploy.pipeline.exporting import letterboxed
from admd_deploy.ultra.checkpoints import load_checkpoint
from admd_deploy.ultra.snapshots import IMAGE_SUFFIXES


def recalibrate(model: torch.nn.Module, files: list[Path], batch: int, batches: int, imgsz: int) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches below
    model.train()
    with torch.no_grad():
        for i in range(batches):
            model(torch.from_numpy(letterboxed(files[i * batch:(i + 1) * batch], imgsz)))
    model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", type=Path, help="dataset YAML whose val split is scored")
    ap.add_argument("images", type=Path, help="training images for the statistics")
    ap.add_argument("checkpoints", type=Path, nargs="+")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=18)
    args = ap.parse_args()
    files = sorted(p for p in args.images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < args.batch * args.batches:
        raise SystemExit(f"{args.images}: {len(files)} images, {args.batch * args.batches} needed (--batch x --batches)")
    print("| checkpoint | mAP50 as saved | mAP50-95 as saved | mAP50 BN re-estimated | mAP50-95 BN re-estimated |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for path in args.checkpoints:
            before = val_metrics(path, str(args.data), args.imgsz, args.batch, "cpu")
            model, ckpt = load_checkpoint(path)  # the EMA if present, float32, as Ultralytics loads it
            key = "ema" if ckpt.get("ema") is not None else "model"
            recalibrate(model, files, args.batch, args.batches, args.imgsz)
            ckpt[key] = model
            if key == "ema":
                ckpt["model"] = None
            out = Path(tmp) / path.name
            torch.save(ckpt, out)
            after = val_metrics(out, str(args.data), args.imgsz, args.batch, "cpu")
            print(f"| {path} | {100 * before['map50']:.1f} | {100 * before['map50_95']:.1f} | "
                  f"{100 * after['map50']:.1f} | {100 * after['map50_95']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
