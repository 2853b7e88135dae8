"""Letterbox preprocessing, identical to Ultralytics' predict/val path for a fixed input size.

Ultralytics (``data/augment.py`` ``LetterBox`` with ``auto=False``, ``engine/predictor.py`` ``preprocess``):

- ``r = min(H / h, W / w)``; resized size ``(max(round(w * r), 1), max(round(h * r), 1))`` with
  ``cv2.INTER_LINEAR`` (no resize when the size already matches);
- the padding split in two, ``top = round(dh / 2 - 0.1)``, ``bottom = round(dh / 2 + 0.1)`` (same for
  left/right), filled with 114;
- BGR -> RGB, HWC -> CHW, ``uint8 / 255`` in float32, a batch dimension.

:class:`Preprocessor` produces the same tensor with few temporaries: the resized image goes into a reused
buffer, ``cv2.split`` separates its channels and ``np.divide(plane, 255)`` (float32, so bit-identical to
Ultralytics' ``div_(255)``) writes each one straight into its RGB plane of a preallocated input tensor.
Geometry and padding are recomputed only when the image size changes (a video keeps them).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

LOGGER = logging.getLogger(__name__)

PAD_VALUE = 114


@dataclass(frozen=True)
class Letterbox:
    """Where an original image lies inside the network input.

    Attributes:
        orig_shape: Original image ``(height, width)``.
        input_shape: Network input ``(height, width)``.
        new_unpad: Resized image ``(width, height)`` before padding.
        top: Rows of padding above.
        bottom: Rows of padding below.
        left: Columns of padding on the left.
        right: Columns of padding on the right.
    """

    orig_shape: tuple[int, int]
    input_shape: tuple[int, int]
    new_unpad: tuple[int, int]
    top: int
    bottom: int
    left: int
    right: int

    @property
    def gain(self) -> tuple[float, float]:
        """Scale ``(x, y)`` from original to network pixels, per axis as Ultralytics' ``scale_boxes`` uses it."""
        return self.new_unpad[0] / self.orig_shape[1], self.new_unpad[1] / self.orig_shape[0]

    @property
    def pad(self) -> tuple[int, int]:
        """Padding ``(left, top)`` in network pixels."""
        return self.left, self.top


def input_hw(size: int | Sequence[int]) -> tuple[int, int]:
    """Network input ``(height, width)`` from an int (square) or an ``(h, w)`` pair.

    Raises:
        ValueError: If the size is not one or two positive integers.
    """
    if isinstance(size, (int, np.integer)):
        hw: tuple = (size, size)
    elif isinstance(size, Sequence) and not isinstance(size, str):
        hw = tuple(size)
    else:
        hw = ()
    if len(hw) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in hw):
        raise ValueError(f"image size must be a positive int or (height, width); got {size!r}")
    return int(hw[0]), int(hw[1])


