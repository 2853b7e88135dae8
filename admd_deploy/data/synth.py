"""Seeded generator of synthetic aerial (remote-sensing-like) detection datasets in Ultralytics YOLO format.

Scenes are textured terrain with crop fields, roads, water bodies, buildings and trees (unlabelled
distractors), on which labelled objects are drawn with per-object rotation, scale, colour and variant
jitter, soft drop shadows, then per-image photometric jitter and sensor noise. Class identity is carried
by geometry, size and texture detail (colours overlap between classes):

* ``plane``        -- fuselage + swept wings + tailplane + engines (cross shape), light colours
* ``ship``         -- elongated hull with a pointed bow, superstructure at the stern, cargo/hatches; mostly on water
* ``storage-tank`` -- light disc with a rim ring, floating-roof crescent shadow or cone-roof ring, long shadow
* ``vehicle``      -- small car (windshield + rear window) or truck (cab + box); mostly on roads, along the road
* ``court``        -- tennis or basketball court: coloured rectangle with white line markings, no shadow

Labels (``labels/{train,val}/*.txt``):

* ``detect``: ``cls cx cy w h`` -- the tight axis-aligned box of the object's visible silhouette.
* ``obb``:    ``cls x1 y1 ... x4 y4`` -- the object's rotated bounding rectangle (its extent in its own
  frame); storage tanks are rotation-invariant and get an axis-aligned square.

Border handling: an object may extend past the image border. Its visible fraction is the area of its
rotated rectangle inside the image over the full area; placements whose visible fraction is below
``min_visible`` are rejected (never drawn), so every drawn object is labelled. A clipped object's label
describes its visible part: detect = box of the silhouette clipped to the image, obb = minimum-area
rectangle (``cv2.minAreaRect``) of the rotated rectangle clipped to the image.

Images depend only on ``(seed, split, index, imgsz, classes, objects/scene knobs)``, never on ``task``:
a detect and an obb dataset made with the same seed show identical images.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

__all__ = ["CLASS_NAMES", "SynthConfig", "generate_synthetic"]

CLASS_NAMES: tuple[str, ...] = ("plane", "ship", "storage-tank", "vehicle", "court")
TASKS: tuple[str, ...] = ("obb", "detect")
IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png")
SPLITS: tuple[str, ...] = ("train", "val")

# Bump whenever the rendered output changes, so cached datasets made by an older generator are rebuilt.
GENERATOR_VERSION = 1
_META_FILE = "synth.json"

# Minimum object sizes in pixels, so that objects stay recognisable at tiny image sizes (64 px).
_MIN_PX = {"plane": 12.0, "ship": 12.0, "storage-tank": 7.0, "vehicle": 7.0, "court": 12.0}
# Nominal object size (longest side) as a fraction of the image size, before the `scale` jitter.
_REL_SIZE = {
    "plane": (0.15, 0.24),
    "ship": (0.14, 0.28),
    "storage-tank": (0.07, 0.13),
    "vehicle": (0.05, 0.075),
    "court": (0.14, 0.21),
}


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SynthConfig:
    """Everything that determines a synthetic dataset (all fields are hashed into its cache key).

    Attributes:
        task: "obb" (rotated boxes, 4 corners) or "detect" (axis-aligned boxes).
        n_train: number of training images (>= 1).
        n_val: number of validation images (>= 1).
        imgsz: square image side in pixels (>= 32).
        seed: non-negative integer seed; same seed + config -> identical dataset.
        min_objects: minimum labelled objects per image (best effort if the image is too crowded).
        max_objects: maximum labelled objects per image.
        classes: class names (subset of CLASS_NAMES, any order); the order defines the class ids.
        scale: (lo, hi) multiplier range applied to each object's nominal size.
        clutter: density of roads, water, buildings and trees (0 = bare textured terrain).
        noise: sensor-noise / photometric-jitter strength multiplier (0 = none).
        max_overlap: maximum intersection / smaller-area between two labelled objects' rotated boxes.
        min_visible: minimum visible fraction of an object cut by the image border (smaller -> not placed).
        image_format: "jpg" or "png".
        jpeg_quality: JPEG quality 1..100 (ignored for png).
    """

    task: str = "obb"
    n_train: int = 64
    n_val: int = 16
    imgsz: int = 256
    seed: int = 0
    min_objects: int = 2
    max_objects: int = 10
    classes: tuple[str, ...] = CLASS_NAMES
    scale: tuple[float, float] = (0.8, 1.25)
    clutter: float = 1.0
    noise: float = 1.0
    max_overlap: float = 0.1
    min_visible: float = 0.3
    image_format: str = "jpg"
    jpeg_quality: int = 95

    def __post_init__(self) -> None:
        # Normalise list inputs (e.g. from YAML/JSON) to tuples so the config stays hashable.
        if isinstance(self.classes, (list, tuple)):
            object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.scale, (list, tuple)):
            object.__setattr__(self, "scale", tuple(self.scale))
        self._validate()

    def _validate(self) -> None:
        def bad(field: str, value: Any, valid: str, fix: str) -> ValueError:
            return ValueError(f"SynthConfig.{field}={value!r} is invalid: valid values are {valid}. Fix: {fix}.")

        def is_int(v: Any) -> bool:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and math.isfinite(v)

        if self.task not in TASKS:
            raise bad("task", self.task, "'obb' or 'detect'", "pass task='obb' (rotated boxes) or task='detect'")
        for field, lo in (("n_train", 1), ("n_val", 1), ("imgsz", 32)):
            v = getattr(self, field)
            if not is_int(v) or v < lo:
                raise bad(field, v, f"an integer >= {lo}", f"pass {field}={max(lo, 64 if field == 'imgsz' else 8)} or larger")
        if self.imgsz > 4096:
            raise bad("imgsz", self.imgsz, "an integer in [32, 4096]", "pass a smaller imgsz, e.g. imgsz=640")
        if not is_int(self.seed) or self.seed < 0:
            raise bad("seed", self.seed, "a non-negative integer", "pass seed=0 (or any int >= 0)")
        for field in ("min_objects", "max_objects"):
            v = getattr(self, field)
            if not is_int(v) or v < 0 or v > 200:
                raise bad(field, v, "an integer in [0, 200]", f"pass e.g. {field}={2 if field == 'min_objects' else 10}")
        if self.max_objects < 1:
            raise bad("max_objects", self.max_objects, "an integer >= 1", "pass max_objects=1 or more")
        if self.min_objects > self.max_objects:
            raise ValueError(
                f"SynthConfig.min_objects={self.min_objects} > max_objects={self.max_objects}: valid values satisfy "
                f"0 <= min_objects <= max_objects. Fix: lower min_objects or raise max_objects."
            )
        if not isinstance(self.classes, tuple) or len(self.classes) == 0:
            raise bad("classes", self.classes, f"a non-empty subset of {CLASS_NAMES}", f"pass classes={CLASS_NAMES!r}")
        unknown = [c for c in self.classes if c not in CLASS_NAMES]
        if unknown:
            raise bad("classes", self.classes, f"names from {CLASS_NAMES}", f"remove or rename {unknown}")
        dupes = sorted({c for c in self.classes if self.classes.count(c) > 1})
        if dupes:
            raise bad("classes", self.classes, "unique names", f"list each class once (duplicated: {dupes})")
        if (
            not isinstance(self.scale, tuple)
            or len(self.scale) != 2
            or not all(is_num(s) for s in self.scale)
            or not 0 < self.scale[0] <= self.scale[1] <= 4
        ):
            raise bad("scale", self.scale, "a pair (lo, hi) with 0 < lo <= hi <= 4", "pass scale=(0.8, 1.25)")
        for field, hi in (("clutter", 5.0), ("noise", 5.0)):
            v = getattr(self, field)
            if not is_num(v) or not 0 <= v <= hi:
                raise bad(field, v, f"a number in [0, {hi}]", f"pass {field}=1.0 (default) or 0 to disable")
        if not is_num(self.max_overlap) or not 0 <= self.max_overlap <= 1:
            raise bad("max_overlap", self.max_overlap, "a number in [0, 1]", "pass max_overlap=0.1")
        if not is_num(self.min_visible) or not 0 < self.min_visible <= 1:
            raise bad("min_visible", self.min_visible, "a number in (0, 1]", "pass min_visible=0.3")
        if self.image_format not in IMAGE_FORMATS:
            raise bad("image_format", self.image_format, "'jpg' or 'png'", "pass image_format='jpg'")
        if not is_int(self.jpeg_quality) or not 1 <= self.jpeg_quality <= 100:
            raise bad("jpeg_quality", self.jpeg_quality, "an integer in [1, 100]", "pass jpeg_quality=95")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict (tuples become lists, numpy scalars become Python numbers)."""
        return json.loads(json.dumps(dataclasses.asdict(self), default=lambda o: o.item()))


