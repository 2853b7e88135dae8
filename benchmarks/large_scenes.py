"""Large synthetic scenes: letterbox only vs slicing with an axis-aligned merge (SAHI's) vs ours; AP and cost.

    python benchmarks/large_scenes.py                                    # runs/quickstart/export/student.onnx
    python benchmarks/large_scenes.py --model student.onnx --size 4000 --n-scenes 4 --threads 4 --json out.json
    python benchmarks/large_scenes.py --model m.onnx --size 256 --n-scenes 1 --tile 64 --repeats 1   # smoke

Scenes come from :mod:`admd_deploy.data.scenes` (tiles of the model's training size, so objects keep their
pixel sizes; generated into ``--scenes`` unless it already holds them). Methods, all through the same
ONNX Runtime session and the same ``--conf``:

- ``letterbox``: the whole scene letterboxed into the model input (what ``--slice off`` does).
- ``sliced-axis``: model-size tiles, then class-wise NMS on the detections' axis-aligned hulls at IoU 0.5,
  nothing else (SAHI's merge of oriented boxes).
- ``sliced-ours``: the same tiles, then admd-edge's merge (ProbIoU NMS at 0.5, complete boxes over ones cut
  by an inner tile border).

Reported per method: mAP@0.5 under the DOTA protocol's scorer (polygon IoU, VOC07 11-point, over the classes
present),
the recall of small objects (longer side under ``--small`` px: matched one-to-one by a same-class detection at
polygon IoU > 0.5, over all detections above ``--conf``), and the end-to-end time per scene in ms per
megapixel (median of ``--repeats``). For the sliced methods also the ratio of that end-to-end time to the sum
of the raw ``session.run`` times of the same tile batches (preprocessed beforehand): the cost of cropping,
letterboxing, decoding, shifting and merging. Run it alone on the machine: the times are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("letterbox", "sliced-axis", "sliced-ours")


def load_scenes(folder: Path, size: int, n_scenes: int, tile: int, seed: int,
                max_objects: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Scenes with their ground truth (generated into ``folder`` when it holds none)."""
    from admd_deploy.data.dota import read_dota_labels
    from admd_deploy.data.scenes import SceneConfig, generate_scenes
    from admd_edge.sources import read_image

    if not (folder / "scenes.json").is_file():
        generate_scenes(folder, SceneConfig(n_scenes=n_scenes, size=size, tile=tile, seed=seed,
                                            min_objects=max(1, max_objects // 2), max_objects=max_objects))
    names = json.loads((folder / "scenes.json").read_text())["config"]["classes"]
    scenes = []
    for path in sorted((folder / "images").iterdir()):
        polys, classes, difficult = read_dota_labels(folder / "labelTxt" / f"{path.stem}.txt", names)
        scenes.append({"id": path.stem, "image": read_image(path), "polys": polys, "classes": classes,
                       "difficult": difficult})
    return scenes, names


def run_method(model: Any, method: str, image: np.ndarray, tile: int | None, overlap: int | None) -> Any:
    from admd_edge.slicing import predict_sliced

    if method == "letterbox":
        return model.predict(image)
    return predict_sliced(model, image, tile, overlap, merge="axis" if method == "sliced-axis" else "rotated")


def raw_tile_seconds(model: Any, image: np.ndarray, tile: int | None, overlap: int | None, batch: int) -> float:
    """Sum of ``session.run`` times over the tile batches of one scene (preprocessing outside the timer)."""
    from admd_edge.preprocess import Preprocessor
    from admd_edge.slicing import SliceConfig, tile_windows

    config = SliceConfig(tile if tile is not None else model.imgsz, overlap, batch=batch)
    windows = tile_windows(image.shape[0], image.shape[1], config.tile, config.overlap)
    fixed = model.runner.input_shape[0] if model.runner.input_shape else None
    size = int(fixed) if fixed else batch
    pre = Preprocessor(model.imgsz, batch=size, dtype=model.runner.input_dtype)
    total = 0.0
    for start in range(0, len(windows), size):
        tensor, _ = pre([image[y0:y1, x0:x1] for x0, y0, x1, y1 in windows[start:start + size]])
        tensor = tensor.copy()
        if fixed and len(tensor) < fixed:
            tensor = np.concatenate([tensor, np.repeat(tensor[-1:], fixed - len(tensor), axis=0)])
        t0 = time.perf_counter()
        model.runner.run(tensor)
        total += time.perf_counter() - t0
    return total


def small_recall(scenes: list[dict[str, Any]], found: dict[str, Any], small: float) -> tuple[float, int]:
    """Recall of non-difficult ground truth with longer side < ``small`` px, one-to-one at polygon IoU > 0.5."""
    from admd_deploy.evaluation.dota import polygon_iou

    hit = total = 0
    for s in scenes:
        d = found[s["id"]]
        sides = np.linalg.norm(s["polys"] - np.roll(s["polys"], -1, axis=1), axis=2).max(axis=1)
        taken = np.zeros(len(d.scores), dtype=bool)
        for k in np.flatnonzero((sides < small) & ~s["difficult"]):
            total += 1
            same = np.flatnonzero((d.classes == s["classes"][k]) & ~taken)
            if same.size:
                ious = polygon_iou(s["polys"][k], d.polygons[same])
                if ious.max() > 0.5:
                    taken[same[int(ious.argmax())]] = True
                    hit += 1
    return (hit / total if total else float("nan")), total


def as_image_detections(d: Any) -> Any:
    from admd_deploy.evaluation.dota import ImageDetections

    polys = d.corners if d.corners is not None else np.stack(
        [d.boxes[:, [0, 1]], d.boxes[:, [2, 1]], d.boxes[:, [2, 3]], d.boxes[:, [0, 3]]], axis=1)
    return ImageDetections(np.asarray(polys, np.float64).reshape(-1, 4, 2), np.asarray(d.scores, np.float64),
                           np.asarray(d.class_ids, np.int64))


def benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from admd_deploy.evaluation.dota import ImageTruth, evaluate
    from admd_edge import load_model

    model = load_model(args.model, conf=args.conf, threads=args.threads, imgsz=args.imgsz, batch=args.batch,
                       spin=False)
    tile = args.tile or model.imgsz[0]
    scenes, names = load_scenes(Path(args.scenes), args.size, args.n_scenes, args.scene_tile or tile, args.seed,
                                args.max_objects)
    model_names = [model.names[i] for i in sorted(model.names)]
    if model_names[: len(names)] != list(names):
        print(f"note: the model's classes {model_names[:8]} are not the scenes' {list(names)}: AP is by class id")
    truths = {s["id"]: ImageTruth(s["polys"], s["classes"], s["difficult"]) for s in scenes}
    megapixels = sum(s["image"].shape[0] * s["image"].shape[1] for s in scenes) / 1e6
    rows = {}
    for method in METHODS:
        found, times = {}, []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for s in scenes:
                found[s["id"]] = as_image_detections(run_method(model, method, s["image"], tile, args.overlap))
            times.append(time.perf_counter() - t0)
        scores = evaluate(found, truths, model_names[: max(len(names), 1)])
        recall, n_small = small_recall(scenes, found, args.small)
        row = {"map50": scores.map_present, "small_recall": recall, "small_objects": n_small,
               "ms_per_mpx": statistics.median(times) * 1e3 / megapixels,
               "detections": int(sum(len(d.scores) for d in found.values()))}
        if method != "letterbox":
            raw = statistics.median(sum(raw_tile_seconds(model, s["image"], tile, args.overlap, args.batch)
                                        for s in scenes) for _ in range(args.repeats))
            row["e2e_over_raw_tiles"] = statistics.median(times) / raw if raw > 0 else float("nan")
        rows[method] = row
    return {"model": str(args.model), "scenes": len(scenes), "megapixels": round(megapixels, 3), "tile": tile,
            "overlap": args.overlap, "conf": args.conf, "small_px": args.small, "methods": rows}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"{result['scenes']} scenes, {result['megapixels']} Mpx, tiles {result['tile']} px, conf {result['conf']}",
             "", "| method | mAP@0.5 (DOTA scorer) | small-object recall | ms / Mpx | sliced e2e / raw tiles |",
             "|---|---|---|---|---|"]
    for name, r in result["methods"].items():
        ratio = f"{r['e2e_over_raw_tiles']:.2f}x" if "e2e_over_raw_tiles" in r else "-"
        lines.append(f"| {name} | {r['map50'] * 100:.1f} | {r['small_recall'] * 100:.1f} ({r['small_objects']}) "
                     f"| {r['ms_per_mpx']:.1f} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/quickstart/export/student.onnx", help="exported OBB (or detect) ONNX")
    ap.add_argument("--scenes", default="runs/bench-large-scenes/scenes", help="scene folder (made when empty)")
    ap.add_argument("--size", type=int, default=4000, help="scene side in px when generating (default 4000)")
    ap.add_argument("--n-scenes", type=int, default=2)
    ap.add_argument("--scene-tile", type=int, default=None, help="generator tile (default the model's input size)")
    ap.add_argument("--max-objects", type=int, default=16, help="objects per generator tile (dense: 16)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tile", type=int, default=None, help="slicing tile (default the model's input size)")
    ap.add_argument("--overlap", type=int, default=None, help="tile overlap in px (default a fifth of the tile)")
    ap.add_argument("--conf", type=float, default=0.05)
    ap.add_argument("--small", type=float, default=32.0, help="small objects: longer side under this many px")
    ap.add_argument("--imgsz", type=int, default=None, help="input size of a dynamic-shape model")
    ap.add_argument("--batch", type=int, default=8, help="tiles per call for a dynamic-batch model")
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes over all scenes (median)")
    ap.add_argument("--json", default=None, help="also write the numbers here")
    args = ap.parse_args(argv)
    if not Path(args.model).is_file():
        ap.error(f"--model {args.model} not found: run `make quickstart` first or pass an exported .onnx")
    result = benchmark(args)
    print(markdown(result))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
