"""Decode Ultralytics YOLO outputs: confidence filter, class-aware (rotated) NMS, mapping back to the image.

Raw layouts (one image):

- detect ``(4 + nc, A)``: ``cx, cy, w, h`` in input pixels, then class probabilities;
- obb ``(4 + nc + 1, A)``: the same, then the angle in radians;
- end-to-end models (NMS inside, ``end2end`` in the metadata) ``(K, 6)`` / ``(K, 7)``: rows
  ``x1, y1, x2, y2, conf, cls`` (obb: ``x, y, w, h, conf, cls, angle``).

:func:`non_max_suppression` returns rows laid out exactly like Ultralytics' ``non_max_suppression`` (same
candidates, same ``max_wh`` class offsets, same NMS semantics) so the two can be compared; :func:`decode`
then scales them into the original image as ``ops.scale_boxes`` does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from admd_edge.metadata import ModelInfo
from admd_edge.nms import nms, rotated_nms
from admd_edge.preprocess import Letterbox

MAX_WH = 7680  # Ultralytics' per-class coordinate offset
MAX_NMS = 30000  # Ultralytics' cap on boxes entering NMS


@dataclass(frozen=True)
class Detections:
    """Detections in one original image, as arrays.

    Attributes:
        task: ``"detect"`` or ``"obb"``.
        boxes: (n, 4) xyxy in image pixels (obb: the box enclosing the corners).
        scores: (n,) confidences, descending.
        class_ids: (n,) class ids.
        names: Class names by id.
        image_shape: Original image ``(height, width)``.
        xywhr: (n, 5) rotated boxes, centre/size in pixels, angle in radians (obb only).
        corners: (n, 4, 2) rotated box corners in pixels (obb only).
    """

    task: str
    boxes: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    names: Mapping[int, str]
    image_shape: tuple[int, int]
    xywhr: np.ndarray | None = None
    corners: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: task, image size and one entry per detection with its class name."""
        items = []
        boxes, scores, ids = self.boxes.tolist(), self.scores.tolist(), self.class_ids.tolist()
        rot = self.xywhr.tolist() if self.xywhr is not None else None
        corners = self.corners.tolist() if self.corners is not None else None
        for k in range(len(ids)):
            item: dict[str, Any] = {
                "class_id": int(ids[k]),
                "name": self.names.get(int(ids[k]), str(ids[k])),
                "score": round(float(scores[k]), 6),
                "box": [round(v, 3) for v in boxes[k]],
            }
            if rot is not None and corners is not None:
                item["xywhr"] = [round(v, 6) for v in rot[k]]
                item["corners"] = [[round(x, 3), round(y, 3)] for x, y in corners[k]]
            items.append(item)
        return {
            "task": self.task,
            "image": {"height": int(self.image_shape[0]), "width": int(self.image_shape[1])},
            "detections": items,
        }

    def to_json(self, **kwargs: Any) -> str:
        """:meth:`to_dict` as a JSON string; ``kwargs`` go to :func:`json.dumps`."""
        return json.dumps(self.to_dict(), **kwargs)


def check_thresholds(conf: float, iou: float, max_det: int) -> None:
    """Validate user thresholds.

    Raises:
        ValueError: Naming the bad value and the valid range.
    """
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"conf must be in [0, 1]; got {conf} (e.g. --conf 0.25)")
    if not 0.0 <= iou <= 1.0:
        raise ValueError(f"iou must be in [0, 1]; got {iou} (e.g. --iou 0.7)")
    if int(max_det) < 1:
        raise ValueError(f"max_det must be >= 1; got {max_det} (e.g. --max-det 300)")


