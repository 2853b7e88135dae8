"""How well can a 1x1 connector map the student's feature maps onto the teacher's, and how far is one
epoch of the connector warm-up from that? (the measurement behind `distill.align_init: lstsq`)

For a student and a teacher checkpoint and a folder of training images, taps the maps feeding each
model's detection head (the levels KD distils), on `--batches` batches of `--batch` images in eval mode,
and prints per level the mean squared discrepancy `(T - A)^2` (over locations and teacher channels) of:
- the teacher's per-channel mean (what a connector that ignores the student achieves);
- a connector at PyTorch's init;
- that connector after one pass of AdamW over the batches (the connector warm-up: the student frozen,
  lr as Ultralytics' `optimizer=auto` picks for a short run, `--lr`);
- the ridge least-squares map at each `--ridges` value (relative to the mean diagonal of the student's
  Gram matrix, as `KDCriterion.fit_align`), with the fitted weight's norm, against the init's.
It also prints the spread of the eigenvalues of the student's (uncentred) feature covariance: the
conditioning that makes a small ridge amplify directions the student barely uses.

Usage (the numbers in BENCHMARKS.md, "The epoch-2 fall and a least-squares connector"):
    python benchmarks/connector_fit.py $ADMD_DEPLOY_HOME/pretrain/<key>/student/train/weights/best.pt \\
        runs/bench-kd-bench-kd-pretrained/teacher/train/weights/best.pt \\
        runs/bench-kd-bench-kd-pretrained/data/synthetic/images/train
"""

from __future__ import annotations

import argparse
from pathlib import Path

import admd_deploy  # noqa: F401  (keeps Ultralytics offline)
import torch

from admd_deploy.kd.align import build_align
from admd_deploy.kd.taps import FeatureTap
from admd_deploy.pipeline.exporting import letterboxed
from admd_deploy.ultra.checkpoints import load_checkpoint
from admd_deploy.ultra.model import detection_head
from admd_deploy.ultra.snapshots import IMAGE_SUFFIXES


def load(path: Path) -> torch.nn.Module:
    return load_checkpoint(path)[0].float().eval()


def maps(model: torch.nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad(), FeatureTap(detection_head(model)) as tap:
        model(x)
    return [f.double() for f in tap.require()]


def images(folder: Path, batch: int, batches: int, imgsz: int) -> list[torch.Tensor]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)[:batch * batches]
    if not files:
        raise SystemExit(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)})")
    # letterboxed as Ultralytics' val does; the last batch may be short, as in training
    return [torch.from_numpy(letterboxed(files[i:i + batch], imgsz)) for i in range(0, len(files), batch)]


def locations(x: torch.Tensor) -> torch.Tensor:
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("student", type=Path)
    ap.add_argument("teacher", type=Path)
    ap.add_argument("images", type=Path)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--batches", type=int, default=19, help="at most this many (default: one epoch of the 300-image benchmark)")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--lr", type=float, default=0.001111)
    ap.add_argument("--ridges", default="0.001,0.1")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    student, teacher = load(args.student), load(args.teacher)
    data = [(maps(student, x), maps(teacher, x)) for x in images(args.images, args.batch, args.batches, args.imgsz)]
    widths = [(s.shape[1], t.shape[1]) for s, t in zip(*data[0])]
    print(f"{args.student} -> {args.teacher}: levels {widths}, {len(data)} batches of up to {args.batch} images")
    for lv, (cs, ct) in enumerate(widths):
        s = torch.cat([locations(d[0][lv]) for d in data])
        t = torch.cat([locations(d[1][lv]) for d in data])
        s1 = torch.cat([s, torch.ones(len(s), 1, dtype=s.dtype)], 1)
        gram, cross = s1.T @ s1, s1.T @ t

        def mse(w: torch.Tensor) -> float:
            return float((t - s1 @ w).pow(2).mean())

        conv = build_align([cs], [ct])[0].double()
        init = torch.cat([conv.weight.detach()[:, :, 0, 0].T, conv.bias.detach()[None]])
        opt = torch.optim.AdamW(conv.parameters(), lr=args.lr, weight_decay=0.0)
        for d in data:  # the warm-up: one AdamW step a batch on the plain squared error
            loss = (d[1][lv] - conv(d[0][lv])).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        warm = torch.cat([conv.weight.detach()[:, :, 0, 0].T, conv.bias.detach()[None]])
        eig = torch.linalg.eigvalsh(gram[:cs, :cs] / len(s))
        print(f"level {lv} ({cs} -> {ct}, {len(s)} locations); student eigenvalues {float(eig[0]):.1e} .. "
              f"{float(eig[-1]):.1e}")
        print(f"  teacher's channel mean  {float((t - t.mean(0)).pow(2).mean()):.4f}")
        print(f"  connector at init       {mse(init):.4f}   |W| {float(init[:cs].norm()):.1f}")
        print(f"  after 1 warm-up epoch   {mse(warm):.4f}   |W| {float(warm[:cs].norm()):.1f}")
        for ridge in (float(r) for r in args.ridges.split(",")):
            penalty = torch.eye(cs + 1, dtype=s.dtype)
            penalty[-1, -1] = 0.0
            w = torch.linalg.solve(gram + ridge * float(torch.diagonal(gram)[:cs].mean()) * penalty, cross)
            print(f"  least squares, ridge {ridge:g}  {mse(w):.4f}   |W| {float(w[:cs].norm()):.1f}")


if __name__ == "__main__":
    main()