def _resolve_config(config: SynthConfig | None, overrides: dict[str, Any]) -> SynthConfig:
    if config is None:
        config = SynthConfig()
    elif not isinstance(config, SynthConfig):
        raise TypeError(
            f"config must be a SynthConfig or None, got {type(config).__name__}. "
            f"Fix: generate_synthetic(out_dir, SynthConfig(...)) or pass the fields as keyword arguments."
        )
    fields = [f.name for f in dataclasses.fields(SynthConfig)]
    unknown = [k for k in overrides if k not in fields]
    if unknown:
        hints = {k: difflib.get_close_matches(k, fields, n=1) for k in unknown}
        hint = "; ".join(f"{k!r} -> did you mean {m[0]!r}?" for k, m in hints.items() if m)
        raise ValueError(
            f"generate_synthetic() got unknown option(s) {unknown}: valid options are {fields}. "
            f"Fix: remove or rename them{' (' + hint + ')' if hint else ''}."
        )
    return dataclasses.replace(config, **overrides) if overrides else config


# --------------------------------------------------------------------------------------------------
# Geometry helpers (all coordinates in pixels, x right, y down)
# --------------------------------------------------------------------------------------------------
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


def _polygon_area(poly: np.ndarray) -> float:
    if len(poly) < 3:
        return 0.0
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _clip_polygon(poly: np.ndarray, width: float, height: float) -> np.ndarray:
    """Sutherland-Hodgman clip of a polygon (N, 2) to the rectangle [0, width] x [0, height]."""
    poly = np.asarray(poly, dtype=np.float64)
    if len(poly) == 0:
        return poly.reshape(0, 2)
    if poly[:, 0].min() >= 0 and poly[:, 1].min() >= 0 and poly[:, 0].max() <= width and poly[:, 1].max() <= height:
        return poly  # fast path: fully inside
    pts = [tuple(p) for p in poly]
    for axis, bound, keep_above in ((0, 0.0, True), (0, float(width), False), (1, 0.0, True), (1, float(height), False)):
        if not pts:
            break
        out = []
        for i, cur in enumerate(pts):
            prev = pts[i - 1]
            cin = cur[axis] >= bound if keep_above else cur[axis] <= bound
            pin = prev[axis] >= bound if keep_above else prev[axis] <= bound
            if cin != pin:  # edge crosses the clip line: add the crossing point
                t = (bound - prev[axis]) / (cur[axis] - prev[axis])
                cross = [prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])]
                cross[axis] = bound
                out.append(tuple(cross))
            if cin:
                out.append(cur)
        pts = out
    return np.array(pts, dtype=np.float64).reshape(-1, 2)


def _visible_fraction(corners: np.ndarray, imgsz: int) -> float:
    full = _polygon_area(corners)
    return _polygon_area(_clip_polygon(corners, imgsz, imgsz)) / full if full > 0 else 0.0


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
    visible = _clip_polygon(corners, imgsz, imgsz)
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
    full = _polygon_area(corners)
    visible = _clip_polygon(corners, imgsz, imgsz)
    if full <= 0 or _polygon_area(visible) < min_visible * full:
        return None
    if task == "detect":
        parts = [_clip_polygon(p, imgsz, imgsz) for p in (silhouette if silhouette is not None else [corners])]
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
    raise ValueError(f"task={task!r} is invalid: valid values are {TASKS}. Fix: pass task='obb' or task='detect'.")


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection area of two convex polygons over the smaller polygon's area."""
    inter, _ = cv2.intersectConvexConvex(a.astype(np.float32), b.astype(np.float32))
    small = min(_polygon_area(a), _polygon_area(b))
    return float(inter) / small if small > 0 else 1.0


# --------------------------------------------------------------------------------------------------
# Drawing helpers
# --------------------------------------------------------------------------------------------------
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = 1 << _SHIFT


def _ipts(pts: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(pts) * _SCALE).astype(np.int32).reshape(-1, 1, 2)


