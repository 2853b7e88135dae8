"""Convert DOTA v1.0 / v1.5 (official layout) into an Ultralytics YOLO-OBB dataset, optionally cut into patches.

Input (the official release, as unpacked from the DOTA site or OpenDataLab)::

    src/train/images/P0000.png       src/train/labelTxt-v1.0/labelTxt/P0000.txt   (v1.0; or labelTxt-v1.0/, labelTxt/)
    src/val/images/P0003.png         src/val/labelTxt-v1.5/DOTA-v1.5_val/P0003.txt (v1.5; or labelTxt-v1.5/)
    src/test/images/...              (no labels: skipped)

Label lines are ``x1 y1 x2 y2 x3 y3 x4 y4 class difficult`` in pixels; v1.0 files start with
``imagesource:...`` and ``gsd:...`` lines. Output, built in a temporary sibling folder and renamed into place::

    out/images/{train,val}/   out/labels/{train,val}/ (``cls x1 y1 ... x4 y4``, normalised)   out/data.yaml   out/convert.json

Decisions:

* Corners are clamped to the image (to the patch when splitting), as the DOTA devkit's ``ImgSplit`` does:
  Ultralytics rejects a whole image whose label coordinates leave [0, 1] by more than 1 %.
* ``split=True`` follows ``ultralytics.data.split_dota.split_trainval``: the same windows (``get_windows``),
  the same IoF >= 0.7 rule for keeping an object in a window, the same patch names
  (``{stem}__{size}__{x}___{y}.jpg``) and cropping (``crop_and_save``); a rate ``r`` widens the window to
  ``crop_size / r`` instead of resizing the image. ``split_trainval`` itself is not called: its IoF needs
  ``shapely`` (not a dependency here; Ultralytics would try to pip-install it, which fails offline), so
  the IoF is computed by clipping each polygon to the window in numpy. Patches are read from the source
  images directly, without writing full-size intermediate labels first.
* ``difficult`` objects: Ultralytics trains on every label alike (it has no ignore flag), while the
  official DOTA evaluation ignores difficult objects. ``include_difficult=True`` keeps them as ordinary
  labels; ``False`` drops them from both splits.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from admd_deploy.data._output import (
    atomic_output,
    clamp,
    format_rows,
    image_size,
    link_or_copy,
    resolve_dirs,
    write_data_yaml,
    write_marker,
)
from admd_deploy.data.polygons import clipped_area, polygon_area
from admd_deploy.errors import MissingFileError, UsageError

LOGGER = logging.getLogger(__name__)

DOTA_V1_CLASSES = (
    "plane", "ship", "storage-tank", "baseball-diamond", "tennis-court", "basketball-court", "ground-track-field",
    "harbor", "bridge", "large-vehicle", "small-vehicle", "helicopter", "roundabout", "soccer-ball-field",
    "swimming-pool",
)
DOTA_CLASSES = {"1.0": DOTA_V1_CLASSES, "1.5": (*DOTA_V1_CLASSES, "container-crane")}
_LABEL_DIRS = {"1.0": ("labelTxt-v1.0", "labelTxt"), "1.5": ("labelTxt-v1.5",)}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
IOF_THRESHOLD = 0.7  # as ultralytics.data.split_dota.get_window_obj
_CONVERTER = "admd_deploy.data.dota"


@dataclass
class _Sample:
    image: Path
    width: int
    height: int
    polygons: np.ndarray  # (N, 4, 2) pixels, inside the image
    classes: np.ndarray  # (N,) int


def convert_dota(
    src: str | Path,
    out: str | Path,
    *,
    version: str = "1.0",
    split: bool = True,
    crop_size: int = 1024,
    gap: int = 200,
    rates: tuple[float, ...] = (1.0,),
    include_difficult: bool = True,
) -> Path:
    """Convert a DOTA release to YOLO-OBB and return the absolute path of its ``data.yaml``.

    Args:
        src: DOTA root holding ``train/`` and ``val/`` (each with ``images/`` and a label folder).
        out: output root; must be absent, empty, or an earlier output of this function (it is replaced).
        version: ``"1.0"`` (15 classes) or ``"1.5"`` (16, adds ``container-crane``).
        split: cut images into ``crop_size`` patches overlapping by ``gap`` (what Ultralytics trains DOTA on);
            ``False`` keeps full images (hardlinked, else symlinked, else copied from ``src``).
        crop_size: patch side in pixels at rate 1.0.
        gap: overlap between neighbouring patches in pixels at rate 1.0.
        rates: scale rates; each adds windows of ``crop_size / rate`` (e.g. ``(0.5, 1.0, 1.5)``).
        include_difficult: keep objects flagged difficult (see the module notes).

    Raises:
        ValueError: a bad argument, an unknown class name or a malformed label line (named ``file:line``).
        FileNotFoundError: ``src`` lacks a split's images or labels.
        FileExistsError: ``out`` is a file or a non-empty folder that this converter did not write.
    """
    names = _check_args(version, crop_size, gap, rates)
    src_dir, out_dir = resolve_dirs(src, out)
    if (src_dir / "test").is_dir():
        LOGGER.info("DOTA test split skipped: its labels are withheld")
    splits = {s: _split_sources(src_dir, s, version) for s in ("train", "val")}
    # Parse every label before writing anything: a bad line fails in seconds, not after an hour of cropping.
    samples, counts = {}, {}
    for s, (images, label_dir) in splits.items():
        samples[s], counts[s] = _load_split(images, label_dir, names, include_difficult)
    crop_sizes = [int(crop_size / r) for r in rates]
    gaps = [int(gap / r) for r in rates]
    with atomic_output(out_dir, _CONVERTER, src_dir) as tmp:
        for s, items in samples.items():
            if split:
                counts[s].update(_write_patches(items, tmp, s, crop_sizes, gaps))
            else:
                counts[s].update(_write_full(items, tmp, s))
            LOGGER.info("DOTA v%s %s: %s", version, s, ", ".join(f"{k} {v}" for k, v in counts[s].items()))
        params = dict(version=version, split=split, crop_size=crop_size, gap=gap, rates=list(rates),
                      include_difficult=include_difficult)
        write_data_yaml(tmp, out_dir, ("train", "val"), names, f"DOTA v{version} converted by {_CONVERTER}")
        write_marker(tmp, _CONVERTER, src_dir, params, counts)
    return out_dir / "data.yaml"


def read_dota_labels(path: str | Path, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read one DOTA label file.

    Header lines (``imagesource:``, ``gsd:``) and blank lines are skipped.

    Args:
        path: the ``.txt`` label file.
        names: the class names, in id order.

    Returns:
        ``(polygons (N, 4, 2) float64 pixels, class ids (N,) int64, difficult (N,) bool)``.

    Raises:
        ValueError: a malformed line or an unknown class name, naming ``file:line``.
    """
    ids = {n: i for i, n in enumerate(names)}
    polys, classes, difficult = [], [], []
    for lineno, raw in enumerate(Path(path).read_text(encoding="utf-8-sig").splitlines(), 1):
        line = raw.strip()
        if not line or line.strip("'\"").lower().startswith(("imagesource", "gsd")):
            continue
        where = f"{path}:{lineno}"
        tokens = line.split()
        if len(tokens) not in (9, 10):
            raise UsageError(f"{where}: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult', got {line!r}. "
                             "Fix the line or remove it.")
        try:
            coords = [float(t) for t in tokens[:8]]
            flag = float(tokens[9]) if len(tokens) == 10 else 0.0
        except ValueError:
            raise UsageError(f"{where}: coordinates and difficult must be numbers, got {line!r}") from None
        if not all(map(math.isfinite, coords)) or flag < 0 or flag != int(flag):
            raise UsageError(f"{where}: coordinates must be finite and difficult a non-negative integer, got {line!r}")
        name = tokens[8].lower()
        if name not in ids:
            hint = " (a DOTA v1.5 class: pass version='1.5')" if name == "container-crane" else ""
            raise UsageError(f"{where}: unknown class {tokens[8]!r}{hint}; valid classes: {', '.join(names)}")
        polys.append(coords)
        classes.append(ids[name])
        difficult.append(flag != 0)
    return (np.array(polys, dtype=np.float64).reshape(-1, 4, 2), np.array(classes, dtype=np.int64),
            np.array(difficult, dtype=bool))


