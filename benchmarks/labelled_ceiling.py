"""What if the unlabelled tiles had labels? The student alone trained on labelled + unlabelled tiles, all labelled.

`data.unlabelled: N` on synthetic data gives the KD term the N training tiles that follow the labelled ones in
the same draw (`admd_deploy.data.synth.generate_unlabelled`). This script trains the student alone, exactly as
`bench kd` trains its `none` runs (the recipe's pretrained start and distill settings, the same seeds), on a draw
with `n_train + N` labelled tiles: the first `n_train` are the bench's labelled tiles and the rest are its
unlabelled ones, now with labels; the validation tiles are the same (they depend only on the data seed and their
index). Its mAP bounds what any use of those images can give the student: the gap between it and the student alone
on `n_train` tiles is what the unlabelled tiles are worth at most; a small gap means the student's capacity, not
its data, limits it. Runs through the pipeline's runner (resumable: rerun the same command). Writes
`labelled-ceiling.json` in the output folder.

Usage (the numbers in BENCHMARKS.md, "Distilling on unlabelled target tiles too"):
    python benchmarks/labelled_ceiling.py bench-kd-pretrained --extra 900 --seeds 0,1 --out runs/ceiling-s1 \\
        data.synthetic.seed=1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import admd_deploy  # noqa: F401  (keeps Ultralytics offline)
from admd_deploy.bench.kd import student_stages
from admd_deploy.data import SynthConfig
from admd_deploy.pipeline import runner
from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.ledger import Ledger
from admd_deploy.recipe import load_recipe


def labelled_recipe(recipe_name: str, overrides: list[str], extra: int):
    """The recipe with ``n_train`` raised by ``extra`` (and no ``data.unlabelled``)."""
    recipe = load_recipe(recipe_name, overrides)
    n_train = int(recipe.data.synthetic.get("n_train", SynthConfig.n_train))
    return load_recipe(recipe_name, [*overrides, f"data.synthetic.n_train={n_train + extra}", "data.unlabelled=null"])


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("recipe", help="a bench kd recipe with synthetic data and a pretrain section")
    ap.add_argument("overrides", nargs="*", help="recipe overrides, as for bench kd (e.g. data.synthetic.seed=1)")
    ap.add_argument("--extra", type=int, required=True, help="the unlabelled tile count to label (data.unlabelled)")
    ap.add_argument("--seeds", default="0", help="comma list of training seeds")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_intermixed_args(argv)  # overrides may follow the options, as in the usage line
    if args.extra < 1:
        raise SystemExit("--extra must be >= 1")
    recipe = labelled_recipe(args.recipe, args.overrides, args.extra)
    if recipe.data.source != "synthetic" or recipe.pretrain is None:
        raise SystemExit("needs synthetic data and a pretrain section (the bench kd pretrained-start regime)")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ctx = Context(recipe=recipe, run_dir=out, ledger=Ledger(out))
    upstream = [s for s in runner.PIPELINE if s.name in ("data", "pretrain")]
    runner.run_stages(ctx, upstream, total=len(upstream) + len(seeds))
    runner.run_stages(ctx, student_stages(recipe, ["none"], seeds, {}), first=len(upstream) + 1,
                      total=len(upstream) + len(seeds))
    runs = {s: ctx.out(f"none/seed{s}") for s in seeds}
    result = {"n_train": int(recipe.data.synthetic["n_train"]), "extra": args.extra, "overrides": args.overrides,
              "runs": {str(s): {k: r[k] for k in ("map50", "map50_95", "sec_per_epoch")} for s, r in runs.items()}}
    (out / "labelled-ceiling.json").write_text(json.dumps(result, indent=2) + "\n")
    for s, r in runs.items():
        print(f"seed {s}: mAP50 {100 * r['map50']:.2f}  mAP50-95 {100 * r['map50_95']:.2f}  "
              f"({result['n_train']} labelled tiles)")
    return result


if __name__ == "__main__":
    main()