def _col(c: Any) -> tuple[float, ...]:
    c = np.clip(np.asarray(c, dtype=np.float64), 0, 255)
    return tuple(float(v) for v in np.atleast_1d(c))


def _fill(img: np.ndarray, pts: np.ndarray, color: Any) -> None:
    cv2.fillPoly(img, [_ipts(pts)], _col(color), lineType=cv2.LINE_AA, shift=_SHIFT)


def _line(img: np.ndarray, pts: np.ndarray, color: Any, thickness: float, closed: bool = False) -> None:
    cv2.polylines(img, [_ipts(pts)], closed, _col(color), max(1, int(round(thickness))), lineType=cv2.LINE_AA, shift=_SHIFT)


def _blend(img: np.ndarray, overlay: np.ndarray, alpha: float) -> np.ndarray:
    return cv2.addWeighted(overlay, alpha, img, 1.0 - alpha, 0.0)


class _Shape:
    """A drawable object in its own frame (x = heading/length axis), placed by centre + angle."""

    def __init__(self, name: str, parts: list[tuple], silhouette: list[np.ndarray], shadow: float, wake: np.ndarray | None = None):
        self.name = name
        self.parts = parts  # ("fill", pts, rgb) | ("line", pts, rgb, thickness, closed)
        self.silhouette = silhouette  # convex local polygons whose union is the outline
        self.shadow = shadow  # shadow length in px per unit sun elevation factor
        self.wake = wake  # optional local polygon drawn translucent underneath (ships)
        pts = np.concatenate(silhouette)
        self.lo, self.hi = pts.min(0), pts.max(0)  # local bounding box = rotated bounding rectangle
        self.center = np.zeros(2)
        self.angle = 0.0

    def place(self, center: np.ndarray, angle: float) -> _Shape:
        self.center, self.angle = np.asarray(center, dtype=np.float64), float(angle)
        self._R = _rot(self.angle)
        return self

    def world(self, pts: np.ndarray) -> np.ndarray:
        return np.asarray(pts) @ self._R.T + self.center

    def corners(self, margin: float = 0.0) -> np.ndarray:
        (x0, y0), (x1, y1) = self.lo - margin, self.hi + margin
        return self.world(_rect(x0, x1, y0, y1))

    def world_silhouette(self) -> list[np.ndarray]:
        return [self.world(p) for p in self.silhouette]

    def draw(self, img: np.ndarray) -> None:
        for part in self.parts:
            if part[0] == "fill":
                _fill(img, self.world(part[1]), part[2])
            else:
                _line(img, self.world(part[1]), part[2], part[3], part[4])

    def draw_shadow(self, mask: np.ndarray, offset: np.ndarray) -> None:
        if self.shadow <= 0:
            return
        off = offset * self.shadow
        for poly in self.world_silhouette():
            hull = cv2.convexHull(np.concatenate([poly, poly + off]).astype(np.float32))[:, 0]
            _fill(mask, hull, 255)


# --------------------------------------------------------------------------------------------------
# Labelled object builders (local frame, pixel units)
# --------------------------------------------------------------------------------------------------
def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _gray(rng: np.random.Generator, lo: float, hi: float, tint: float = 6.0) -> np.ndarray:
    g = _u(rng, lo, hi)
    return np.clip(g + rng.uniform(-tint, tint, 3), 0, 255)


def _pick(rng: np.random.Generator, palette: list) -> np.ndarray:
    return np.asarray(palette[int(rng.integers(len(palette)))], dtype=np.float64) + rng.uniform(-12, 12, 3)


_CAR_COLOURS = [
    (235, 235, 235), (30, 30, 35), (150, 152, 158), (170, 30, 30), (30, 60, 150), (90, 90, 95), (200, 190, 170), (40, 90, 60)
]
_CONTAINER_COLOURS = [(170, 50, 40), (40, 80, 150), (50, 120, 70), (200, 120, 40), (150, 150, 150), (220, 220, 215)]


def _build_plane(rng: np.random.Generator, size: float, sun: np.ndarray) -> _Shape:
    L = size
    S = L * _u(rng, 0.85, 1.1)
    f = L * _u(rng, 0.075, 0.1)
    body = _gray(rng, 175, 245)
    wing_col = body * _u(rng, 0.86, 0.97)
    top = [(-L / 2, -0.3 * f), (-L / 2 + 0.1 * L, -f / 2), (L / 2 - 0.12 * L, -f / 2), (L / 2 - 0.03 * L, -0.3 * f)]
    fus = np.array(top + [(L / 2, 0)] + [(x, -y) for x, y in reversed(top)])
    xr, cw = L * _u(rng, 0.08, 0.16), L * _u(rng, 0.18, 0.26)
    sweep, tip = L * _u(rng, 0.1, 0.24), cw * _u(rng, 0.25, 0.45)
    a = 0.45 * f
    wing = np.array([(xr, a), (xr - sweep, S / 2), (xr - sweep - tip, S / 2), (xr - cw, a)])
    xt, tc = -L / 2 + 0.17 * L, 0.11 * L
    tspan, tsweep = S * _u(rng, 0.28, 0.36), 0.07 * L
    stab = np.array([(xt, 0.3 * f), (xt - tsweep, tspan / 2), (xt - tsweep - tc * 0.45, tspan / 2), (xt - tc, 0.3 * f)])
    flip = np.array([1.0, -1.0])
    parts: list[tuple] = [("fill", p, wing_col) for p in (stab, stab * flip, wing, wing * flip)]
    eng_col = body * _u(rng, 0.45, 0.7)
    spans = (0.36,) if rng.random() < 0.7 else (0.3, 0.62)
    for sp in spans:
        y = sp * S / 2
        x_le = xr - sweep * (y - a) / (S / 2 - a)
        el, ew = 0.1 * L, max(0.04 * L, 1.2)
        for sgn in (1, -1):
            parts.append(("fill", _rect(x_le - 0.05 * L, x_le - 0.05 * L + el, sgn * y - ew / 2, sgn * y + ew / 2), eng_col))
    parts.append(("fill", fus, body))
    tail_col = _pick(rng, [(180, 30, 40), (30, 60, 140), (40, 110, 70), (210, 150, 40)]) if rng.random() < 0.5 else body * 0.8
    parts.append(("line", np.array([(-L / 2 + 0.01 * L, 0), (-L / 2 + 0.13 * L, 0)]), tail_col, max(1.0, 0.03 * L), False))
    cockpit = np.array([(L / 2 - 0.09 * L, -0.25 * f), (L / 2 - 0.07 * L, 0), (L / 2 - 0.09 * L, 0.25 * f)])
    parts.append(("line", cockpit, (40, 45, 55), max(1.0, 0.02 * L), False))
    return _Shape("plane", parts, [fus, wing, wing * flip, stab, stab * flip], shadow=0.06 * L)


