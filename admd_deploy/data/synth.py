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

This module holds the public API (``SynthConfig``, ``generate_synthetic``), the config checks and the
dataset writing (one sample per seeded RNG, atomic rename into place, the ``synth.json`` cache key). The
rendering lives in package-internal modules: ``_geometry`` (polygons, clipping, visibility, labels),
``_shapes`` (cv2 drawing, ``_Shape``, the labelled-object builders) and ``_scene`` (terrain, water, roads,
distractors, ``_render_scene``, ``_photometric``).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

# Beyond TASKS and _object_label, these helpers are re-exported: tests/data/test_synth.py imports them from here.
from admd_deploy.data._geometry import (  # noqa: F401
    TASKS,
    _obb_label_fits,
    _object_label,
    _overlap,
    _rect_corners,
    _visible_fraction,
)
from admd_deploy.data._output import atomic_folder
from admd_deploy.data._scene import _render_scene
from admd_deploy.errors import OutputExistsError, UsageError

__all__ = ["CLASS_NAMES", "SynthConfig", "generate_synthetic"]

CLASS_NAMES: tuple[str, ...] = ("plane", "ship", "storage-tank", "vehicle", "court")
IMAGE_FORMATS: tuple[str, ...] = ("jpg", "png")
SPLITS: tuple[str, ...] = ("train", "val")

# Bump whenever the rendered output changes, so cached datasets made by an older generator are rebuilt.
GENERATOR_VERSION = 1
_META_FILE = "synth.json"

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
        def bad(field: str, value: Any, valid: str, fix: str) -> UsageError:
            return UsageError(f"SynthConfig.{field}={value!r} is invalid: valid values are {valid}. Fix: {fix}.")

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
            raise UsageError(
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
        raise UsageError(
            f"generate_synthetic() got unknown option(s) {unknown}: valid options are {fields}. "
            f"Fix: remove or rename them{' (' + hint + ')' if hint else ''}."
        )
    return dataclasses.replace(config, **overrides) if overrides else config


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


def _write_image(folder: Path, stem: str, rgb: np.ndarray, cfg: SynthConfig) -> None:
    """Write one sample's image as ``folder/stem.<image_format>`` with the config's encoder settings."""
    params = [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality] if cfg.image_format == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    path = folder / f"{stem}.{cfg.image_format}"
    if not cv2.imwrite(str(path), rgb[..., ::-1], params):
        raise OSError(f"could not write image {path}")


def _write_dataset(tmp: Path, final: Path, cfg: SynthConfig, meta: dict[str, Any]) -> None:
    counts: dict[str, dict[str, int]] = {}
    for split, count in (("train", cfg.n_train), ("val", cfg.n_val)):
        (tmp / "images" / split).mkdir(parents=True)
        (tmp / "labels" / split).mkdir(parents=True)
        per_class = [0] * len(cfg.classes)
        for i in range(count):
            img, lines, ids = _sample(cfg, split, i)
            stem = f"{split}_{i:05d}"
            _write_image(tmp / "images" / split, stem, img, cfg)
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
        raise OutputExistsError(
            f"{out} exists and is not a synthetic dataset (no {_META_FILE}); refusing to overwrite it. "
            f"Fix: pass an empty or new out_dir, or delete {out} first."
        )
    with atomic_folder(out, already_there=lambda: _same_dataset(out, meta)) as tmp:  # a concurrent run may finish first
        _write_dataset(tmp, out, cfg, meta)
    return yaml_path



_UNLABELLED_META = "unlabelled.json"


def generate_unlabelled(out_dir: str | Path, config: SynthConfig, count: int) -> Path:
    """Write ``count`` unlabelled images of the same draw as ``config``'s training split; return their folder.

    They are the training tiles that would follow the labelled ones (indices ``n_train`` to
    ``n_train + count - 1``): the same scenes, style and class mix, never in the labelled set. No label
    files are written. Cached like :func:`generate_synthetic` (same config and count: nothing is redone)
    and written atomically.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise UsageError(f"generate_unlabelled: count={count!r} is invalid: valid values are an integer >= 1. "
                         "Fix: pass count=300 or any positive number of images.")
    out = Path(out_dir).expanduser().resolve()
    meta = {**_metadata(config), "unlabelled": {"first": config.n_train, "count": int(count)}}

    def same() -> bool:
        try:
            return json.loads((out / _UNLABELLED_META).read_text()) == meta
        except (OSError, ValueError):
            return False

    if same():
        return out
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / _UNLABELLED_META).is_file())):
        raise OutputExistsError(f"{out} exists and is not a folder of synthetic unlabelled images (no "
                                f"{_UNLABELLED_META}); refusing to overwrite it. Fix: pass a new folder or delete it.")
    with atomic_folder(out, already_there=same) as tmp:
        for i in range(config.n_train, config.n_train + int(count)):
            _write_image(tmp, f"train_{i:05d}", _sample(config, "train", i)[0], config)
        (tmp / _UNLABELLED_META).write_text(json.dumps(meta, indent=2) + "\n")  # last: marks a complete folder
    return out
