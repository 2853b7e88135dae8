"""Annotate images with detections: boxes, or rotated polygons for OBB, with class name and score."""

from __future__ import annotations

import cv2
import numpy as np

from admd_edge.postprocess import Detections


def class_color(class_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per class id."""
    hue = (class_id * 47) % 180
    bgr = cv2.cvtColor(np.uint8([[[hue, 200, 255]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def annotate(image: np.ndarray, detections: Detections, thickness: int | None = None) -> np.ndarray:
    """A copy of ``image`` with every detection drawn and labelled."""
    out = image.copy()
    t = thickness or max(1, round(sum(image.shape[:2]) / 600))
    scale = max(0.35, t / 3)
    for k in range(len(detections)):
        cid = int(detections.class_ids[k])
        color = class_color(cid)
        if detections.corners is not None:
            polygon = np.round(detections.corners[k]).astype(np.int32)
            cv2.polylines(out, [polygon], isClosed=True, color=color, thickness=t, lineType=cv2.LINE_AA)
            anchor = polygon[np.argmin(polygon[:, 1])]
        else:
            x1, y1, x2, y2 = np.round(detections.boxes[k]).astype(int)
            cv2.rectangle(out, (x1, y1), (x2, y2), color, t, cv2.LINE_AA)
            anchor = np.array([x1, y1])
        label = f"{detections.names.get(cid, str(cid))} {float(detections.scores[k]):.2f}"
        (tw, th), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = int(anchor[0]), max(int(anchor[1]), th + base)
        cv2.rectangle(out, (x, y - th - base), (x + tw, y), color, -1)
        cv2.putText(out, label, (x, y - base), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out