def _build_ship(rng: np.random.Generator, size: float, sun: np.ndarray) -> _Shape:
    L = size
    W = L * _u(rng, 0.16, 0.25)
    bow = L * _u(rng, 0.18, 0.3)
    half = [(-L / 2, -0.42 * W), (-L / 2 + 0.03 * L, -W / 2), (L / 2 - bow, -W / 2), (L / 2 - 0.4 * bow, -0.3 * W), (L / 2, 0)]
    hull = np.array(half + [(x, -y) for x, y in reversed(half[:-1])])
    hull_col = _pick(rng, [(45, 50, 60), (30, 40, 80), (130, 40, 35), (120, 125, 130), (225, 225, 225)])
    deck_col = _pick(rng, [(95, 110, 80), (140, 80, 55), (120, 120, 115), (170, 160, 140)])
    parts: list[tuple] = [("fill", hull, hull_col), ("fill", hull * (0.88, 0.72) + (-0.01 * L, 0), deck_col)]
    x_sup0, x_sup1 = -L / 2 + 0.06 * L, -L / 2 + 0.06 * L + L * _u(rng, 0.1, 0.16)
    cargo0, cargo1 = x_sup1 + 0.03 * L, L / 2 - bow
    variant = rng.random()
    if variant < 0.4:  # container ship
        k = int(rng.integers(3, 8))
        edges = np.linspace(cargo0, cargo1, k + 1)
        gap = 0.12 * (edges[1] - edges[0])
        for x0, x1 in zip(edges[:-1], edges[1:]):
            for y0, y1 in ((-0.38 * W, 0.0), (0.0, 0.38 * W)):
                parts.append(("fill", _rect(x0 + gap, x1 - gap, y0 + 0.03 * W, y1 - 0.03 * W), _pick(rng, _CONTAINER_COLOURS)))
    elif variant < 0.7:  # tanker: pipeline + hatches
        parts.append(("line", np.array([(cargo0, 0), (cargo1, 0)]), (200, 200, 195), max(1.0, 0.06 * W), False))
        for x in np.linspace(cargo0, cargo1, int(rng.integers(2, 5)) + 2)[1:-1]:
            parts.append(("fill", _circle(0.12 * W, x, 0.18 * W, 12), (60, 70, 60)))
    else:  # bulk carrier: hatch covers
        k = int(rng.integers(2, 6))
        edges = np.linspace(cargo0, cargo1, k + 1)
        for x0, x1 in zip(edges[:-1], edges[1:]):
            parts.append(("fill", _rect(x0 + 0.15 * (x1 - x0), x1 - 0.15 * (x1 - x0), -0.3 * W, 0.3 * W), deck_col * 0.6))
    parts.append(("fill", _rect(x_sup0, x_sup1, -0.4 * W, 0.4 * W), _gray(rng, 210, 250)))
    bridge = np.array([(x_sup1 - 0.01 * L, -0.35 * W), (x_sup1 - 0.01 * L, 0.35 * W)])
    parts.append(("line", bridge, (35, 40, 50), max(1.0, 0.015 * L), False))
    wl = L * _u(rng, 0.3, 0.8)
    wake = np.array([(-L / 2, -0.35 * W), (-L / 2 - wl, -0.9 * W), (-L / 2 - wl, 0.9 * W), (-L / 2, 0.35 * W)])
    if rng.random() >= 0.6:
        wake = None
    return _Shape("ship", parts, [hull], shadow=0.15 * W, wake=wake)


def _build_tank(rng: np.random.Generator, size: float, sun: np.ndarray) -> _Shape:
    r = size / 2
    n = 40
    outer = _circle(r, n=n)
    col = _gray(rng, 185, 245, tint=4)
    parts: list[tuple] = [("fill", outer, col)]
    if rng.random() < 0.55:  # floating roof: rim casts a crescent shadow onto the sunken roof
        parts.append(("fill", _circle(0.86 * r, n=n), col * 0.45))
        d = 0.14 * r * sun / (np.linalg.norm(sun) + 1e-9)
        parts.append(("fill", _circle(0.86 * r, d[0], d[1], n), col * _u(rng, 0.78, 0.92)))
        parts.append(("fill", _circle(max(0.08 * r, 0.6), d[0], d[1], 12), col * 0.6))
    else:  # fixed cone roof: concentric ring + centre vent
        parts.append(("line", _circle(0.55 * r, n=n), col * 0.75, max(1.0, 0.05 * size), True))
        parts.append(("fill", _circle(max(0.1 * r, 0.6), n=12), col * 0.7))
    parts.append(("line", _circle(0.93 * r, n=n), col * 0.7, max(1.0, 0.05 * size), True))
    return _Shape("storage-tank", parts, [outer], shadow=0.35 * size)


def _build_vehicle(rng: np.random.Generator, size: float, sun: np.ndarray) -> _Shape:
    dark = (25, 28, 35)
    if rng.random() < 0.75:  # car
        L = size
        W = L * _u(rng, 0.42, 0.5)
        body_col = _pick(rng, _CAR_COLOURS)
        body = _octagon(L, W, 0.2 * W)
        parts: list[tuple] = [
            ("fill", body, body_col),
            ("fill", _rect(0.08 * L, 0.24 * L, -0.4 * W, 0.4 * W), dark),  # windshield
            ("fill", _rect(-0.36 * L, -0.26 * L, -0.38 * W, 0.38 * W), dark),  # rear window
            ("fill", _rect(-0.26 * L, 0.08 * L, -0.36 * W, 0.36 * W), body_col * 0.92 + 8),  # roof
        ]
        return _Shape("vehicle", parts, [body], shadow=0.3 * W)
    L = size * 1.5  # truck / van
    W = L * _u(rng, 0.34, 0.4)
    box_col = _pick(rng, [(230, 230, 230), (180, 180, 185), (200, 60, 40), (60, 90, 160)])
    cab_col = _pick(rng, _CAR_COLOURS)
    cab = _octagon(0.26 * L, W * 0.92, 0.15 * W) + (0.37 * L, 0)
    box = _rect(-L / 2, 0.22 * L, -W / 2, W / 2)
    parts = [("fill", box, box_col), ("fill", cab, cab_col), ("fill", _rect(0.38 * L, 0.45 * L, -0.38 * W, 0.38 * W), dark)]
    parts.append(("line", np.array([(-0.45 * L, 0), (0.17 * L, 0)]), box_col * 0.85, max(1.0, 0.05 * W), False))
    return _Shape("vehicle", parts, [box, cab], shadow=0.4 * W)


