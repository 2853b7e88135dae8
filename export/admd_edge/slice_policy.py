"""When ``admd-edge predict`` slices a frame (``--slice auto|off|SIZE``), and what it says about it on stderr.

- ``off``: every frame is letterboxed whole (the behaviour before slicing existed).
- ``SIZE``: every frame is cut into ``SIZE`` px tiles (a frame smaller than a tile is one tile).
- ``auto`` (the default): tiles of the model's input size, only for frames with a side more than twice
  the input's (:func:`admd_edge.slicing.should_slice`); the first such frame gets one stderr line saying so
  and how to turn it off. Frames up to twice the input are letterboxed as before.

Frames of many tiles (:data:`PROGRESS_TILES` or more) report their progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

import numpy as np

from admd_edge.postprocess import Detections
from admd_edge.preprocess import input_hw
from admd_edge.slicing import SliceConfig, predict_sliced, should_slice, tile_windows

PROGRESS_TILES = 64


def parse_slice(text: str) -> str | int:
    """``--slice`` value: ``"auto"``, ``"off"`` or a tile size in pixels (>= 32)."""
    value = text.strip().lower()
    if value in ("auto", "off"):
        return value
    try:
        size = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be auto, off or a tile size in pixels (e.g. 640); got {text!r}"
                                         ) from None
    if size < 32:
        raise argparse.ArgumentTypeError(f"tile size must be >= 32 px; got {size}")
    return size


class FramePredictor:
    """Predict one frame, sliced or whole per the ``--slice`` mode (see the module notes).

    Args:
        model: The loaded :class:`~admd_edge.model.EdgeModel`.
        mode: ``"auto"``, ``"off"`` or a tile size.
        overlap: Tile overlap in pixels (None: a fifth of the tile).
        full_frame: Also run the whole frame when slicing.
        stream: Where the notices and progress go.

    Raises:
        ValueError: An overlap that does not fit the tile (checked here, before any frame is read).
    """

    def __init__(self, model: Any, mode: str | int = "auto", overlap: int | None = None, full_frame: bool = False,
                 stream: TextIO | None = None):
        self.model, self.mode, self.full_frame = model, mode, full_frame
        self.stream = stream if stream is not None else sys.stderr
        self.config = None if mode == "off" else SliceConfig(model.imgsz if mode == "auto" else int(mode), overlap,
                                                             full_frame)
        self._announced = False

    def tiles_for(self, shape: tuple[int, ...]) -> int:
        """Tiles a frame of ``shape`` is cut into (0: predicted whole)."""
        if self.config is None or (self.mode == "auto" and not should_slice(shape, self.model.imgsz)):
            return 0
        return len(tile_windows(int(shape[0]), int(shape[1]), self.config.tile, self.config.overlap))

    def __call__(self, image: np.ndarray, label: str = "image") -> Detections:
        n, config = self.tiles_for(image.shape), self.config
        if not n or config is None:
            return self.model.predict(image)
        if self.mode == "auto" and not self._announced:
            th, tw = input_hw(config.tile)
            print(f"{label}: {image.shape[1]}x{image.shape[0]} is more than twice the model input {tw}x{th}: "
                  f"predicting it in {n} tiles of {tw}x{th} px overlapping by {self.config.overlap} px "
                  f"(--slice off letterboxes the whole image instead)", file=self.stream, flush=True)
            self._announced = True
        progress = self._progress(label) if n >= PROGRESS_TILES else None
        return predict_sliced(self.model, image, config.tile, config.overlap, full_frame=self.full_frame,
                              merge=config.merge, iou=config.iou, batch=config.batch, progress=progress)

    def _progress(self, label: str) -> Any:
        from admd_edge.stream import Progress

        report = Progress(label, unit="tiles", stream=self.stream)

        def update(done: int, total: int) -> None:
            report.total = total
            report.update(done - report.done)
            if done == total:
                report.finish()

        return update
