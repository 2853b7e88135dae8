"""The paper metric of patch-level predictions: the verify stage's edge predictions scored a second time.

The verify stage runs each exported ONNX over the val split through the edge runtime and scores it with
Ultralytics' protocol (mAP50-95 / mAP50, ProbIoU or box IoU, 101-point AP). :func:`paper_metric` takes those
very predictions (no second model run) and scores them with the DOTA_devkit algorithm of
:mod:`admd_deploy.evaluation.dota`: VOC07 11-point AP at IoU 0.5, polygon IoU for oriented boxes (the DOTA /
DIOR-R protocol) and box IoU for axis-aligned ones (the DIOR protocol; the IoU of two axis-aligned rectangles
as polygons is their box IoU).

It is **patch level**: each val image is scored as it is (the synthetic data's tiles, or the patches a DOTA
split wrote), with no whole-scene split and merge; YOLO labels carry no difficult flag, so none is ignored.
Whole-scene numbers as papers report them come from ``admd-deploy evaluate`` (the recipe's ``paper_eval``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from admd_deploy.evaluation.dota import ImageDetections, ImageTruth, evaluate

LEVEL = "patch level on the val images (no whole-scene split/merge; no difficult flags in YOLO labels)"


def describe(task: str) -> str:
    """One line naming the paper metric of ``task``, for the report."""
    if task == "obb":
        return f"VOC07 11-point AP at polygon IoU 0.5 (DOTA / DIOR-R protocol, DOTA_devkit's algorithm), {LEVEL}"
    return f"VOC07 11-point AP at box IoU 0.5 (DIOR protocol), {LEVEL}"


def _polygons(boxes: np.ndarray, task: str) -> np.ndarray:
    """(n, 4, 2) polygons of ``xywhr`` (obb) or ``xyxy`` (detect) boxes."""
    b = np.asarray(boxes, dtype=np.float64)
    if task == "obb":
        from admd_edge.postprocess import xywhr_to_corners

        return xywhr_to_corners(b.reshape(-1, 5)) if len(b) else np.zeros((0, 4, 2))
    b = b.reshape(-1, 4)
    return np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)


def paper_metric(samples: Sequence[Any], task: str, names: Mapping[int, str]) -> dict[str, Any]:
    """Score per-image predictions with the paper protocol.

    Args:
        samples: :class:`admd_deploy.pipeline.scoring.Sample` per image (``gt_cls``, ``gt_boxes``, ``pred_cls``,
            ``pred_conf``, ``pred_boxes``; boxes ``xywhr`` for obb, ``xyxy`` for detect, in pixels).
        task: ``"obb"`` or ``"detect"``.
        names: Class id -> name of the model.

    Returns:
        ``{protocol, ap_kind, iou, iou_kind, level, description, map50, map50_present, per_class}`` with
        ``per_class[name] = {ap, npos, ndet}``; ``map50`` averages over every class (the devkit's mean),
        ``map50_present`` over the classes with ground truth (mmrotate's).
    """
    truths, detections = {}, {}
    for i, s in enumerate(samples):
        key = f"{i:06d}"
        gt_cls = np.asarray(s.gt_cls, dtype=np.int64)
        truths[key] = ImageTruth(_polygons(s.gt_boxes, task), gt_cls, np.zeros(len(gt_cls), dtype=bool))
        detections[key] = ImageDetections(_polygons(s.pred_boxes, task), np.asarray(s.pred_conf, dtype=np.float64),
                                          np.asarray(s.pred_cls, dtype=np.int64))
    protocol = "dota" if task == "obb" else "dior"
    scores = evaluate(detections, truths, [names[k] for k in sorted(names)], protocol=protocol)
    return {"protocol": protocol, "ap_kind": scores.ap_kind, "iou": scores.iou_threshold,
            "iou_kind": "polygon" if task == "obb" else "box", "level": "patch", "description": describe(task),
            "map50": scores.map, "map50_present": scores.map_present, "per_class": scores.to_dict()["classes"]}
