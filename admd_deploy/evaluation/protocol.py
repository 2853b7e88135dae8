"""Whole-image evaluation as papers report it: split, predict through the exported model, merge, score.

The steps follow DOTA_devkit and Ultralytics' ``split_dota`` (docs/DEPLOY.md, "Large images and DOTA
evaluation"):

1. **Split** each image into ``crop_size`` windows overlapping by ``gap`` (1024 and 200 for DOTA); the last
   window of a row or column is moved back to end at the border; windows with under 60 % of their area on the
   image are dropped unless none has more (:func:`dota_windows`, Ultralytics' ``get_windows``). An image
   smaller than a window is one window (the model letterboxes it). DIOR's 800 px images are one window each.
2. **Predict** each window through the exported model with the torch-free runtime (``admd_edge``; batched
   where the model has a dynamic batch), at ``conf`` (0.05 by default, mmrotate's DOTA test threshold).
3. **Merge** in image pixels, class by class: ``"polygon"`` (default) is DOTA_devkit's polygon NMS at
   ``merge_iou`` 0.1; ``"rotated"`` is the edge runtime's merge (ProbIoU NMS preferring boxes not cut by an
   inner window border, :func:`admd_edge.slicing.merge_detections`).
4. **Score** with :func:`admd_deploy.evaluation.dota.evaluate` (polygon IoU > 0.5, VOC07 11-point AP,
   difficult ignored) and optionally write the server's ``Task1_<class>.txt`` files.

Labels: DOTA ``labelTxt`` lines (``x1 y1 ... x4 y4 class difficult``, pixels) or YOLO label files (``cls x1 y1
... x4 y4`` / ``cls cx cy w h``, normalised; what ``admd-deploy data dior`` writes), told apart line by line.
**Labels outside the image are clipped to it** (as DOTA_devkit's ``ImgSplit`` and the converters here do),
and an object with no area left inside is dropped, with a count in the log. An image without a label file
has no objects.
"""

from __future__ import annotations

from admd_deploy.errors import MissingFileError, UsageError

import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.data._output import clamp
from admd_deploy.data.polygons import polygon_area
from admd_deploy.data.dota import IMAGE_SUFFIXES, read_dota_labels
from admd_deploy.evaluation.dota import ImageDetections, ImageTruth, Scores, evaluate, polygon_nms, write_task1

LOGGER = logging.getLogger(__name__)

MERGES = ("polygon", "rotated")
WINDOW_AREA_MIN = 0.6  # Ultralytics' get_windows im_rate_thr


@dataclass(frozen=True)
class ProtocolSettings:
    """How whole images are split, predicted and merged (defaults: DOTA's single-scale protocol)."""

    protocol: str = "dota"
    crop_size: int = 1024
    gap: int = 200
    conf: float = 0.05
    merge: str = "polygon"
    merge_iou: float = 0.1
    ap: str | None = None  # None: the protocol's (voc07 for dota, dior, dior-r)

    def __post_init__(self) -> None:
        if not (isinstance(self.crop_size, int) and isinstance(self.gap, int) and 0 <= self.gap < self.crop_size):
            raise UsageError(f"crop_size and gap must be integers with crop_size > gap >= 0; got crop_size="
                             f"{self.crop_size!r}, gap={self.gap!r}. Fix: e.g. --crop-size 1024 --gap 200")
        if self.merge not in MERGES:
            raise UsageError(f"merge must be one of {', '.join(MERGES)}; got {self.merge!r}")
        for name in ("conf", "merge_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"{name} must be in [0, 1]; got {getattr(self, name)}")


def dota_windows(height: int, width: int, crop_size: int = 1024, gap: int = 200) -> np.ndarray:
    """Windows ``(n, 4)`` ``x0, y0, x1, y1`` as Ultralytics' ``split_dota.get_windows`` makes them (one rate)."""
    step = crop_size - gap

    def starts(size: int) -> list[int]:
        n = 1 if size <= crop_size else math.ceil((size - crop_size) / step + 1)
        xs = [step * i for i in range(n)]
        if len(xs) > 1 and xs[-1] + crop_size > size:
            xs[-1] = size - crop_size
        return xs

    start = np.array(list(itertools.product(starts(width), starts(height))), dtype=np.int64)
    windows = np.concatenate([start, start + crop_size], axis=1)
    inside = windows.copy()
    inside[:, 0::2] = np.clip(inside[:, 0::2], 0, width)
    inside[:, 1::2] = np.clip(inside[:, 1::2], 0, height)
    rates = ((inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])) / float(crop_size * crop_size)
    if not (rates > WINDOW_AREA_MIN).any():
        rates[np.abs(rates - rates.max()) < 0.01] = 1
    return windows[rates > WINDOW_AREA_MIN]


