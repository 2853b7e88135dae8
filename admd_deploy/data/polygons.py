"""Polygon geometry shared by the dataset converters, the synthetic generator and the DOTA scorer.

One implementation each (pixels, x right, y down): the shoelace area of one polygon or a batch, and the
Sutherland-Hodgman clip of a polygon to an axis-aligned box (an image, or a slicing window).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def polygon_area(polys: np.ndarray) -> np.ndarray:
    """Shoelace area of ``(N, K, 2)`` polygons, ``(N,)``; of one ``(K, 2)`` polygon, a scalar (0 below 3 points)."""
    polys = np.asarray(polys)
    x, y = polys[..., 0], polys[..., 1]
    return 0.5 * np.abs((x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y).sum(axis=-1))


def clip_polygon(poly: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The part of a polygon ``(K, 2)`` inside the box ``(x0, y0, x1, y1)``, as ``(M, 2)`` (Sutherland-Hodgman).

    A polygon entirely inside comes back unchanged; crossing points lie exactly on the box's edges.
    """
    poly = np.asarray(poly, dtype=np.float64)
    if len(poly) == 0:
        return poly.reshape(0, 2)
    x0, y0, x1, y1 = (float(v) for v in box)
    if poly[:, 0].min() >= x0 and poly[:, 1].min() >= y0 and poly[:, 0].max() <= x1 and poly[:, 1].max() <= y1:
        return poly  # fast path: fully inside
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_above in ((0, x0, True), (0, x1, False), (1, y0, True), (1, y1, False)):
        if not pts:
            break
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cin = cur[axis] >= bound if keep_above else cur[axis] <= bound
            pin = prev[axis] >= bound if keep_above else prev[axis] <= bound
            if cin != pin:  # the edge crosses the clip line: add the crossing point
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                cross = [prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]
                cross[axis] = bound
                out.append(tuple(cross))
            if cin:
                out.append(cur)
        pts = out
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def clipped_area(poly: np.ndarray, box: Sequence[float]) -> float:
    """Area of a polygon ``(K, 2)`` inside the box ``(x0, y0, x1, y1)``."""
    return float(polygon_area(clip_polygon(poly, box)))