# ------------------------------------------------------------------------------------------------ inputs
def _check_args(version: str, crop_size: int, gap: int, rates: tuple[float, ...]) -> tuple[str, ...]:
    if str(version) not in DOTA_CLASSES:
        raise UsageError(f"version must be one of {', '.join(DOTA_CLASSES)}; got {version!r}")
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in (crop_size, gap)) or not 0 <= gap < crop_size:
        raise UsageError(f"crop_size and gap must be integers with crop_size > gap >= 0; got crop_size={crop_size!r}, "
                         f"gap={gap!r}. Fix: e.g. crop_size=1024, gap=200.")
    if not rates or not all(isinstance(r, (int, float)) and r > 0 for r in rates):
        raise UsageError(f"rates must be a non-empty tuple of positive numbers; got {rates!r}. Fix: e.g. (0.5, 1.0, 1.5).")
    for r in rates:
        if int(crop_size / r) <= int(gap / r) or int(crop_size / r) < 1:
            raise UsageError(f"rate {r} makes the window {int(crop_size / r)} px with gap {int(gap / r)} px; "
                             "the window must exceed the gap. Fix: use a smaller rate or a smaller gap.")
    return DOTA_CLASSES[str(version)]


def _split_sources(root: Path, split: str, version: str) -> tuple[list[Path], Path]:
    image_dir = root / split / "images"
    if not image_dir.is_dir():
        raise MissingFileError(f"{image_dir} not found; expected the official layout {split}/images/*.png. "
                                f"Fix: pass the DOTA root as src.")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not images:
        raise MissingFileError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    tried = [root / split / name for name in _LABEL_DIRS[version]]
    for folder in filter(Path.is_dir, tried):
        if any(folder.glob("*.txt")):
            return images, folder
        # The official archives nest one level: labelTxt-v1.0/labelTxt/, labelTxt-v1.5/DOTA-v1.5_train/.
        nested = [d for d in sorted(folder.iterdir()) if d.is_dir() and any(d.glob("*.txt"))
                  and "reclabel" not in d.name.lower() and "hbb" not in d.name.lower()]
        if len(nested) == 1:
            return images, nested[0]
        if nested:
            raise UsageError(f"{folder} holds several label folders ({', '.join(d.name for d in nested)}). "
                             "Fix: keep only the oriented-box one.")
    raise MissingFileError(f"no DOTA v{version} label files for {split}; looked in {', '.join(map(str, tried))}. "
                            f"Fix: unpack the v{version} labels there, or pass the version that matches them.")