def read_labels(path: Path, names: Sequence[str], width: int, height: int) -> ImageTruth:
    """Ground truth of one image from a DOTA or YOLO label file, clipped to the image (see the module notes).

    Raises:
        ValueError: A malformed line or an unknown class, naming ``file:line``.
    """
    polys, classes, difficult = np.zeros((0, 4, 2)), np.zeros(0, np.int64), np.zeros(0, bool)
    if path.is_file():
        lines = [ln.split() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
        yolo = bool(lines) and all(len(t) in (5, 9) and _numbers(t) for t in lines)
        if yolo:
            polys, classes = _yolo_rows(path, lines, len(names), width, height)
            difficult = np.zeros(len(classes), bool)
        else:
            polys, classes, difficult = read_dota_labels(path, names)
    clipped = clamp(polys, 0, 0, width, height)
    keep = polygon_area(clipped) > 0
    if (~keep).any() or (clipped != polys).any():
        LOGGER.info("%s: %d label(s) clipped to the %dx%d image, %d outside it dropped", path.name,
                    int((clipped != polys).any(axis=(1, 2)).sum()), width, height, int((~keep).sum()))
    return ImageTruth(clipped[keep], classes[keep], difficult[keep])


def _numbers(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _yolo_rows(path: Path, lines: list[list[str]], nc: int, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.array([[float(t) for t in ln] for ln in lines]) if lines else np.zeros((0, 9))
    classes = rows[:, 0].astype(np.int64)
    bad = np.flatnonzero((classes < 0) | (classes >= nc) | (rows[:, 0] != classes))
    if bad.size:
        raise UsageError(f"{path}:{bad[0] + 1}: class id {lines[bad[0]][0]} is not one of the model's 0..{nc - 1}")
    scale = np.array([width, height], dtype=np.float64)
    if rows.shape[1] == 5:
        cx, cy, w, h = rows[:, 1:].T
        polys = np.stack([np.stack([cx - w / 2, cy - h / 2], 1), np.stack([cx + w / 2, cy - h / 2], 1),
                          np.stack([cx + w / 2, cy + h / 2], 1), np.stack([cx - w / 2, cy + h / 2], 1)], 1)
    else:
        polys = rows[:, 1:].reshape(-1, 4, 2)
    return polys * scale, classes


def label_for(image: Path, labels: Path) -> Path:
    """The label file of an image: ``labels/<stem>.txt``."""
    return labels / f"{image.stem}.txt"


def predict_image(model: Any, image: np.ndarray, settings: ProtocolSettings, batch: int = 8) -> ImageDetections:
    """Split, predict and merge one whole image; detections as polygons in image pixels."""
    from admd_edge.slicing import inner_border_touch, merge_detections, predict_tiles

    h, w = image.shape[:2]
    windows = dota_windows(h, w, settings.crop_size, settings.gap)
    found, owner = predict_tiles(model, image, windows, batch)
    if settings.merge == "rotated":
        cut = inner_border_touch(found.boxes, windows[owner], (h, w))
        found = merge_detections(found, cut, iou=settings.merge_iou)
    polys = found.corners if found.corners is not None else _box_polygons(found.boxes)
    polys = np.asarray(polys, np.float64).reshape(-1, 4, 2)
    scores, classes = np.asarray(found.scores, np.float64), np.asarray(found.class_ids, np.int64)
    if settings.merge == "polygon" and len(scores):
        keep = np.concatenate([idx[polygon_nms(polys[idx], scores[idx], settings.merge_iou)]
                               for idx in (np.flatnonzero(classes == c) for c in np.unique(classes))])
        keep = keep[np.argsort(-scores[keep], kind="stable")]
        polys, scores, classes = polys[keep], scores[keep], classes[keep]
    return ImageDetections(polys, scores, classes)


def _box_polygons(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64)
    return np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)


def evaluate_images(model: Any, images: Path, labels: Path, settings: ProtocolSettings | None = None, *,
                    task1: Path | None = None, batch: int = 8,
                    progress: Callable[[str, int, int], None] | None = None) -> tuple[Scores, dict[str, Any]]:
    """Score a loaded edge model on whole images under a paper protocol.

    Args:
        model: An ``admd_edge.EdgeModel`` (its ``conf`` is replaced by ``settings.conf``).
        images: Folder of whole images.
        labels: Folder of DOTA or YOLO label files named after the images.
        settings: The protocol (DOTA's defaults when None).
        task1: Also write ``Task1_<class>.txt`` submission files there.
        batch: Windows per call for a dynamic-batch model.
        progress: Called as ``progress(image_name, done, total)`` after each image.

    Returns:
        The scores and a summary (protocol, settings, images, windows, seconds).

    Raises:
        FileNotFoundError: No image or no label folder.
        ValueError: A bad label line or setting.
    """
    from admd_edge.sources import read_image

    settings = settings or ProtocolSettings()
    if not labels.is_dir():
        raise MissingFileError(f"label folder {labels} not found. Fix: pass the folder of DOTA labelTxt or "
                                "YOLO labels")
    files = sorted(p for p in images.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) if images.is_dir() else []
    if not files:
        raise MissingFileError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {images}. Fix: pass the image folder")
    names = [model.names[i] for i in sorted(model.names)]
    model.conf = settings.conf
    truths, detections, windows, t0 = {}, {}, 0, time.perf_counter()
    for k, path in enumerate(files):
        image = read_image(path)
        h, w = image.shape[:2]
        truths[path.stem] = read_labels(label_for(path, labels), names, w, h)
        detections[path.stem] = predict_image(model, image, settings, batch)
        windows += len(dota_windows(h, w, settings.crop_size, settings.gap))
        if progress is not None:
            progress(path.name, k + 1, len(files))
    scores = evaluate(detections, truths, names, ap_kind=settings.ap, protocol=settings.protocol)
    if task1 is not None:
        write_task1(task1, detections, names)
    summary = {"protocol": settings.protocol, "settings": settings.__dict__, "images": len(files), "windows": windows,
               "seconds": round(time.perf_counter() - t0, 3), **scores.to_dict()}
    return scores, summary
