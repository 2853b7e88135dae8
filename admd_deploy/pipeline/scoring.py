"""mAP of any predictor's detections under Ultralytics' protocol (its own matching and AP code,
through :mod:`admd_deploy.ultra.metrics`).

Used to score exported models run through the edge runtime, so their numbers are comparable with
``YOLO(...).val()`` of the PyTorch models: same ground truth (the YOLO label files), same greedy
matching at IoU 0.50:0.95 (box IoU, or ProbIoU for oriented boxes), same 101-point AP.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Sample:
    """Ground truth and predictions of one image, in original-image pixels.

    Boxes are ``xyxy`` (N, 4) for detect and ``xywhr`` (N, 5) for obb.
    """

    gt_cls: np.ndarray
    gt_boxes: np.ndarray
    pred_cls: np.ndarray
    pred_conf: np.ndarray
    pred_boxes: np.ndarray


def ground_truth(label_file: Path, width: int, height: int, task: str) -> tuple[np.ndarray, np.ndarray]:
    """Classes and boxes of a YOLO label file, in pixels of a ``width`` x ``height`` image."""
    from admd_deploy.ultra.metrics import corners_to_xywhr, xywh2xyxy

    rows = np.loadtxt(label_file, ndmin=2, dtype=np.float64) if label_file.is_file() and label_file.stat().st_size else None
    if rows is None or rows.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros((0, 5 if task == "obb" else 4))
    cls = rows[:, 0].astype(np.int64)
    if task == "obb":
        corners = rows[:, 1:9].reshape(-1, 4, 2) * [width, height]
        return cls, corners_to_xywhr(corners.reshape(-1, 8))
    xywh = rows[:, 1:5] * [width, height, width, height]
    return cls, xywh2xyxy(xywh)


def score(samples: list[Sample], task: str, names: dict[int, str]) -> dict[str, Any]:
    """mAP50, mAP50-95 and per-class AP50-95 of ``samples``."""
    from admd_deploy.ultra.metrics import ap_per_class, iou_matrix, match_predictions

    tps, confs, pcls, tcls = [], [], [], []
    for s in samples:
        n = len(s.pred_cls)
        tcls.append(s.gt_cls)
        if n == 0:
            continue
        order = np.argsort(-s.pred_conf, kind="stable")
        pred_cls, conf, boxes = s.pred_cls[order], s.pred_conf[order], s.pred_boxes[order]
        if len(s.gt_cls):
            tp = match_predictions(pred_cls, s.gt_cls, iou_matrix(s.gt_boxes, boxes, task))
        else:
            tp = np.zeros((n, 10), dtype=bool)
        tps.append(tp)
        confs.append(conf)
        pcls.append(pred_cls)
    target = np.concatenate(tcls) if tcls else np.zeros(0)
    if not tps:
        return {"map50": 0.0, "map50_95": 0.0, "per_class_ap50_95": {}}
    result = ap_per_class(np.concatenate(tps), np.concatenate(confs), np.concatenate(pcls), target)
    ap, classes = result.ap, result.classes
    per_class = {names[int(c)]: float(a) for c, a in zip(classes, ap.mean(1))}
    return {"map50": float(ap[:, 0].mean()) if len(ap) else 0.0, "map50_95": float(ap.mean()) if len(ap) else 0.0,
            "per_class_ap50_95": per_class}
