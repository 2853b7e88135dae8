"""Pseudo-labels: the teacher's detections on unlabelled target images, written as a YOLO training split.

The feature-imitation term alone recovers little of what unlabelled frames are worth (BENCHMARKS.md,
"Distilling on unlabelled target tiles too": the same tiles labelled lift the student by up to 8.6 points,
feature KD on them by about 0.2). The teacher's confident detections on those frames are a second signal:
written as labels, the frames join the student's training set (detection loss and KD term alike). This is
the classic hard-label distillation of detectors (self-training with a teacher).

No torch and no Ultralytics here: the adapter (``admd_deploy.ultra.trainer``) predicts with the teacher and
hands this module the detections in image pixels; this module turns them into label rows and a folder laid
out the way Ultralytics finds labels (``.../images/x.png`` -> ``.../labels/x.txt``).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.data._output import link_or_copy
from admd_deploy.errors import UsageError

MARKER = "pseudo-labels.json"


def label_rows(detections: Sequence[dict[str, Any]], width: int, height: int, task: str, conf: float,
               nc: int | None = None) -> list[str]:
    """YOLO label rows of the detections with confidence >= ``conf``, coordinates normalised by the image size.

    Args:
        detections: ``cls``, ``conf`` and ``corners`` (obb: four ``[x, y]`` pixels) or ``xyxy`` (detect) per
            detection, in the image's own pixels.
        width: Image width in pixels.
        height: Image height in pixels.
        task: ``obb`` (``cls x1 y1 ... x4 y4``) or ``detect`` (``cls cx cy w h``).
        conf: The lowest confidence kept.
        nc: The dataset's number of classes: a detection of another class is dropped (Ultralytics' label check
            would drop the whole image for it); ``None``: every class kept.

    Returns:
        One row per kept detection, coordinates clipped to the image and written with 6 decimals.
    """
    if task not in ("obb", "detect"):
        raise UsageError(f"pseudo-labels: task={task!r}: valid values are obb, detect")
    if width < 1 or height < 1:
        raise UsageError(f"pseudo-labels: image size {width}x{height} is empty")
    scale = np.array([width, height], dtype=np.float64)
    rows = []
    for det in detections:
        if float(det["conf"]) < conf or (nc is not None and not 0 <= int(det["cls"]) < nc):
            continue
        if task == "obb":
            pts = np.clip(np.asarray(det["corners"], dtype=np.float64).reshape(4, 2) / scale, 0.0, 1.0)
            coords = pts.reshape(-1)
        else:
            x0, y0, x1, y1 = (np.clip(np.asarray(det["xyxy"], dtype=np.float64).reshape(2, 2) / scale, 0, 1)
                              .reshape(-1))
            coords = np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])
            if coords[2] <= 0 or coords[3] <= 0:
                continue  # a box clipped to nothing
        rows.append(f"{int(det['cls'])} " + " ".join(f"{v:.6f}" for v in coords))
    return rows


def _flat_name(path: Path, root: Path) -> str:
    """A unique file name for an image found recursively under ``root`` (``a/b/x.png`` -> ``a__b__x.png``)."""
    return "__".join(path.relative_to(root).parts)


def write_split(root: Path, files: Sequence[Path], detections: Sequence[Sequence[dict[str, Any]]],
                sizes: Sequence[tuple[int, int]], out: Path, task: str, conf: float,
                nc: int | None = None) -> dict[str, Any]:
    """Write ``out/images`` (links to ``files``) and ``out/labels`` (the kept detections); return the counts.

    An image without a kept detection gets an empty label file (a background image to the detection loss).
    ``out`` is replaced as a whole: a folder left by an interrupted call is rewritten, never half-used.

    Args:
        root: The folder ``files`` were found under (names in ``out`` are their paths below it, flattened).
        files: The unlabelled images.
        detections: Per image, the teacher's detections (:func:`label_rows`' input).
        sizes: Per image, ``(width, height)`` in pixels.
        out: The split folder to write.
        task: ``obb`` or ``detect``.
        conf: The lowest confidence kept.
        nc: The dataset's number of classes (:func:`label_rows`).
    """
    if not len(files) == len(detections) == len(sizes):
        raise UsageError(f"pseudo-labels: {len(files)} images, {len(detections)} detection lists and {len(sizes)} "
                         "sizes: they must be as many")
    tmp = out.with_name(out.name + ".partial")
    for folder in (tmp, out):
        if folder.exists():
            shutil.rmtree(folder)
    (tmp / "images").mkdir(parents=True)
    (tmp / "labels").mkdir()
    boxes, empty = 0, 0
    for path, dets, (w, h) in zip(files, detections, sizes):
        name = _flat_name(Path(path), root)
        link_or_copy(Path(path), tmp / "images" / name)
        rows = label_rows(dets, w, h, task, conf, nc)
        (tmp / "labels" / name).with_suffix(".txt").write_text("".join(r + "\n" for r in rows))
        boxes += len(rows)
        empty += not rows
    counts = {"images": len(files), "boxes": boxes, "images_without_boxes": empty, "conf": conf, "task": task}
    (tmp / MARKER).write_text(json.dumps(counts, indent=1))
    tmp.rename(out)
    return counts
