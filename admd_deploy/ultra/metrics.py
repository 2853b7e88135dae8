"""Ultralytics' matching and AP code, for scoring predictions made outside its validator (match-and-AP).

``BaseValidator.match_predictions`` is an instance method that only reads ``self.iouv``; it is called
here, and only here, unbound with a stand-in ``self``. ``ap_per_class`` returns a 12-tuple that is
unpacked here, and only here, into :class:`APResult`. Both are contracts
(:mod:`admd_deploy.ultra.contracts`).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from admd_deploy.ultra import env

AP_INDEX, CLASSES_INDEX = 5, 6  # ap_per_class -> (tp, fp, p, r, f1, ap, unique_classes, p_curve, ...)


@dataclass(frozen=True)
class APResult:
    """Per-class average precision.

    Attributes:
        ap: ``(n_classes, 10)`` AP at IoU 0.50, 0.55, ..., 0.95 (101-point interpolation).
        classes: ``(n_classes,)`` class ids of the rows of ``ap`` (classes with ground truth).
    """

    ap: np.ndarray
    classes: np.ndarray


def iou_matrix(gt_boxes: np.ndarray, pred_boxes: np.ndarray, task: str) -> Any:
    """``(M, N)`` IoU tensor of M ground-truth and N predicted boxes: box IoU (``xyxy``) or ProbIoU (``xywhr``, obb)."""
    import torch

    env.prepare()
    from ultralytics.utils.metrics import batch_probiou, box_iou

    gt, pb = torch.as_tensor(gt_boxes, dtype=torch.float32), torch.as_tensor(pred_boxes, dtype=torch.float32)
    return batch_probiou(gt, pb) if task == "obb" else box_iou(gt, pb)


def match_predictions(pred_cls: np.ndarray, gt_cls: np.ndarray, iou: Any) -> np.ndarray:
    """Ultralytics' greedy matching of predictions to ground truth at IoU 0.50:0.95.

    Args:
        pred_cls: ``(N,)`` predicted classes, sorted by descending confidence.
        gt_cls: ``(M,)`` ground-truth classes.
        iou: ``(M, N)`` IoU tensor (:func:`iou_matrix`).

    Returns:
        ``(N, 10)`` bool: prediction i is a true positive at threshold j.
    """
    import torch

    env.prepare()
    from ultralytics.engine.validator import BaseValidator

    matcher = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # exactly the validators' thresholds
    tp = BaseValidator.match_predictions(matcher, torch.as_tensor(pred_cls), torch.as_tensor(gt_cls), iou)
    return tp.cpu().numpy().astype(bool)


def ap_per_class(tp: np.ndarray, conf: np.ndarray, pred_cls: np.ndarray, target_cls: np.ndarray) -> APResult:
    """Ultralytics' 101-point interpolated AP per class.

    Args:
        tp: ``(N, 10)`` true-positive flags of every prediction (:func:`match_predictions`).
        conf: ``(N,)`` confidences.
        pred_cls: ``(N,)`` predicted classes.
        target_cls: ``(M,)`` classes of every ground-truth box.
    """
    env.prepare()
    from ultralytics.utils.metrics import ap_per_class as _ap_per_class

    out = _ap_per_class(tp, conf, pred_cls, target_cls)
    return APResult(ap=np.asarray(out[AP_INDEX]), classes=np.asarray(out[CLASSES_INDEX]))


def xywh2xyxy(xywh: np.ndarray) -> np.ndarray:
    """Centre boxes ``(N, 4)`` to corner boxes ``(N, 4)``."""
    env.prepare()
    from ultralytics.utils.ops import xywh2xyxy as _xywh2xyxy

    return _xywh2xyxy(xywh)


def corners_to_xywhr(corners: np.ndarray) -> np.ndarray:
    """Four-corner polygons ``(N, 8)`` to Ultralytics' oriented boxes ``(N, 5)`` ``xywhr`` (minimum-area rectangles)."""
    import torch

    env.prepare()
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    return xyxyxyxy2xywhr(torch.from_numpy(np.asarray(corners).reshape(-1, 8))).numpy()