def _build_court(rng: np.random.Generator, size: float, sun: np.ndarray) -> _Shape:
    L = size
    W = L * _u(rng, 0.46, 0.56)
    white = _gray(rng, 225, 252, tint=3)
    th = max(1.0, 0.014 * L)
    outer = _rect(-L / 2, L / 2, -W / 2, W / 2)
    if rng.random() < 0.65:  # tennis
        surround = _pick(rng, [(60, 110, 70), (150, 70, 50), (60, 90, 130)])
        surface = _pick(rng, [(70, 140, 85), (50, 100, 160), (185, 95, 60)])
        px, py = 0.42 * L, 0.38 * W
        sx, sy = 0.23 * L, 0.29 * W
        parts: list[tuple] = [
            ("fill", outer, surround),
            ("fill", _rect(-px, px, -py, py), surface),
            ("line", _rect(-px, px, -py, py), white, th, True),
            ("line", np.array([(-px, -sy), (px, -sy)]), white, th, False),
            ("line", np.array([(-px, sy), (px, sy)]), white, th, False),
            ("line", np.array([(-sx, -sy), (-sx, sy)]), white, th, False),
            ("line", np.array([(sx, -sy), (sx, sy)]), white, th, False),
            ("line", np.array([(-sx, 0), (sx, 0)]), white, th, False),
            ("line", np.array([(0, -py * 1.08), (0, py * 1.08)]), white * 0.8, th * 1.3, False),  # net
        ]
    else:  # basketball / multi-sport
        surround = _gray(rng, 90, 150)
        surface = _pick(rng, [(190, 110, 60), (60, 100, 150), (120, 60, 60), (70, 120, 80)])
        px, py = 0.44 * L, 0.4 * W
        key_w, key_l = 0.14 * W, 0.19 * L
        parts = [
            ("fill", outer, surround),
            ("fill", _rect(-px, px, -py, py), surface),
            ("line", _rect(-px, px, -py, py), white, th, True),
            ("line", np.array([(0, -py), (0, py)]), white, th, False),
            ("line", _circle(0.13 * W, n=24), white, th, True),
            ("fill", _rect(-px, -px + key_l, -key_w, key_w), surface * 0.8),
            ("fill", _rect(px - key_l, px, -key_w, key_w), surface * 0.8),
            ("line", _rect(-px, -px + key_l, -key_w, key_w), white, th, True),
            ("line", _rect(px - key_l, px, -key_w, key_w), white, th, True),
        ]
        t = np.linspace(-np.pi / 2, np.pi / 2, 17)
        arc = np.stack([0.28 * L * np.cos(t), 0.9 * py * np.sin(t)], 1)
        parts += [("line", arc + (-px, 0), white, th, False), ("line", arc * (-1, 1) + (px, 0), white, th, False)]
    return _Shape("court", parts, [outer], shadow=0.0)


_BUILDERS = {
    "plane": _build_plane, "ship": _build_ship, "storage-tank": _build_tank, "vehicle": _build_vehicle, "court": _build_court
}


