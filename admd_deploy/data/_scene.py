"""Scene rendering for the synthetic generator: terrain, water, roads, distractors, objects, photometry.

Value-noise terrain in one of a few biomes with crop fields, water bodies, asphalt roads, buildings and
trees (unlabelled distractors); ``_object_size`` draws an object's size from its class and the config;
``_render_scene`` places the labelled objects (rejection sampling against border visibility and mutual
overlap), draws everything with shadows and wakes, then ``_photometric`` adds jitter and sensor noise.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from admd_deploy.data._geometry import _circle, _obb_label_fits, _overlap, _rect, _rect_corners, _visible_fraction
from admd_deploy.data._shapes import _BUILDERS, _blend, _fill, _gray, _line, _pick, _Shape, _u

if TYPE_CHECKING:
    from admd_deploy.data.synth import SynthConfig

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