def _candidates(
    pred: np.ndarray, nc: int, conf: float, max_nms: int, classes: Sequence[int] | None, multi_label: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NMS candidates as (anchor indices, scores, classes), at most ``max_nms``.

    Single-label: each anchor whose best class beats ``conf``, with that class. Multi-label (Ultralytics'
    validator, ``multi_label=True``): every (anchor, class) pair above ``conf``, anchor-major like its
    ``torch.where``, so one anchor can enter the NMS once per class.
    """
    cls_scores = pred[4 : 4 + nc]
    best = cls_scores.max(0)
    idx = np.flatnonzero(best > conf)
    if multi_label and idx.size:
        anchor, cls = np.nonzero(cls_scores[:, idx].T > conf)
        idx, scores = idx[anchor], cls_scores[cls, idx[anchor]]
        if classes is not None:
            keep = np.isin(cls, np.asarray(classes))
            idx, scores, cls = idx[keep], scores[keep], cls[keep]
        if idx.size > max_nms:
            top = np.argsort(-scores, kind="stable")[:max_nms]
            idx, scores, cls = idx[top], scores[top], cls[top]
        return idx, scores, cls
    if idx.size == 0:
        return idx, best[idx], idx
    if classes is not None:
        cls = cls_scores[:, idx].argmax(0)
        idx = idx[np.isin(cls, np.asarray(classes))]
    if idx.size > max_nms:
        idx = idx[np.argpartition(best[idx], -max_nms)[-max_nms:]]
    return idx, best[idx], cls_scores[:, idx].argmax(0)


def non_max_suppression(
    pred: np.ndarray,
    conf: float = 0.25,
    iou: float = 0.7,
    *,
    rotated: bool = False,
    nc: int = 0,
    max_det: int = 300,
    agnostic: bool = False,
    classes: Sequence[int] | None = None,
    max_nms: int = MAX_NMS,
    max_wh: int = MAX_WH,
    multi_label: bool = False,
) -> np.ndarray:
    """NMS on one image's raw output, laid out like Ultralytics' ``non_max_suppression`` result.

    Args:
        pred: ``(4 + nc + extra, A)`` raw output of one image (float32).
        conf: Keep anchors whose best class probability is above this.
        iou: Overlap (IoU, or ProbIoU when ``rotated``) above which the lower-scored box goes.
        rotated: OBB output (angle last); uses Fast-NMS with ProbIoU.
        nc: Number of classes; 0 means ``C - 4`` (detect only).
        max_det: Detections kept after NMS.
        agnostic: NMS across classes.
        classes: Keep only these class ids.
        max_nms: Highest-scored candidates entering NMS.
        max_wh: Class offset separating classes for class-aware NMS.
        multi_label: Every class above ``conf`` of an anchor is a candidate of its own (Ultralytics'
            validator protocol, for mAP); False keeps the best class per anchor (prediction). Ignored with
            one class, as in Ultralytics.

    Returns:
        ``(n, 6)`` rows ``x1, y1, x2, y2, conf, cls`` (rotated: ``(n, 7)`` ``x, y, w, h, conf, cls, angle``),
        by descending confidence.
    """
    nc = nc or pred.shape[0] - 4
    idx, scores, cls = _candidates(pred, nc, conf, max_nms, classes, multi_label and nc > 1)
    width = 7 if rotated else 6
    if idx.size == 0:
        return np.zeros((0, width), dtype=np.float32)
    boxes = np.ascontiguousarray(pred[:4, idx].T, dtype=np.float32)
    cls_f = cls.astype(np.float32)
    offset = cls_f * np.float32(0 if agnostic else max_wh)
    if rotated:
        angle = pred[pred.shape[0] - 1, idx].astype(np.float32)
        shifted = np.column_stack([boxes[:, :2] + offset[:, None], boxes[:, 2:4], angle])
        keep = rotated_nms(shifted, scores, iou, max_det)
        return np.column_stack([boxes[keep], scores[keep], cls_f[keep], angle[keep]])
    half = boxes[:, 2:] / 2
    xyxy = np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)
    keep = nms(xyxy + offset[:, None], scores, iou, max_det)
    return np.column_stack([xyxy[keep], scores[keep], cls_f[keep]])


def end2end_rows(pred: np.ndarray, conf: float, max_det: int, classes: Sequence[int] | None = None) -> np.ndarray:
    """Rows of an end-to-end output ``(K, 6 + extra)`` above ``conf``, at most ``max_det``."""
    mask = pred[:, 4] > conf
    if classes is not None:
        mask &= np.isin(pred[:, 5], np.asarray(classes))
    return pred[mask][:max_det].astype(np.float32, copy=False)


def xywhr_to_corners(xywhr: np.ndarray) -> np.ndarray:
    """(n, 4, 2) corners of (n, 5) rotated boxes, in Ultralytics' ``xywhr2xyxyxyxy`` order."""
    ctr = xywhr[:, :2]
    w, h, angle = xywhr[:, 2:3], xywhr[:, 3:4], xywhr[:, 4:5]
    cos, sin = np.cos(angle), np.sin(angle)
    vec1 = np.concatenate([w / 2 * cos, w / 2 * sin], axis=-1)
    vec2 = np.concatenate([-h / 2 * sin, h / 2 * cos], axis=-1)
    return np.stack([ctr + vec1 + vec2, ctr + vec1 - vec2, ctr - vec1 - vec2, ctr - vec1 + vec2], axis=-2)


def regularize_rboxes(xywhr: np.ndarray) -> np.ndarray:
    """Rotated boxes with the angle in [0, pi/2), swapping w and h where needed (Ultralytics' form)."""
    out = xywhr.copy()
    swap = np.mod(xywhr[:, 4], np.pi) >= np.pi / 2
    out[swap, 2], out[swap, 3] = xywhr[swap, 3], xywhr[swap, 2]
    out[:, 4] = np.mod(xywhr[:, 4], np.pi / 2)
    return out


def _frozen(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    array = np.zeros(shape, dtype=dtype)
    array.flags.writeable = False
    return array


_EMPTY = {
    "boxes": _frozen((0, 4), np.float32),
    "scores": _frozen((0,), np.float32),
    "class_ids": _frozen((0,), np.int64),
    "xywhr": _frozen((0, 5), np.float32),
    "corners": _frozen((0, 4, 2), np.float32),
}


def empty_detections(task: str, names: Mapping[int, str], image_shape: tuple[int, int]) -> Detections:
    """No detections (shared read-only empty arrays, so the common no-object frame costs nothing)."""
    e = _EMPTY
    if task == "obb":
        return Detections(task, e["boxes"], e["scores"], e["class_ids"], names, image_shape, e["xywhr"], e["corners"])
    return Detections(task, e["boxes"], e["scores"], e["class_ids"], names, image_shape)


def detections_from_rows(
    rows: np.ndarray, lb: Letterbox, names: Mapping[int, str], task: str, clip: bool = True
) -> Detections:
    """Scale NMS rows from network to original-image pixels (``ops.scale_boxes``) into :class:`Detections`;
    ``clip=False`` leaves axis-aligned boxes that overhang the image as they are (Ultralytics' validator
    matches them unclipped)."""
    if len(rows) == 0:
        return empty_detections(task, names, lb.orig_shape)
    (gx, gy), (px, py) = lb.gain, lb.pad
    gain = np.array([gx, gy, gx, gy], dtype=np.float32)
    scores, class_ids = rows[:, 4].copy(), rows[:, 5].astype(np.int64)
    if task == "obb":
        xywhr = rows[:, [0, 1, 2, 3, 6]].copy()
        xywhr[:, :2] -= np.array([px, py], dtype=np.float32)
        xywhr[:, :4] /= gain
        corners = xywhr_to_corners(xywhr)
        c0, c1, c2, c3 = corners[:, 0], corners[:, 1], corners[:, 2], corners[:, 3]  # pairwise: 3x faster than
        lo = np.minimum(np.minimum(c0, c1), np.minimum(c2, c3))  # numpy's reduce over the 4-long corner axis
        hi = np.maximum(np.maximum(c0, c1), np.maximum(c2, c3))
        boxes = np.concatenate([lo, hi], axis=1)
        return Detections(task, boxes, scores, class_ids, names, lb.orig_shape, xywhr, corners)
    boxes = (rows[:, :4] - np.array([px, py, px, py], dtype=np.float32)) / gain
    if clip:
        h, w = lb.orig_shape
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
    return Detections(task, boxes, scores, class_ids, names, lb.orig_shape)


def decode(
    output: np.ndarray,
    geometry: Sequence[Letterbox],
    info: ModelInfo,
    conf: float = 0.25,
    iou: float = 0.7,
    max_det: int = 300,
    *,
    agnostic: bool = False,
    classes: Sequence[int] | None = None,
    multi_label: bool = False,
    clip: bool = True,
) -> list[Detections]:
    """Detections per image from a batched raw output.

    Args:
        output: ``(N, C, A)`` raw output (or ``(N, K, 6 + extra)`` for an end-to-end model).
        geometry: Letterbox of each of the N images.
        info: Model task, class names, end2end flag.
        conf: Confidence threshold.
        iou: NMS threshold.
        max_det: Detections per image.
        agnostic: Class-agnostic NMS.
        classes: Keep only these class ids.
        multi_label: One candidate per class above ``conf`` per anchor (Ultralytics' validator protocol,
            for mAP); the default, one label per box, is for prediction.
        clip: Clip axis-aligned boxes to the image (prediction); False as Ultralytics' validator scores them.

    Raises:
        ValueError: If the output does not fit the task and number of classes.
    """
    check_thresholds(conf, iou, max_det)
    output = output.astype(np.float32, copy=False)
    nc = len(info.names)
    rotated = info.task == "obb"
    if info.end2end:
        expected = 7 if rotated else 6
        if output.ndim != 3 or output.shape[2] != expected:
            raise ValueError(f"end-to-end {info.task} output must be (N, K, {expected}); got {output.shape}")
    else:
        expected = 4 + nc + (1 if rotated else 0)
        if output.ndim != 3 or output.shape[1] != expected:
            raise ValueError(
                f"{info.task} output with {nc} classes must be (N, {expected}, anchors); got {tuple(output.shape)}: "
                "check that the model's metadata (task, names) matches the model"
            )
    results = []
    for pred, lb in zip(output, geometry):
        if info.end2end:
            rows = end2end_rows(pred, conf, max_det, classes)
        else:
            rows = non_max_suppression(
                pred, conf, iou, rotated=rotated, nc=nc, max_det=max_det, agnostic=agnostic, classes=classes,
                multi_label=multi_label,
            )
        results.append(detections_from_rows(rows, lb, info.names, info.task, clip))
    return results
