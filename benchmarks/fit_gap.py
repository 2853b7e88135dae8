"""Does distillation add fit that does not generalise? mAP on the training tiles against the validation tiles.

For a `bench kd` output folder, scores its teacher and every student of the given methods twice under the
project's protocol (`admd_deploy.pipeline.evaluate.val_metrics`, the protocol of `bench kd`): on the validation
tiles, and on the training tiles (a copy of the data YAML with `val:` pointing at the training images). It prints
a table per model (train, val, train - val) and, for each method, its paired deltas against `none` on both, and
writes `fit-gap.json` in the folder. A student that memorises what the teacher fitted scores higher than the student
alone on the training tiles and not on the validation tiles; one whose KD term competes with the detection fit is
lower on both.

Usage (the numbers in BENCHMARKS.md, "Why ADMD loses with 100 tiles"):
    admd-deploy bench kd bench-kd-pretrained data.synthetic.seed=1 data.synthetic.n_train=100 \\
        --methods none,admd --seeds 0,1,2 --out runs/n100
    python benchmarks/fit_gap.py runs/n100 --methods admd
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import admd_deploy  # noqa: F401  (keeps Ultralytics offline)
from admd_deploy.pipeline.evaluate import val_metrics


def train_split_yaml(data_yaml: Path) -> Path:
    """A copy of ``data_yaml`` beside it whose ``val`` is its ``train`` split."""
    text = data_yaml.read_text()
    train = re.search(r"^train:\s*(\S+)", text, re.M)
    if train is None or not re.search(r"^val:", text, re.M):
        raise SystemExit(f"{data_yaml}: no 'train:' and 'val:' lines to swap")
    out = data_yaml.with_name(data_yaml.stem + "-train-as-val.yaml")
    out.write_text(re.sub(r"^val:.*$", f"val: {train.group(1)}", text, flags=re.M))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folder", type=Path, help="a `bench kd` output folder")
    ap.add_argument("--methods", default="admd", help="comma list of method folders to pair with none")
    ap.add_argument("--imgsz", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    data_yaml = next(args.folder.glob("data/*/data.yaml"), None)
    if data_yaml is None:
        raise SystemExit(f"{args.folder}: no data/*/data.yaml (not a `bench kd` folder?)")
    splits = {"val": data_yaml, "train": train_split_yaml(data_yaml)}
    models = {"teacher": args.folder / "teacher/train/weights/best.pt"}
    for method in ["none", *args.methods.split(",")]:
        for w in sorted((args.folder / method).glob("seed*/train/weights/best.pt")):
            models[f"{method}/{w.parents[2].name}"] = w
    scores: dict[str, dict[str, float]] = {}
    print(f"{'model':<24} {'train':>7} {'val':>7} {'train-val':>9}   (mAP50-95, points)")
    for name, w in models.items():
        if not w.exists():
            continue
        scores[name] = {s: 100 * val_metrics(str(w), str(y), args.imgsz, args.batch, "cpu")["map50_95"]
                        for s, y in splits.items()}
        t, v = scores[name]["train"], scores[name]["val"]
        print(f"{name:<24} {t:7.2f} {v:7.2f} {t - v:+9.2f}", flush=True)
    paired: dict[str, dict[str, list[float]]] = {}
    for method in args.methods.split(","):
        for name in scores:
            if name.startswith(method + "/") and "none/" + name.split("/", 1)[1] in scores:
                base = scores["none/" + name.split("/", 1)[1]]
                for s in splits:
                    paired.setdefault(method, {}).setdefault(s, []).append(round(scores[name][s] - base[s], 2))
    for method, d in paired.items():
        print(f"{method} - none, paired: " + "; ".join(
            f"{s} {', '.join(f'{x:+.2f}' for x in xs)} (mean {sum(xs) / len(xs):+.2f})" for s, xs in d.items()))
    (args.folder / "fit-gap.json").write_text(json.dumps({"scores": scores, "paired": paired}, indent=1))


if __name__ == "__main__":
    main()