def letterbox_geometry(orig_shape: Sequence[int], size: int | Sequence[int]) -> Letterbox:
    """Letterbox geometry of an image of ``orig_shape`` (h, w, ...) for a network input ``size``.

    Mirrors ``LetterBox.get_params`` with ``auto=False, scale_fill=False, scaleup=True, center=True``.
    """
    h, w = int(orig_shape[0]), int(orig_shape[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"image must have a positive height and width; got shape {tuple(orig_shape)}")
    H, W = input_hw(size)
    r = min(H / h, W / w)
    new_unpad = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (W - new_unpad[0]) / 2, (H - new_unpad[1]) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    return Letterbox((h, w), (H, W), new_unpad, top, bottom, left, right)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """A 3-channel uint8 BGR view or copy of a BGR, BGRA or grayscale uint8 image.

    Raises:
        ValueError: If the image is not a uint8 array of shape (h, w), (h, w, 1), (h, w, 3) or (h, w, 4).
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError(
            f"images must be uint8 numpy arrays (as cv2.imread returns); got "
            f"{type(image).__name__} {getattr(image, 'dtype', '')}"
        )
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"images must be (h, w), (h, w, 1), (h, w, 3) or (h, w, 4); got shape {image.shape}")


def letterbox_image(image: np.ndarray, size: int | Sequence[int]) -> tuple[np.ndarray, Letterbox]:
    """Letterboxed uint8 BGR image, made exactly as Ultralytics' ``LetterBox`` makes it (resize, copyMakeBorder)."""
    image = as_bgr(image)
    lb = letterbox_geometry(image.shape, size)
    if (image.shape[1], image.shape[0]) != lb.new_unpad:
        image = cv2.resize(image, lb.new_unpad, interpolation=cv2.INTER_LINEAR)
    padded = cv2.copyMakeBorder(
        image, lb.top, lb.bottom, lb.left, lb.right, cv2.BORDER_CONSTANT, value=(PAD_VALUE,) * 3
    )
    return padded, lb


def tensor_from_letterboxed(images: Sequence[np.ndarray], dtype: np.dtype | type = np.float32) -> np.ndarray:
    """Reference conversion of letterboxed BGR uint8 images to an ``(N, 3, H, W)`` RGB tensor in [0, 1]."""
    batch = np.stack([np.ascontiguousarray(im[..., ::-1].transpose(2, 0, 1)) for im in images])
    return (batch.astype(np.float32) / np.float32(255)).astype(dtype)


class Preprocessor:
    """Letterbox a batch of BGR images into a reused ``(N, 3, H, W)`` input tensor.

    The returned tensor is a view of an internal buffer: it is overwritten by the next call.

    Args:
        size: Network input size, an int (square) or ``(height, width)``.
        batch: Largest batch this preprocessor fills.
        dtype: Input tensor dtype (float32, or float16 for an FP16 model input).
    """

    def __init__(self, size: int | Sequence[int], batch: int = 1, dtype: np.dtype | type = np.float32):
        if batch < 1:
            raise ValueError(f"batch must be >= 1; got {batch}")
        self.input_shape = input_hw(size)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float16)):
            raise ValueError(f"dtype must be float32 or float16; got {self.dtype}")
        self._buffer = np.empty((batch, 3, *self.input_shape), dtype=self.dtype)
        self._slots: list[tuple[tuple[int, ...], Letterbox, tuple[np.ndarray, ...]] | None] = [None] * batch
        self._resized: np.ndarray | None = None

    @property
    def batch(self) -> int:
        """Largest batch this preprocessor fills."""
        return self._buffer.shape[0]

    def __call__(self, images: np.ndarray | Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """Letterbox ``images`` (one BGR image or a sequence of them) into the input tensor.

        Returns:
            The ``(n, 3, H, W)`` input tensor (a view of the reused buffer) and the geometry of each image.

        Raises:
            ValueError: If there are more images than ``batch`` or an image is not uint8 BGR.
        """
        if isinstance(images, np.ndarray) and images.ndim in (2, 3):
            images = [images]
        n = len(images)
        if not 1 <= n <= self.batch:
            raise ValueError(f"got {n} images for a preprocessor of batch {self.batch}; pass 1 to {self.batch}")
        geometry = [self._fill(slot, image) for slot, image in enumerate(images)]
        return self._buffer[:n], geometry

    def _fill(self, slot: int, image: np.ndarray) -> Letterbox:
        image = as_bgr(image)
        cached = self._slots[slot]
        if cached is None or cached[0] != image.shape:
            cached = self._layout(slot, image.shape)
        _, lb, planes_rgb = cached
        if (image.shape[1], image.shape[0]) != lb.new_unpad:
            w, h = lb.new_unpad
            if self._resized is None or self._resized.shape[:2] != (h, w):
                self._resized = np.empty((h, w, 3), dtype=np.uint8)
            image = cv2.resize(image, lb.new_unpad, dst=self._resized, interpolation=cv2.INTER_LINEAR)
        for plane, out in zip(cv2.split(image), planes_rgb):
            np.divide(plane, 255, out=out, dtype=self.dtype)
        return lb

    def _layout(self, slot: int, shape: tuple[int, ...]) -> tuple[tuple[int, ...], Letterbox, tuple[np.ndarray, ...]]:
        """Geometry for a new image size: pad the slot and cache the views its B, G, R planes go to."""
        lb = letterbox_geometry(shape, self.input_shape)
        planes = self._buffer[slot]
        fill = np.divide(np.uint8(PAD_VALUE), 255, dtype=self.dtype)
        H, W = self.input_shape
        planes[:, : lb.top] = fill
        planes[:, H - lb.bottom :] = fill
        planes[:, :, : lb.left] = fill
        planes[:, :, W - lb.right :] = fill
        w, h = lb.new_unpad
        rows, cols = slice(lb.top, lb.top + h), slice(lb.left, lb.left + w)
        views = tuple(planes[2 - c, rows, cols] for c in range(3))  # BGR channel c -> RGB plane 2 - c
        self._slots[slot] = (shape, lb, views)
        return self._slots[slot]
