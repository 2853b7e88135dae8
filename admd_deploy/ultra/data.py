"""Ultralytics' dataset conventions: image formats, label paths, its label check, DOTA scene splitting."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.ultra import env

_DROPPED = "ignoring corrupt image/label: "  # the reason's prefix in verify_image_label's message


def image_formats() -> frozenset[str]:
    """Image suffixes (lower case, no dot) Ultralytics' loaders read."""
    env.prepare()
    from ultralytics.data.utils import IMG_FORMATS

    return frozenset(IMG_FORMATS)


def img2label_paths(images: list[str]) -> list[str]:
    """The label file of every image (``.../images/x.jpg`` -> ``.../labels/x.txt``)."""
    env.prepare()
    from ultralytics.data.utils import img2label_paths as _img2label_paths

    return list(_img2label_paths(images))


def datasets_dir() -> Path:
    """Ultralytics' ``datasets_dir`` setting (where a relative data ``path:`` resolves when it does not exist here)."""
    env.prepare()
    from ultralytics.utils import DATASETS_DIR

    return Path(DATASETS_DIR)


def label_problem(image: str, label: str, num_cls: int) -> str | None:
    """Why Ultralytics' dataset scan (``verify_image_label``) would drop this image/label pair, or None.

    Args:
        image: Image file.
        label: Its YOLO label file (missing: a background image).
        num_cls: Number of classes of the dataset.
    """
    env.prepare()
    from ultralytics.data.utils import verify_image_label

    # (im_file, lb_file, prefix, keypoint, num_cls, nkpt, ndim, single_cls)
    out = verify_image_label((image, label, "", False, num_cls, 0, 0, False))
    if out[0] is None:  # Ultralytics' marker of a dropped sample; its message (last item) ends with the reason
        reason = str(out[-1]).split(_DROPPED, 1)[-1]
        return reason.splitlines()[0] if reason else "dropped by Ultralytics' label check"
    return None


def split_windows(height: int, width: int, crop_sizes: list[int], gaps: list[int]) -> np.ndarray:
    """Ultralytics' DOTA split windows of a ``height`` x ``width`` scene: ``(K, 4)`` ``x0, y0, x1, y1`` pixels."""
    env.prepare()
    from ultralytics.data.split_dota import get_windows

    return get_windows((height, width), crop_sizes, gaps)


def crop_and_save(image: Path, windows: np.ndarray, window_objs: list[np.ndarray], im_dir: Path,
                  lb_dir: Path) -> None:
    """Cut ``image`` into ``windows`` and write ``{stem}__{size}__{x0}___{y0}.jpg`` / ``.txt`` pairs.

    Args:
        image: The scene image.
        windows: ``(K, 4)`` windows (:func:`split_windows`).
        window_objs: Per window, ``(n, 9)`` rows ``class, x1, y1, ..., x4, y4`` in scene pixels; Ultralytics
            shifts and normalises them by the patch size.
        im_dir: Folder of the patch images.
        lb_dir: Folder of the patch labels.
    """
    env.prepare()
    from ultralytics.data import split_dota

    split_dota.crop_and_save({"filepath": str(image)}, windows, window_objs, str(im_dir), str(lb_dir))


def progress(items: Iterable[Any], total: int, desc: str) -> Iterable[Any]:
    """Ultralytics' progress bar over ``items``."""
    env.prepare()
    from ultralytics.utils import TQDM

    return TQDM(items, total=total, desc=desc)
