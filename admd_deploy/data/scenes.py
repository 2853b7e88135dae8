"""Large synthetic scenes (2000-5000 px) with DOTA-format labels, for the split-predict-merge path.

A scene is a grid of tiles, each rendered by the synthetic generator's own scene code
(:func:`admd_deploy.data._scene._render_scene`) at the tile size of the training images (``tile``, 256 by
default), so objects have exactly the pixel sizes the model saw in training. Each tile places its objects
wholly inside itself (``min_visible=1``): no object is cut by a seam, every drawn object is labelled. Tiles
differ in terrain and lighting, so seams are visible; the objects, not the seams, are what is measured.

Scene sides are rounded up to a multiple of ``tile`` (``size=2000`` with 256 px tiles gives 2048 px).
Everything depends only on ``(seed, scene index, tile row, tile column)`` and the knobs: same arguments,
same pixels and labels.

Layout written::

    out/images/scene_00000.png   out/labelTxt/scene_00000.txt   out/scenes.json

Label lines are DOTA's ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` in pixels (read them with
:func:`admd_deploy.data.dota.read_dota_labels` and :data:`admd_deploy.data.synth.CLASS_NAMES`). An object whose
rotated box is shorter than ``difficult_below`` px on its longer side is marked difficult (1); by default none.
"""

from __future__ import annotations

from admd_deploy.errors import UsageError

import json
import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from admd_deploy.data._scene import _render_scene
from admd_deploy.data.synth import CLASS_NAMES, SynthConfig

LOGGER = logging.getLogger(__name__)

_SCENE_STREAM = 7  # the RNG stream id of scenes (the tile datasets use 0 = train, 1 = val)


@dataclass(frozen=True)
class SceneConfig:
    """What determines a set of large scenes.

    Attributes:
        n_scenes: Scenes to write (>= 1).
        size: Scene ``(width, height)`` in pixels, or one int for square scenes (each rounded up to a tile multiple).
        tile: Side of the rendering tiles, i.e. the training image size whose object sizes the scene keeps.
        seed: Non-negative seed.
        min_objects: Fewest labelled objects per tile.
        max_objects: Most labelled objects per tile (raise it for dense scenes).
        classes: Class names (a subset of the generator's), in id order.
        max_overlap: Largest overlap of two objects' rotated boxes (intersection over the smaller area).
        difficult_below: Objects whose longer side is under this many pixels are marked difficult (0: none).
        image_format: ``"png"`` or ``"jpg"``.
    """

    n_scenes: int = 2
    size: int | tuple[int, int] = 2048
    tile: int = 256
    seed: int = 0
    min_objects: int = 4
    max_objects: int = 12
    classes: tuple[str, ...] = CLASS_NAMES
    max_overlap: float = 0.1
    difficult_below: float = 0.0
    image_format: str = "png"

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        if isinstance(self.size, (list, tuple)):
            object.__setattr__(self, "size", tuple(int(v) for v in self.size))
        w, h = self.wh
        if not isinstance(self.n_scenes, int) or self.n_scenes < 1:
            raise UsageError(f"n_scenes must be an integer >= 1; got {self.n_scenes!r}")
        if min(w, h) < 1 or max(w, h) > 20000:
            raise UsageError(f"scene size must be 1..20000 px a side; got {w}x{h}. Fix: e.g. size=2048")
        if self.image_format not in ("png", "jpg"):
            raise UsageError(f"image_format must be png or jpg; got {self.image_format!r}")
        self.tile_config()  # the generator checks tile, seed, object counts, classes and overlap

    @property
    def wh(self) -> tuple[int, int]:
        """Requested ``(width, height)``."""
        return (int(self.size), int(self.size)) if isinstance(self.size, (int, np.integer)) else tuple(self.size)

    @property
    def grid(self) -> tuple[int, int]:
        """Tiles ``(columns, rows)``."""
        w, h = self.wh
        return math.ceil(w / self.tile), math.ceil(h / self.tile)

    def tile_config(self) -> SynthConfig:
        """The generator settings of one tile."""
        return SynthConfig(task="obb", imgsz=self.tile, seed=self.seed, min_objects=self.min_objects,
                           max_objects=self.max_objects, classes=self.classes, max_overlap=self.max_overlap,
                           min_visible=1.0)


def render_scene(config: SceneConfig, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One scene: ``(BGR image, polygons (n, 4, 2) px, class ids (n,), difficult (n,))``."""
    cols, rows = config.grid
    t = config.tile
    cfg = config.tile_config()
    image = np.empty((rows * t, cols * t, 3), dtype=np.uint8)
    polys, classes = [], []
    for r in range(rows):
        for c in range(cols):
            rng = np.random.default_rng([config.seed, _SCENE_STREAM, index, r, c])
            rgb, placed = _render_scene(rng, cfg)
            image[r * t:(r + 1) * t, c * t:(c + 1) * t] = rgb[..., ::-1]
            for cid, shape in placed:
                polys.append(shape.corners() + (c * t, r * t))
                classes.append(cid)
    polygons = np.array(polys, dtype=np.float64).reshape(-1, 4, 2)
    sides = np.linalg.norm(polygons - np.roll(polygons, -1, axis=1), axis=2).max(axis=1) if len(polys) else np.zeros(0)
    return image, polygons, np.array(classes, dtype=np.int64), sides < config.difficult_below


def dota_lines(polygons: np.ndarray, classes: np.ndarray, difficult: np.ndarray, names: Sequence[str]) -> str:
    """DOTA label text: ``x1 y1 ... x4 y4 class difficult`` per object."""
    return "".join(" ".join(f"{v:.1f}" for v in p.reshape(-1)) + f" {names[c]} {int(d)}\n"
                   for p, c, d in zip(polygons, classes.tolist(), difficult.tolist()))


def generate_scenes(out: str | Path, config: SceneConfig | None = None, **overrides: object) -> Path:
    """Write large scenes with DOTA labels into ``out`` (absent or empty) and return it.

    Raises:
        ValueError: A bad setting (naming it).
        FileExistsError: ``out`` holds files.
    """
    config = config or SceneConfig(**overrides)  # type: ignore[arg-type]
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} is not an empty folder. Fix: pass a new folder for the scenes.")
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labelTxt").mkdir(exist_ok=True)
    counts = [0] * len(config.classes)
    for i in range(config.n_scenes):
        image, polys, classes, difficult = render_scene(config, i)
        stem = f"scene_{i:05d}"
        path = out / "images" / f"{stem}.{config.image_format}"
        if not cv2.imwrite(str(path), image):
            raise OSError(f"could not write image {path}")
        (out / "labelTxt" / f"{stem}.txt").write_text(dota_lines(polys, classes, difficult, config.classes))
        for c in classes.tolist():
            counts[c] += 1
        LOGGER.info("scene %d: %dx%d px, %d objects", i, image.shape[1], image.shape[0], len(classes))
    meta = {"generator": "admd_deploy.data.scenes", "config": {**asdict(config), "classes": list(config.classes)},
            "instances": dict(zip(config.classes, counts))}
    (out / "scenes.json").write_text(json.dumps(meta, indent=2) + "\n")
    return out