# --------------------------------------------------------------------------------------------------
# Scene: terrain, water, roads, distractors
# --------------------------------------------------------------------------------------------------
def _value_noise(rng: np.random.Generator, size: int, cells: int, octaves: int = 4, persistence: float = 0.5) -> np.ndarray:
    """Multi-octave value noise in [0, 1], shape (size, size), float32."""
    acc = np.zeros((size, size), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        c = min(cells * 2**o, size)
        grid = rng.random((c + 1, c + 1), dtype=np.float32)
        acc += amp * cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
        total += amp
        amp *= persistence
    acc -= acc.min()
    return acc / max(float(acc.max()), 1e-6)


_BIOMES = [  # (base A, base B, patch colour) in RGB
    ((92, 112, 62), (128, 124, 80), (70, 88, 50)),  # green farmland
    ((150, 132, 100), (178, 160, 124), (120, 104, 80)),  # arid
    ((118, 118, 112), (140, 136, 128), (100, 104, 90)),  # urban/industrial grey
    ((104, 120, 72), (150, 136, 100), (84, 98, 62)),  # mixed
]


def _terrain(rng: np.random.Generator, n: int, clutter: float) -> np.ndarray:
    biome = _BIOMES[int(rng.integers(len(_BIOMES)))]
    a, b, c = (np.asarray(x, np.float32) + rng.uniform(-10, 10, 3).astype(np.float32) for x in biome)
    t = _value_noise(rng, n, int(rng.integers(2, 4)), 4)[..., None]
    p = _value_noise(rng, n, int(rng.integers(3, 6)), 3)[..., None]
    patch = np.clip((p - 0.55) * 5, 0, 1)
    img = a * (1 - t) + b * t
    img = img * (1 - patch) + c * patch
    img += (_value_noise(rng, n, max(8, n // 6), 2)[..., None] - 0.5) * 18  # fine grain
    # Crop fields / parcels: large rotated patches with row stripes.
    for _ in range(int(rng.poisson(3 * min(clutter, 2.0)))):
        overlay = img.copy()
        w, h = _u(rng, 0.2, 0.6) * n, _u(rng, 0.15, 0.5) * n
        ang = _u(rng, 0, np.pi)
        ctr = rng.uniform(0, n, 2)
        poly = _rect_corners(ctr[0], ctr[1], w, h, ang)
        tone = np.asarray(img[int(np.clip(ctr[1], 0, n - 1)), int(np.clip(ctr[0], 0, n - 1))]) * _u(rng, 0.8, 1.2)
        _fill(overlay, poly, tone)
        if rng.random() < 0.6:  # crop rows
            d = np.array([math.cos(ang), math.sin(ang)])
            nrm = np.array([-d[1], d[0]])
            spacing = max(2.0, _u(rng, 0.012, 0.03) * n)
            for k in np.arange(-h / 2, h / 2, spacing):
                p0 = ctr + nrm * k - d * w / 2
                _line(overlay, np.array([p0, p0 + d * w]), tone * 0.88, max(1.0, spacing * 0.35))
        if rng.random() < 0.2:  # centre-pivot irrigation circle
            _fill(overlay, _circle(min(w, h) * 0.5, ctr[0], ctr[1], 40), tone * _u(rng, 0.75, 0.95) + (0, 12, 0))
        img = _blend(img, overlay, _u(rng, 0.35, 0.7))
    return img


def _water(rng: np.random.Generator, img: np.ndarray, n: int, frac: float) -> np.ndarray:
    """Paint a water body covering ~``frac`` of the image; returns its boolean mask."""
    field = _value_noise(rng, n, int(rng.integers(2, 4)), 3, 0.45)
    if rng.random() < 0.5:  # river/coast: bias the field along a random direction
        ang = _u(rng, 0, np.pi)
        yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
        field = field * 0.5 + 0.5 * (xx * math.cos(ang) + yy * math.sin(ang))
    thr = float(np.quantile(field, 1 - frac))
    mask = (field >= thr).astype(np.float32)
    soft = cv2.GaussianBlur(mask, (0, 0), max(0.6, n / 256))[..., None]
    colour = np.asarray([(40, 62, 78), (34, 56, 62), (52, 72, 88), (46, 66, 58)][int(rng.integers(4))], np.float32)
    ripple = (_value_noise(rng, n, max(4, n // 16), 2)[..., None] - 0.5) * 14
    water = colour + ripple + rng.uniform(-6, 6, 3).astype(np.float32)
    shore = np.clip(soft * (1 - soft) * 4, 0, 1) * 20  # lighter sandy/muddy shoreline band
    img[:] = img * (1 - soft) + water * soft + shore
    return mask > 0.5


def _roads(rng: np.random.Generator, img: np.ndarray, n: int, count: int) -> tuple[np.ndarray, list[tuple]]:
    """Draw ``count`` asphalt polylines with dashed markings; returns (mask, [(p0, p1, width), ...])."""
    mask = np.zeros((n, n), np.uint8)
    segments: list[tuple] = []
    for _ in range(count):
        side = int(rng.integers(4))
        s = _u(rng, 0.1, 0.9) * n
        start = [(s, -0.05 * n), (n * 1.05, s), (s, n * 1.05), (-0.05 * n, s)][side]
        heading = [np.pi / 2, np.pi, -np.pi / 2, 0.0][side] + _u(rng, -0.5, 0.5)
        pts = [np.asarray(start, dtype=np.float64)]
        for _ in range(int(rng.integers(2, 5))):
            step = _u(rng, 0.3, 0.7) * n
            pts.append(pts[-1] + step * np.array([math.cos(heading), math.sin(heading)]))
            heading += _u(rng, -0.6, 0.6)
        pts_a = np.array(pts)
        width = max(3.0, _u(rng, 0.04, 0.07) * n)
        asphalt = _gray(rng, 70, 110, tint=3)
        _line(img, pts_a, asphalt * 1.25, width + max(1.0, 0.15 * width))  # shoulder
        _line(img, pts_a, asphalt, width)
        _line(mask, pts_a, 255, width)
        mark = (235, 235, 230) if rng.random() < 0.7 else (220, 190, 70)
        dash = max(2.0, 0.035 * n)
        for p0, p1 in zip(pts_a[:-1], pts_a[1:]):
            seg = p1 - p0
            length = float(np.linalg.norm(seg))
            segments.append((p0, p1, width))
            d = seg / max(length, 1e-9)
            for t0 in np.arange(0, length, 2 * dash):
                _line(img, np.array([p0 + d * t0, p0 + d * min(t0 + dash, length)]), mark, max(1.0, 0.07 * width))
    return mask > 0, segments


def _building(rng: np.random.Generator, size: float) -> _Shape:
    L = size
    W = L * _u(rng, 0.4, 1.0)
    roof = _pick(rng, [(150, 150, 150), (180, 95, 70), (120, 95, 80), (110, 120, 135), (215, 215, 210), (90, 90, 90)])
    body = _rect(-L / 2, L / 2, -W / 2, W / 2)
    parts: list[tuple] = []
    sil = [body]
    if rng.random() < 0.3:  # L-shaped annex
        wing = _rect(L / 2 - 0.4 * L, L / 2, W / 2 - 0.1 * W, W / 2 + _u(rng, 0.3, 0.8) * W)
        sil.append(wing)
        parts.append(("fill", wing, roof * 0.95))
    if rng.random() < 0.6:  # gabled roof: sunlit and shaded halves + ridge
        parts += [
            ("fill", _rect(-L / 2, L / 2, -W / 2, 0), roof * 1.08),
            ("fill", _rect(-L / 2, L / 2, 0, W / 2), roof * 0.82),
            ("line", np.array([(-L / 2, 0), (L / 2, 0)]), roof * 0.7, max(1.0, 0.03 * W), False),
        ]
    else:  # flat roof: parapet + rooftop units
        parts += [("fill", body, roof * 0.85), ("fill", _rect(-0.45 * L, 0.45 * L, -0.42 * W, 0.42 * W), roof)]
        for _ in range(int(rng.integers(0, 4))):
            c = rng.uniform(-0.3, 0.3, 2) * (L, W)
            s = max(1.0, 0.08 * L)
            parts.append(("fill", _rect(c[0] - s, c[0] + s, c[1] - s, c[1] + s), _gray(rng, 170, 220)))
    return _Shape("building", parts, sil, shadow=_u(rng, 0.12, 0.35) * min(L, W))


def _tree(rng: np.random.Generator, r: float, sun: np.ndarray) -> _Shape:
    col = _pick(rng, [(48, 70, 38), (58, 82, 44), (40, 58, 34), (70, 90, 50)])
    crown = _circle(r, n=16) * (1 + rng.uniform(-0.12, 0.12, (16, 1)))
    d = -0.3 * r * sun / (np.linalg.norm(sun) + 1e-9)
    parts = [("fill", crown, col), ("fill", _circle(0.55 * r, d[0], d[1], 12), col * 1.25)]
    return _Shape("tree", parts, [cv2.convexHull(crown.astype(np.float32))[:, 0].astype(np.float64)], shadow=0.9 * r)


# --------------------------------------------------------------------------------------------------
# Scene assembly
# --------------------------------------------------------------------------------------------------
def _object_size(rng: np.random.Generator, name: str, cfg: SynthConfig) -> float:
    lo, hi = _REL_SIZE[name]
    return max(_MIN_PX[name], _u(rng, lo, hi) * cfg.imgsz * _u(rng, *cfg.scale))


def _render_scene(rng: np.random.Generator, cfg: SynthConfig) -> tuple[np.ndarray, list[tuple[int, _Shape]]]:
    """Render one image. Returns (RGB uint8 image, [(class_id, placed shape), ...])."""
    n = cfg.imgsz
    clutter = cfg.clutter
    k = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    cls_ids = [int(c) for c in rng.integers(0, len(cfg.classes), k)]
    names = [cfg.classes[c] for c in cls_ids]
    sun = np.array([math.cos(a := _u(rng, 0, 2 * np.pi)), math.sin(a)]) * _u(rng, 0.6, 1.2)

    img = _terrain(rng, n, clutter)
    water = np.zeros((n, n), bool)
    if clutter > 0 and rng.random() < min(1.0, (0.85 if "ship" in names else 0.3) * clutter):
        water = _water(rng, img, n, _u(rng, 0.15, 0.4) if "ship" in names else _u(rng, 0.05, 0.25))
    n_roads = int(rng.integers(1, 3)) if "vehicle" in names else int(rng.integers(0, 3))
    n_roads = int(round(n_roads * min(clutter, 2.0)))
    roads, segments = _roads(rng, img, n, n_roads) if n_roads else (np.zeros((n, n), bool), [])

    # ---- labelled objects: rejection sampling against border visibility and mutual overlap
    placed: list[tuple[int, _Shape]] = []
    water_dist = cv2.distanceTransform(water.astype(np.uint8), cv2.DIST_L2, 3) if water.any() else None
    for cid, name in zip(cls_ids, names):
        for _attempt in range(60):
            shape = _BUILDERS[name](rng, _object_size(rng, name, cfg), sun)
            angle = 0.0 if name == "storage-tank" else _u(rng, 0, 2 * np.pi)
            center = rng.uniform(0, n, 2)
            if name == "ship" and water_dist is not None and rng.random() < 0.85:
                ext = shape.hi - shape.lo  # keep most of the hull over water, not in a puddle
                idx = np.flatnonzero(water_dist.ravel() >= max(1.0, 0.75 * float(ext[1]), 0.3 * float(ext[0])))
                if len(idx):
                    i = int(idx[int(rng.integers(len(idx)))])
                    center = np.array([i % n, i // n], dtype=np.float64) + rng.uniform(-0.5, 0.5, 2)
            elif name == "vehicle" and segments and rng.random() < 0.7:
                lens = np.array([np.linalg.norm(p1 - p0) for p0, p1, _ in segments])
                p0, p1, width = segments[int(rng.choice(len(segments), p=lens / lens.sum()))]
                d = (p1 - p0) / max(float(np.linalg.norm(p1 - p0)), 1e-9)
                center = p0 + (p1 - p0) * _u(rng, 0, 1) + np.array([-d[1], d[0]]) * width * rng.choice([-0.25, 0.25])
                angle = math.atan2(d[1], d[0]) + (np.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.05)
            shape.place(center, angle)
            corners = shape.corners()
            if _visible_fraction(corners, n) < cfg.min_visible or not _obb_label_fits(corners, n):
                continue
            if any(_overlap(corners, other.corners()) > cfg.max_overlap for _, other in placed):
                continue
            placed.append((cid, shape))
            break

    # ---- distractors: buildings and trees, kept off labelled objects, water and roads
    occupied = np.zeros((n, n), np.uint8)
    for _, shape in placed:
        _fill(occupied, shape.corners(margin=max(1.0, 0.01 * n)), 255)
    blocked = (occupied > 0) | water | roads
    distractors: list[_Shape] = []

    def free(shape: _Shape) -> bool:
        pts = np.concatenate(shape.world_silhouette())
        x0, y0 = np.clip(np.floor(pts.min(0)).astype(int), 0, n)
        x1, y1 = np.clip(np.ceil(pts.max(0)).astype(int) + 1, 0, n)
        return x1 > x0 and y1 > y0 and not blocked[y0:y1, x0:x1].any()

    def claim(shape: _Shape) -> None:
        m = np.zeros((n, n), np.uint8)
        for p in shape.world_silhouette():
            _fill(m, p, 255)
        blocked[m > 0] = True
        distractors.append(shape)

    for _ in range(int(rng.poisson(7 * clutter))):
        for _attempt in range(8):
            b = _building(rng, max(5.0, _u(rng, 0.05, 0.15) * n)).place(rng.uniform(0, n, 2), _u(rng, 0, np.pi))
            if free(b):
                claim(b)
                break
    for _ in range(int(rng.poisson(3 * clutter))):
        c0 = rng.uniform(0, n, 2)
        for _t in range(int(rng.integers(2, 10))):
            t = _tree(rng, max(1.5, _u(rng, 0.012, 0.03) * n), sun).place(c0 + rng.normal(0, 0.05 * n, 2), 0.0)
            if free(t):
                claim(t)

    # ---- draw: wakes, shadows, distractors, objects
    canvas = np.clip(img, 0, 255).astype(np.uint8)
    def on_water(s: _Shape) -> bool:
        x, y = np.clip(s.center, 0, n - 1).astype(int)
        return bool(water[y, x])

    wakes = [s for _, s in placed if s.wake is not None and on_water(s)]
    if wakes:
        overlay = canvas.copy()
        for s in wakes:
            _fill(overlay, s.world(s.wake), (200, 210, 215))
        overlay = cv2.GaussianBlur(overlay, (0, 0), max(0.7, 0.004 * n))
        canvas = _blend(canvas, overlay, 0.25)
    shadow = np.zeros((n, n), np.uint8)
    for s in distractors + [s for _, s in placed]:
        s.draw_shadow(shadow, sun)
    shadow_f = cv2.GaussianBlur(shadow, (0, 0), max(0.5, 0.004 * n)).astype(np.float32) / 255.0
    canvas = (canvas.astype(np.float32) * (1 - _u(rng, 0.45, 0.6) * shadow_f[..., None])).astype(np.uint8)
    for s in distractors:
        s.draw(canvas)
    for _, s in placed:
        s.draw(canvas)
    return _photometric(rng, canvas, cfg.noise), placed


def _photometric(rng: np.random.Generator, img: np.ndarray, strength: float) -> np.ndarray:
    """Brightness/contrast/white-balance jitter, optional haze, optics blur and sensor noise."""
    x = img.astype(np.float32)
    n = img.shape[0]
    x = cv2.GaussianBlur(x, (0, 0), _u(rng, 0.35, 0.65) * max(1.0, n / 512))
    if strength > 0:
        mean = float(x.mean())
        contrast = 1 + _u(rng, -0.15, 0.15) * strength
        brightness = _u(rng, -14, 14) * strength
        gains = (1 + rng.uniform(-0.05, 0.05, 3) * strength).astype(np.float32)
        x = ((x - mean) * contrast + mean + brightness) * gains
        if rng.random() < 0.25 * min(strength, 1.0):
            a = _u(rng, 0.05, 0.2)
            x = x * (1 - a) + a * np.float32(_u(rng, 180, 230))
        x += rng.standard_normal(x.shape, dtype=np.float32) * np.float32(_u(rng, 1.0, 4.0) * strength)
    return np.clip(x + 0.5, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------------------
# Dataset writing
# --------------------------------------------------------------------------------------------------
def _format_label(cid: int, coords: np.ndarray) -> str:
    return " ".join([str(cid)] + [f"{v:.6f}" for v in coords])


def _sample(cfg: SynthConfig, split: str, index: int) -> tuple[np.ndarray, list[str], list[int]]:
    """One (RGB image, label lines, class ids) sample; depends only on seed/split/index and scene knobs."""
    rng = np.random.default_rng([cfg.seed, SPLITS.index(split), index])
    img, placed = _render_scene(rng, cfg)
    lines, ids = [], []
    for cid, shape in placed:
        coords = _object_label(cfg.task, shape.corners(), cfg.imgsz, shape.world_silhouette(), cfg.min_visible)
        if coords is not None:
            lines.append(_format_label(cid, coords))
            ids.append(cid)
    return img, lines, ids


def _metadata(cfg: SynthConfig) -> dict[str, Any]:
    return {"generator": "admd_deploy.data.synth", "version": GENERATOR_VERSION, "config": cfg.to_dict()}


def _same_dataset(out: Path, meta: dict[str, Any]) -> bool:
    try:
        stored = json.loads((out / _META_FILE).read_text())
    except (OSError, ValueError):
        return False
    keys = ("generator", "version", "config")
    return all(stored.get(k) == meta[k] for k in keys) and (out / "data.yaml").is_file()


def _write_dataset(tmp: Path, final: Path, cfg: SynthConfig, meta: dict[str, Any]) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality] if cfg.image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    counts: dict[str, dict[str, int]] = {}
    for split, count in (("train", cfg.n_train), ("val", cfg.n_val)):
        (tmp / "images" / split).mkdir(parents=True)
        (tmp / "labels" / split).mkdir(parents=True)
        per_class = [0] * len(cfg.classes)
        for i in range(count):
            img, lines, ids = _sample(cfg, split, i)
            stem = f"{split}_{i:05d}"
            path = tmp / "images" / split / f"{stem}.{cfg.image_format}"
            if not cv2.imwrite(str(path), img[..., ::-1], params):
                raise OSError(f"could not write image {path}")
            (tmp / "labels" / split / f"{stem}.txt").write_text("".join(line + "\n" for line in lines))
            for c in ids:
                per_class[c] += 1
        counts[split] = dict(zip(cfg.classes, per_class))
    data = {
        "path": str(final),
        "train": "images/train",
        "val": "images/val",
        "nc": len(cfg.classes),
        "names": dict(enumerate(cfg.classes)),
    }
    header = f"# Synthetic aerial {cfg.task} dataset made by admd_deploy.data.synth (seed={cfg.seed}); see {_META_FILE}.\n"
    (tmp / "data.yaml").write_text(header + yaml.safe_dump(data, sort_keys=False))
    # Written last: its presence marks a complete dataset.
    (tmp / _META_FILE).write_text(json.dumps({**meta, "instances": counts}, indent=2) + "\n")


def generate_synthetic(out_dir: str | Path, config: SynthConfig | None = None, **overrides: Any) -> Path:
    """Write a synthetic aerial dataset in Ultralytics YOLO format and return the absolute path of its data YAML.

    Layout: ``out_dir/images/{train,val}/*.jpg``, ``out_dir/labels/{train,val}/*.txt``, ``out_dir/data.yaml``
    and ``out_dir/synth.json`` (generator version + config, the cache key). If ``out_dir`` already holds a
    dataset made with the same config, nothing is regenerated. The dataset is built in a temporary sibling
    directory and renamed into place, so an interrupted run never leaves a half dataset at ``out_dir``.

    Args:
        out_dir: dataset root. Must be absent, empty, or a dataset previously written by this function.
        config: a SynthConfig (defaults to ``SynthConfig()``).
        **overrides: SynthConfig fields overriding ``config``'s, e.g. ``task="detect", imgsz=128``.

    Raises:
        ValueError: invalid config or unknown override names.
        FileExistsError: ``out_dir`` is a non-empty directory (or a file) that is not a synthetic dataset.
    """
    cfg = _resolve_config(config, overrides)
    out = Path(out_dir).expanduser().resolve()
    meta = _metadata(cfg)
    yaml_path = out / "data.yaml"
    if _same_dataset(out, meta):
        return yaml_path
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / _META_FILE).is_file())):
        raise FileExistsError(
            f"{out} exists and is not a synthetic dataset (no {_META_FILE}); refusing to overwrite it. "
            f"Fix: pass an empty or new out_dir, or delete {out} first."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        _write_dataset(tmp, out, cfg, meta)
        _move_into_place(tmp, out, meta)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return yaml_path


def _move_into_place(tmp: Path, out: Path, meta: dict[str, Any]) -> None:
    trash = None
    if out.exists():
        if _same_dataset(out, meta):  # a concurrent run finished first
            return
        if any(out.iterdir()):  # an older synthetic dataset (checked by the caller): move it aside
            trash = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(out, trash)
        else:
            out.rmdir()
    try:
        os.rename(tmp, out)
    except OSError:
        if not _same_dataset(out, meta):  # lost a race to a run with a different config, or a real error
            raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