def _load_split(images: list[Path], label_dir: Path, names: Sequence[str],
                include_difficult: bool) -> tuple[list[_Sample], dict[str, int]]:
    samples: list[_Sample] = []
    counts = dict(images=len(images), objects=0, difficult_dropped=0, clamped=0, degenerate_dropped=0,
                  missing_labels=0)
    for image in images:
        width, height = image_size(image)
        label = label_dir / f"{image.stem}.txt"
        if label.is_file():
            polys, classes, difficult = read_dota_labels(label, names)
        else:
            counts["missing_labels"] += 1
            polys, classes, difficult = np.zeros((0, 4, 2)), np.zeros(0, np.int64), np.zeros(0, bool)
        if not include_difficult:
            counts["difficult_dropped"] += int(difficult.sum())
            polys, classes = polys[~difficult], classes[~difficult]
        clamped = clamp(polys, 0, 0, width, height)
        counts["clamped"] += int((clamped != polys).any(axis=(1, 2)).sum())
        keep = polygon_area(clamped) > 0
        counts["degenerate_dropped"] += int((~keep).sum())
        counts["objects"] += int(keep.sum())
        samples.append(_Sample(image, width, height, clamped[keep], classes[keep]))
    if counts["missing_labels"]:
        LOGGER.warning("%d of %d images in %s have no label file in %s; kept as background images",
                       counts["missing_labels"], len(images), images[0].parent, label_dir)
    return samples, counts


