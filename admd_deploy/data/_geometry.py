"""Geometry of the synthetic generator (all coordinates in pixels, x right, y down).

Rectangle, circle and octagon constructors for the object builders (polygon area and clipping are
:mod:`admd_deploy.data.polygons`); the visible fraction of an object cut by the image border; the minimum-area
rectangle and whether an obb label fits inside the image; the normalised label of one object
(``_object_label``) and the overlap of two objects' rotated boxes (``_overlap``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from admd_deploy.data.polygons import clip_polygon, polygon_area
from admd_deploy.errors import UsageError

# The label tasks (``SynthConfig.task``): rotated boxes or axis-aligned boxes.
TASKS: tuple[str, ...] = ("obb", "detect")


def _rot(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _rect(x0: float, x1: float, y0: float, y1: float) -> np.ndarray:
    return np.array([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], dtype=np.float64)


def _rect_corners(cx: float, cy: float, w: float, h: float, angle: float = 0.0) -> np.ndarray:
    """Corners (4, 2) of a w x h rectangle centred at (cx, cy), rotated by ``angle`` radians."""
    return _rect(-w / 2, w / 2, -h / 2, h / 2) @ _rot(angle).T + (cx, cy)


def _circle(r: float, cx: float = 0.0, cy: float = 0.0, n: int = 32) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([cx + r * np.cos(t), cy + r * np.sin(t)], 1)


def _octagon(length: float, width: float, cut: float) -> np.ndarray:
    x, y = length / 2, width / 2
    c = min(cut, x, y)
    return np.array([(x - c, -y), (x, -y + c), (x, y - c), (x - c, y), (-x + c, y), (-x, y - c), (-x, -y + c), (-x + c, -y)])


def _area(poly: np.ndarray) -> float:
    return float(polygon_area(poly))


def _visible_fraction(corners: np.ndarray, imgsz: int) -> float:
    full = _area(corners)
    return _area(clip_polygon(corners, (0, 0, imgsz, imgsz))) / full if full > 0 else 0.0


def _min_area_rect(poly: np.ndarray) -> np.ndarray:
    return cv2.boxPoints(cv2.minAreaRect(np.asarray(poly, dtype=np.float32))).astype(np.float64)


def _inside(pts: np.ndarray, imgsz: int, tol: float = 1e-2) -> bool:
    """Whether all points lie in the image, up to ``tol`` px (cv2.minAreaRect works in float32)."""
    return bool(pts.min() >= -tol and pts.max() <= imgsz + tol)


def _obb_label_fits(corners: np.ndarray, imgsz: int) -> bool:
    """Whether the minimum-area rectangle of the object's visible part lies inside the image.

    True for objects entirely inside the image. For an object cut by the border it usually holds only when
    the object is (nearly) axis-aligned: the rectangle follows the object's orientation, the cut follows the
    border, so the rectangle sticks out of the image.
    """
    visible = clip_polygon(corners, (0, 0, imgsz, imgsz))
    if len(visible) == len(corners) and np.allclose(visible, corners):
        return True
    return len(visible) >= 3 and _inside(_min_area_rect(visible), imgsz)


def _object_label(
    task: str,
    corners: np.ndarray,
    imgsz: int,
    silhouette: list[np.ndarray] | None = None,
    min_visible: float = 0.3,
) -> np.ndarray | None:
    """Normalised label coordinates of one object, or None if too little of it is inside the image.

    Args:
        task: "detect" -> returns [cx, cy, w, h]; "obb" -> returns [x1, y1, x2, y2, x3, y3, x4, y4].
        corners: (4, 2) pixel corners of the object's rotated bounding rectangle.
        imgsz: square image side in pixels.
        silhouette: pixel polygons whose union is the object's outline (detect box = their clipped
            extent); defaults to the rectangle itself.
        min_visible: minimum fraction of the rectangle's area inside the image.
    """
    corners = np.asarray(corners, dtype=np.float64)
    full = _area(corners)
    visible = clip_polygon(corners, (0, 0, imgsz, imgsz))
    if full <= 0 or _area(visible) < min_visible * full:
        return None
    if task == "detect":
        parts = [clip_polygon(p, (0, 0, imgsz, imgsz)) for p in (silhouette if silhouette is not None else [corners])]
        pts = np.concatenate([p for p in parts if len(p)] or [visible])
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        box = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0]) / imgsz
        return np.clip(box, 0.0, 1.0)
    if task == "obb":
        if len(visible) == len(corners) and np.allclose(visible, corners):
            rect = corners  # fully inside: the exact rotated rectangle
        else:
            rect = _min_area_rect(visible)
            if not _inside(rect, imgsz):
                # The min-area rectangle sticks out of the image (its orientation follows the object, the cut
                # follows the border). A rectangle holding a polygon that lies along the border must have an
                # edge on the border, so the smallest one inside the image is the axis-aligned bounding box.
                (x0, y0), (x1, y1) = visible.min(0), visible.max(0)
                rect = _rect(x0, x1, y0, y1)
        return np.clip(rect / imgsz, 0.0, 1.0).reshape(-1)
    raise UsageError(f"task={task!r} is invalid: valid values are {TASKS}. Fix: pass task='obb' or task='detect'.")


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area of two convex polygons over the smaller polygon's area."""
    inter, _ = cv2.intersectConvexConvex(a.astype(np.float32), b.astype(np.float32))
    small = min(_area(a), _area(b))
    return float(inter) / small if small > 0 else 1.0
