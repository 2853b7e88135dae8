"""Snapshots of where the student is taught: the KD criterion's teaching maps on a few validation images.

At the end of the first, middle and last epoch of a distillation run, the trainer letterboxes the
first few validation images (sorted by name), runs teacher and student on them and saves, per level,
the map the loss weighs locations by (ADMD's discrepancy mask; a normalised discrepancy for the
peers) to ``<run>/kd_maps/epochNNN.npz``. :func:`admd_deploy.plots.plot_teaching_maps` overlays them
on the images for the report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

LOGGER = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
FOLDER = "kd_maps"


def snapshot_epochs(epochs: int) -> set[int]:
    """0-based epochs whose end is snapshotted: the first, the middle and the last."""
    return {0, (epochs - 1) // 2, epochs - 1} if epochs > 0 else set()


def first_images(val: Any, n: int) -> list[Path]:
    """The first ``n`` images (sorted by path) of a resolved Ultralytics ``data["val"]`` (folders or lists)."""
    roots = val if isinstance(val, (list, tuple)) else [val]
    files: list[Path] = []
    for root in map(Path, roots):
        if root.is_dir():
            files += sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif root.suffix == ".txt" and root.is_file():
            files += [Path(x.strip()) for x in root.read_text().splitlines() if x.strip()]
    return files[:n]


def save_teaching_maps(kd_model: Any, images: list[Path], imgsz: int, out_file: Path, epoch: int,
                       level_names: list[str]) -> Path | None:
    """Letterbox ``images`` to ``imgsz``, compute the teaching maps and save them with the images.

    Returns the file written, or None when no image could be read.
    """
    import cv2
    from admd_edge.preprocess import letterbox_image

    boxed = [letterbox_image(im, imgsz)[0] for im in (cv2.imread(str(p)) for p in images) if im is not None]
    if not boxed:
        return None
    param = next(kd_model.parameters())
    x = torch.from_numpy(np.stack(boxed)[..., ::-1].copy()).permute(0, 3, 1, 2).to(param.device, param.dtype) / 255.0
    maps = kd_model.teaching_maps(x)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"map_{name}": m.float().cpu().numpy().astype(np.float16) for name, m in zip(level_names, maps)}
    tmp = out_file.with_name(out_file.stem + ".tmp.npz")
    np.savez_compressed(tmp, images=np.stack(boxed), epoch=np.int64(epoch), **arrays)
    tmp.replace(out_file)
    return out_file
