"""Drawing for the synthetic generator: cv2 primitives, the placeable ``_Shape`` and the labelled-object builders.

``_fill``/``_line`` draw anti-aliased sub-pixel polygons and polylines, ``_blend`` mixes an overlay in.
A ``_Shape`` is an object in its own frame (parts to draw, a silhouette, a shadow length, an optional
wake), placed by centre + angle. ``_build_plane`` ... ``_build_court`` (``_BUILDERS``, keyed by class
name) make one labelled object from a seeded RNG, with the random-colour helpers and palettes they use.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

from admd_deploy.data._geometry import _circle, _octagon, _rect, _rot

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
