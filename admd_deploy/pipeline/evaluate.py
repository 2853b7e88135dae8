"""One evaluation protocol for every model of a run: teacher, baseline, student, and the exports.

Ultralytics' validator with ``rect=False`` (every image letterboxed to the same square size, as
the exported model sees it), ``conf=0.001``, ``iou=0.7``, its multi-label NMS (a box counts once for
every class above conf), 101-point interpolated AP at IoU 0.50:0.95 (ProbIoU for oriented boxes), on
the data YAML's ``val`` split. The exports run through the edge runtime decode the same way
(``multi_label=True``, see ``verify.edge_metrics``).
"""

from __future__ import annotations

import logging
import statistics
import time
from pathlib import Path
from typing import Any

from admd_deploy.pipeline.context import Context

LOGGER = logging.getLogger(__name__)

VAL_ARGS = {"rect": False, "conf": 0.001, "iou": 0.7, "plots": False, "verbose": False}


def protocol(task: str, imgsz: int) -> str:
    iou = "ProbIoU (oriented boxes)" if task == "obb" else "box IoU"
    return (f"Ultralytics val, rect=False (letterboxed {imgsz}x{imgsz}), conf=0.001, NMS IoU 0.7, multi-label NMS "
            f"(every class above conf of a box is a detection), 101-point AP at {iou} 0.50:0.95, "
            "val split of the run's data YAML")


def val_metrics(model: str | Path, data_yaml: str, imgsz: int, batch: int, device: str) -> dict[str, Any]:
    """mAP50, mAP50-95 and per-class AP50-95 of a checkpoint or an exported model."""
    from admd_deploy.ultra.validate import val_metrics as ultra_val

    return ultra_val(model, data_yaml, imgsz=imgsz, batch=batch, device=device, **VAL_ARGS)


def torch_profile(weights: str | Path, imgsz: int, runs: int) -> tuple[int, float, float]:
    """Parameter count, and median and IQR of a batch-1 forward of the fused PyTorch model on CPU, in ms
    (model time only)."""
    import torch

    from admd_deploy.ultra import env
    from admd_deploy.ultra.checkpoints import load_checkpoint

    torch.set_num_threads(env.cpu_threads())
    model, _ = load_checkpoint(weights)
    params = sum(p.numel() for p in model.parameters())  # before fusing, as Ultralytics reports it
    model = model.fuse(verbose=False).eval()
    x = torch.zeros(1, 3, imgsz, imgsz)
    times = []
    with torch.inference_mode():
        for i in range(runs + 3):
            t = time.perf_counter()
            model(x)
            if i >= 3:
                times.append((time.perf_counter() - t) * 1e3)
    q = statistics.quantiles(times, n=4) if len(times) > 1 else [times[0]] * 3
    return params, statistics.median(times), q[2] - q[0]


def sample_predictions(weights: str | Path, images: list[Path], imgsz: int, task: str) -> list[list[dict]]:
    """Detections on a few validation images, in original-image pixels, for the report's grid."""
    from admd_deploy.ultra.validate import predict_detections

    return predict_detections(weights, images, imgsz=imgsz, task=task, conf=0.25, device="cpu")


def val_images(data_yaml: str, n: int) -> list[Path]:
    """The first ``n`` validation images (sorted), for sample grids and INT8 calibration."""
    from admd_deploy.ultra.validate import dataset_info

    data = dataset_info(data_yaml)
    val = data["val"]
    roots = val if isinstance(val, list) else [val]
    files: list[Path] = []
    for root in map(Path, roots):
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".bmp", ".tif"})
        elif root.suffix == ".txt":
            files += [Path(line.strip()) for line in root.read_text().splitlines() if line.strip()]
    return files[:n]


def inputs(ctx: Context) -> dict[str, Any]:
    return {m: ctx.out(m).get("sha256") for m in ("teacher", "baseline", "student")} | {
        "imgsz": ctx.recipe.export_imgsz, "report": ctx.recipe.to_dict()["report"],
        "data": ctx.out("data").get("fingerprint")}


def run(ctx: Context, out: Path) -> dict[str, Any]:
    import json

    r = ctx.recipe
    data_yaml, imgsz = ctx.out("data")["data_yaml"], r.export_imgsz
    models: dict[str, Any] = {}
    for name in ("teacher", "baseline", "student"):
        weights = ctx.out(name).get("weights")
        if not weights:
            continue
        LOGGER.info("evaluate: %s", name)
        metrics = val_metrics(weights, data_yaml, imgsz, r.distill.batch, r.device)
        params, latency, spread = torch_profile(weights, imgsz, r.report.latency_runs)
        models[name] = {**metrics, "params": params, "cpu_latency_ms": latency,
                        "cpu_latency_iqr_ms": spread, "weights": weights}
    images = val_images(data_yaml, r.report.samples)
    preds = {n: sample_predictions(models[n]["weights"], images, imgsz, r.task) for n in ("teacher", "student")
             if n in models}
    (out / "predictions.json").write_text(json.dumps({"images": [str(p) for p in images], "predictions": preds}))
    return {"models": models, "protocol": protocol(r.task, imgsz), "predictions": str(out / "predictions.json")}
