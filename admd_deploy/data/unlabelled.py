"""Unlabelled target images for the KD term: a folder of frames, letterboxed like Ultralytics' training input.

A drone user has far more frames than labels. The teacher's features are a training signal on every one
of them, so the distillation loss can run on unlabelled frames next to the labelled batch (the detection
loss still sees labelled images only). This module lists such a folder, fingerprints it for the cache
keys, and serves its images as uint8 ``(3, imgsz, imgsz)`` RGB arrays: Ultralytics' letterbox
(``admd_edge.preprocess.letterbox_image``, pixel-identical to ``LetterBox(auto=False, center=True)``) and
a random left-right flip (Ultralytics' ``fliplr`` default, 0.5). No torch import: a ``DataLoader`` takes
:class:`UnlabelledImages` as a map-style dataset.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from admd_edge.preprocess import letterbox_image

from admd_deploy.errors import MissingFileError, UsageError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str | Path) -> list[Path]:
    """Every image under ``folder`` (recursively, sorted by path); refuses a missing folder or one without images."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise MissingFileError(f"unlabelled images: {root} is not a folder. Fix: point data.unlabelled at a folder "
                               "of images (searched recursively), or remove it.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise MissingFileError(f"unlabelled images: no images ({', '.join(IMAGE_SUFFIXES)}) under {root}. "
                               "Fix: point data.unlabelled at the folder that holds them.")
    return files


def fingerprint(folder: str | Path, files: list[Path] | None = None) -> str:
    """Changes when an image is added, removed, renamed or changes size (cheap: no pixel hashing).

    ``files``: the folder's :func:`list_images`, when the caller has it already."""
    root = Path(folder).expanduser()
    entries = [[str(p.relative_to(root)), p.stat().st_size] for p in (list_images(root) if files is None else files)]
    return hashlib.sha256(json.dumps(entries).encode()).hexdigest()[:16]


class UnlabelledImages:
    """Map-style dataset of a folder's images: ``dataset[i]`` is a uint8 ``(3, imgsz, imgsz)`` RGB array.

    Args:
        folder: The images (searched recursively).
        imgsz: The training image size (square letterbox, like Ultralytics' ``rect=False``).
        fliplr: Probability of a left-right flip (Ultralytics' default 0.5; 0 = never).
        seed: Seeds the flips: image ``i`` of pass ``k`` is flipped the same way on every run.
    """

    def __init__(self, folder: str | Path, imgsz: int, fliplr: float = 0.5, seed: int = 0) -> None:
        if isinstance(imgsz, bool) or not isinstance(imgsz, int) or imgsz < 32:
            raise UsageError(f"UnlabelledImages: imgsz={imgsz!r}: valid values are an integer >= 32")
        if not 0.0 <= float(fliplr) <= 1.0:
            raise UsageError(f"UnlabelledImages: fliplr={fliplr!r}: valid values are a probability in [0, 1]")
        self.files = list_images(folder)
        self.imgsz, self.fliplr, self.seed = imgsz, float(fliplr), seed
        self.passes = 0  # bumped by the caller per pass over the data, so flips differ between passes

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> np.ndarray:
        path = self.files[i]
        image = cv2.imread(str(path))
        if image is None:
            raise MissingFileError(f"unlabelled images: cannot read {path} (corrupt or not an image). "
                                   "Fix: delete or replace it.")
        image = letterbox_image(image, self.imgsz)[0][..., ::-1]  # BGR -> RGB, as Ultralytics feeds its models
        rng = np.random.default_rng([self.seed, self.passes, i])
        if rng.random() < self.fliplr:
            image = image[:, ::-1]
        return np.ascontiguousarray(image.transpose(2, 0, 1))


def endless_batches(dataset: UnlabelledImages, batch: int, seed: int = 0, workers: int = 0) -> Any:
    """Yield uint8 ``(batch, 3, imgsz, imgsz)`` torch tensors forever: shuffled passes over ``dataset``.

    Each pass is a new seeded permutation (and new flips); the last batch of a pass is dropped when
    short, so every batch has ``batch`` images (a dataset smaller than ``batch`` yields its images with
    repeats instead).
    """
    import torch
    from torch.utils.data import DataLoader

    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise UsageError(f"unlabelled images: batch={batch!r}: valid values are an integer >= 1")
    while True:
        g = torch.Generator().manual_seed(seed * 1_000_003 + dataset.passes)
        if len(dataset) >= batch:
            sampler: Any = torch.randperm(len(dataset), generator=g).tolist()
        else:
            sampler = torch.randint(len(dataset), (batch,), generator=g).tolist()
        loader = DataLoader(dataset, batch_size=batch, sampler=sampler, drop_last=True, num_workers=workers)
        yield from loader
        dataset.passes += 1