# ------------------------------------------------------------------------------------------------ geometry


def polygon_window_iof(polys: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Intersection over foreground: the fraction of each polygon ``(N, K, 2)`` inside each window ``(M, 4)``."""
    iof = np.zeros((len(polys), len(windows)))
    if not len(polys) or not len(windows):
        return iof
    lo, hi, win = polys.min(axis=1)[:, None], polys.max(axis=1)[:, None], windows[None].astype(np.float64)
    overlap = (lo[..., 0] < win[..., 2]) & (hi[..., 0] > win[..., 0]) & (lo[..., 1] < win[..., 3]) & (hi[..., 1] > win[..., 1])
    inside = (lo[..., 0] >= win[..., 0]) & (hi[..., 0] <= win[..., 2]) & (lo[..., 1] >= win[..., 1]) & (hi[..., 1] <= win[..., 3])
    iof[inside] = 1.0
    areas = np.maximum(polygon_area(polys), 1e-9)
    for i, j in zip(*np.nonzero(overlap & ~inside)):
        iof[i, j] = clipped_area(polys[i], windows[j]) / areas[i]
    return iof


# ------------------------------------------------------------------------------------------------ outputs


def _write_full(samples: list[_Sample], tmp: Path, split: str) -> dict[str, int]:
    im_dir, lb_dir = tmp / "images" / split, tmp / "labels" / split
    im_dir.mkdir(parents=True)
    lb_dir.mkdir(parents=True)
    modes: dict[str, int] = {}
    for s in samples:
        mode = link_or_copy(s.image, im_dir / s.image.name)
        modes[mode] = modes.get(mode, 0) + 1
        coords = (s.polygons / [s.width, s.height]).reshape(-1, 8)
        (lb_dir / f"{s.image.stem}.txt").write_text(format_rows(s.classes, coords))
    return {f"images_{k}": v for k, v in modes.items()}


def _write_patches(samples: list[_Sample], tmp: Path, split: str, crop_sizes: list[int],
                   gaps: list[int]) -> dict[str, int]:
    from admd_deploy.ultra.data import crop_and_save, progress, split_windows

    im_dir, lb_dir = tmp / "images" / split, tmp / "labels" / split
    im_dir.mkdir(parents=True)
    lb_dir.mkdir(parents=True)
    patches = instances = 0
    for s in progress(samples, total=len(samples), desc=f"DOTA {split} patches"):
        windows = split_windows(s.height, s.width, crop_sizes, gaps)
        iof = polygon_window_iof(s.polygons, windows)
        window_objs = []
        for j, (x0, y0, x1, y1) in enumerate(windows.tolist()):
            keep = iof[:, j] >= IOF_THRESHOLD
            polys = clamp(s.polygons[keep], x0, y0, min(x1, s.width), min(y1, s.height))
            window_objs.append(np.concatenate([s.classes[keep, None], polys.reshape(-1, 8)], axis=1))
            instances += int(keep.sum())
        try:  # normalises each window's labels by the patch size and writes {stem}__{size}__{x}___{y}.jpg/.txt
            crop_and_save(s.image, windows, window_objs, im_dir, lb_dir)
        except (TypeError, AttributeError) as err:
            if _decodes(s.image):  # the image is fine: the fault is in the call (e.g. crop_and_save's signature)
                raise
            raise UsageError(f"cannot read image {s.image}: OpenCV cannot decode it. Fix: replace or remove it.") from err
        patches += len(windows)
    return dict(patches=patches, patch_instances=instances)


def _decodes(image: Path) -> bool:
    """Whether OpenCV decodes ``image`` (what crop_and_save reads it with)."""
    import cv2

    return cv2.imread(str(image)) is not None
