"""Sliced inference on large frames: tiles through one session, shifted back, merged rotation-aware.

A 4000 px drone frame letterboxed into a 256-1024 px input shrinks 10-50 px objects below what a nano
detector sees. :func:`predict_sliced` cuts the frame into model-sized tiles instead:

- **Windows** (:func:`tile_windows`): ``tile`` px, neighbours overlapping by ``overlap`` px, the last window
  of a row/column flush with the border (no partial strip); a side shorter than a tile is one window of that
  side (the model letterboxes it as usual).
- **Batches**: a dynamic-batch model gets ``batch`` tiles per call (one reused input buffer); a fixed-batch
  model its own batch size. Tiles are cropped as views and only detections are kept, so memory is bounded by
  one batch plus the frame, whatever the frame size.
- **Whole-frame pass** (``full_frame=True``): the letterboxed frame as one more input, for objects larger
  than a tile.
- **Merge** (:func:`merge_detections`), class by class:

  1. a detection touching an *inner* tile border (a tile edge that is not the frame's edge) is a cut object
     when a detection of the same class that touches no inner border covers most of it (intersection over
     the cut box's area above ``cover``): the cut one is dropped, the complete one kept, whatever their scores;
  2. the rest go through NMS: rotated boxes by ProbIoU (:func:`admd_edge.nms.rotated_nms`), axis-aligned ones
     by IoU, complete boxes ranked above cut ones, so a duplicate pair keeps the complete box.

  ``merge="axis"`` instead runs plain NMS on the boxes' axis-aligned hulls and nothing else: what SAHI does
  with oriented boxes, kept for comparison (thin crossing objects suppress each other there).

The result is an ordinary :class:`~admd_edge.postprocess.Detections` of the whole frame (drawing and JSON
work unchanged), by descending score and not capped at ``max_det`` (which applies per tile).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from admd_edge.nms import nms, rotated_nms, sweep_pairs
from admd_edge.postprocess import MAX_WH, Detections, decode, empty_detections
from admd_edge.preprocess import Preprocessor, as_bgr, input_hw

LOGGER = logging.getLogger(__name__)

MERGES = ("rotated", "axis")
BORDER_MARGIN = 2.0  # px: a box this close to an inner tile edge touches it
COVER = 0.6  # a cut box mostly inside a complete one (intersection / cut area above this) is its fragment
AUTO_FACTOR = 2.0  # "auto" slices when a side of the frame exceeds this many input sides


@dataclass(frozen=True)
class SliceConfig:
    """How to slice a frame.

    Attributes:
        tile: Tile ``(height, width)`` in frame pixels, or one int for square tiles.
        overlap: Pixels shared by neighbouring tiles (should exceed the largest object for clean merges);
            None: a fifth of the tile's shorter side (SAHI's default ratio 0.2).
        full_frame: Also run the letterboxed whole frame (for objects larger than a tile).
        merge: ``"rotated"`` (ours) or ``"axis"`` (axis-aligned hull NMS, as SAHI merges oriented boxes).
        iou: NMS threshold of the merge (ProbIoU for rotated boxes).
        batch: Tiles per inference call for a dynamic-batch model (a fixed-batch model uses its own).
    """

    tile: int | tuple[int, int]
    overlap: int | None = None
    full_frame: bool = False
    merge: str = "rotated"
    iou: float = 0.5
    batch: int = 8

    def __post_init__(self) -> None:
        th, tw = input_hw(self.tile)
        if self.overlap is None:
            object.__setattr__(self, "overlap", default_overlap(self.tile))
        if not 0 <= int(self.overlap) < min(th, tw):
            raise ValueError(f"overlap must be in [0, tile); got overlap {self.overlap} for tile {th}x{tw} "
                             f"(e.g. --overlap {min(th, tw) // 4})")
        if self.merge not in MERGES:
            raise ValueError(f"merge must be one of {', '.join(MERGES)}; got {self.merge!r}")
        if not 0.0 <= self.iou <= 1.0:
            raise ValueError(f"merge iou must be in [0, 1]; got {self.iou}")
        if int(self.batch) < 1:
            raise ValueError(f"batch must be >= 1; got {self.batch}")


def default_overlap(tile: int | Sequence[int]) -> int:
    """A fifth of the tile's shorter side, in pixels."""
    return min(input_hw(tile)) // 5


def _starts(size: int, tile: int, stride: int) -> list[int]:
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] + tile < size:
        starts.append(size - tile)  # the last window flush with the border
    return starts


def tile_windows(height: int, width: int, tile: int | Sequence[int], overlap: int) -> np.ndarray:
    """Windows ``(n, 4)`` ``x0, y0, x1, y1`` covering a ``height x width`` frame, row by row.

    Raises:
        ValueError: A frame without pixels, or an overlap not in ``[0, tile)``.
    """
    th, tw = input_hw(tile)
    if height < 1 or width < 1:
        raise ValueError(f"frame must have pixels; got {height}x{width}")
    if not 0 <= overlap < min(th, tw):
        raise ValueError(f"overlap must be in [0, tile); got overlap {overlap} for tile {th}x{tw}")
    xs, ys = _starts(width, tw, tw - overlap), _starts(height, th, th - overlap)
    return np.array([(x, y, min(x + tw, width), min(y + th, height)) for y in ys for x in xs], dtype=np.int64)


def should_slice(image_shape: Sequence[int], input_shape: Sequence[int], factor: float = AUTO_FACTOR) -> bool:
    """``--slice auto``'s rule: a frame side more than ``factor`` times the model input's side."""
    return image_shape[0] > factor * input_shape[0] or image_shape[1] > factor * input_shape[1]


def _shift(d: Detections, x0: int, y0: int, frame: tuple[int, int]) -> Detections:
    if not len(d):
        return d
    off = np.array([x0, y0], dtype=np.float32)
    boxes = d.boxes + np.concatenate([off, off])
    if d.xywhr is None:
        return Detections(d.task, boxes, d.scores, d.class_ids, d.names, frame)
    xywhr = d.xywhr.copy()
    xywhr[:, :2] += off
    return Detections(d.task, boxes, d.scores, d.class_ids, d.names, frame, xywhr, d.corners + off)


def concat(parts: Sequence[Detections], task: str, names: dict[int, str], frame: tuple[int, int]) -> Detections:
    """One :class:`Detections` holding every detection of ``parts`` (in the frame ``frame``)."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty_detections(task, names, frame)
    cat = lambda attr: np.concatenate([getattr(p, attr) for p in parts])  # noqa: E731
    if task == "obb":
        return Detections(task, cat("boxes"), cat("scores"), cat("class_ids"), names, frame, cat("xywhr"),
                          cat("corners"))
    return Detections(task, cat("boxes"), cat("scores"), cat("class_ids"), names, frame)


def _select(d: Detections, idx: np.ndarray) -> Detections:
    rot = (d.xywhr[idx], d.corners[idx]) if d.xywhr is not None else (None, None)
    return Detections(d.task, d.boxes[idx], d.scores[idx], d.class_ids[idx], d.names, d.image_shape, *rot)


def inner_border_touch(boxes: np.ndarray, windows: np.ndarray, frame: tuple[int, int],
                       margin: float = BORDER_MARGIN) -> np.ndarray:
    """Whether each box (xyxy, frame pixels) touches an inner edge of its own tile ``windows`` (n, 4)."""
    h, w = frame
    x0, y0, x1, y1 = (windows[:, k].astype(np.float64) for k in range(4))
    return (((boxes[:, 0] <= x0 + margin) & (x0 > 0)) | ((boxes[:, 1] <= y0 + margin) & (y0 > 0))
            | ((boxes[:, 2] >= x1 - margin) & (x1 < w)) | ((boxes[:, 3] >= y1 - margin) & (y1 < h)))


def _polygons(d: Detections) -> np.ndarray:
    if d.corners is not None:
        return d.corners
    b = d.boxes
    return np.stack([b[:, [0, 1]], b[:, [2, 1]], b[:, [2, 3]], b[:, [0, 3]]], axis=1)


def _fragments(d: Detections, cut: np.ndarray, cover: float) -> np.ndarray:
    """Cut detections mostly covered by a complete detection of the same class (to drop).

    Candidate pairs come from the sort-and-sweep of :func:`admd_edge.nms.sweep_pairs` over x-extents (classes
    shifted apart), so a dense frame costs no N x N work; OpenCV intersects only the pairs whose boxes meet.
    """
    drop = np.zeros(len(d), dtype=bool)
    if cut.all() or not cut.any():
        return drop
    b = d.boxes.astype(np.float64)
    span = float(b[:, 2].max() - min(float(b[:, 0].min()), 0.0)) + 1.0
    shift = d.class_ids.astype(np.float64) * span
    a, c = sweep_pairs(b[:, 0] + shift, b[:, 2] + shift)
    mixed = cut[a] != cut[c]
    a, c = a[mixed], c[mixed]
    frag, whole = np.where(cut[a], a, c), np.where(cut[a], c, a)
    meet = (b[whole, 1] < b[frag, 3]) & (b[whole, 3] > b[frag, 1])
    polys = _polygons(d).astype(np.float32)
    areas: dict[int, float] = {}
    for i, j in zip(frag[meet].tolist(), whole[meet].tolist()):
        if drop[i]:
            continue
        area = areas.setdefault(i, float(cv2.contourArea(polys[i])))
        inter, _ = cv2.intersectConvexConvex(polys[i], polys[j])
        drop[i] = area > 0 and float(inter) / area > cover
    return drop


def merge_detections(d: Detections, cut: np.ndarray, *, merge: str = "rotated", iou: float = 0.5,
                     cover: float = COVER) -> Detections:
    """Merge detections of overlapping tiles (see the module notes); ``cut``: touches an inner tile border."""
    if not len(d):
        return d
    offset = d.class_ids.astype(np.float32) * MAX_WH  # class-wise NMS in one call, as in decode
    if merge == "axis":
        keep = nms(d.boxes + offset[:, None], d.scores, iou)
        return _select(d, keep)
    alive = np.flatnonzero(~_fragments(d, cut, cover))
    rank = d.scores[alive] + (~cut[alive]).astype(np.float32) * 2.0  # complete boxes outrank cut ones
    if d.xywhr is not None:
        xywhr = d.xywhr[alive].copy()
        xywhr[:, :2] += offset[alive, None]
        keep = alive[rotated_nms(xywhr, rank, iou)]
    else:
        keep = alive[nms(d.boxes[alive] + offset[alive, None], rank, iou)]
    return _select(d, keep[np.argsort(-d.scores[keep], kind="stable")])


def predict_tiles(model, image: np.ndarray, windows: np.ndarray, batch: int = 8,
                  progress: Callable[[int, int], None] | None = None) -> tuple[Detections, np.ndarray]:
    """Detections of every window of a frame, in frame pixels, unmerged, and the window index of each.

    Tiles are cropped as views and run ``batch`` at a time (a fixed-batch model: its own batch, the last one
    padded by repeating a tile); only detections are kept between batches.
    """
    frame = (int(image.shape[0]), int(image.shape[1]))
    fixed = model.runner.input_shape[0] if model.runner.input_shape else None
    size = int(fixed) if fixed else max(1, int(batch))
    pre = model.preprocessor if size <= model.preprocessor.batch else Preprocessor(
        model.imgsz, batch=size, dtype=model.runner.input_dtype)
    parts, owners = [], []
    for start in range(0, len(windows), size):
        chunk = windows[start : start + size]
        tensor, geometry = pre([image[y0:y1, x0:x1] for x0, y0, x1, y1 in chunk])
        if fixed and len(chunk) < fixed:
            tensor = np.concatenate([tensor, np.repeat(tensor[-1:], fixed - len(chunk), axis=0)])
        found = decode(model.runner.run(tensor)[0], geometry, model.info, model.conf, model.iou, model.max_det)
        for k, (x0, y0, _, _) in enumerate(chunk):
            parts.append(_shift(found[k], int(x0), int(y0), frame))
            owners.append(np.full(len(found[k]), start + k, dtype=np.int64))
        if progress is not None:
            progress(min(start + size, len(windows)), len(windows))
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    return concat(parts, model.task, model.names, frame), owner


def predict_sliced(model, image: np.ndarray, tile: int | Sequence[int] | None = None, overlap: int | None = None, *,
                   full_frame: bool = False, merge: str = "rotated", iou: float = 0.5, batch: int = 8,
                   progress: Callable[[int, int], None] | None = None) -> Detections:
    """Detections of a large frame predicted tile by tile and merged (see the module notes).

    Args:
        model: An :class:`~admd_edge.model.EdgeModel` (its conf, iou and max_det apply per tile).
        image: BGR, BGRA or grayscale uint8 frame.
        tile: Tile size in frame pixels; None: the model's input size.
        overlap: Pixels shared by neighbouring tiles; None: a fifth of the tile.
        full_frame: Also run the letterboxed whole frame.
        merge: ``"rotated"`` or ``"axis"``.
        iou: Merge NMS threshold.
        batch: Tiles per call for a dynamic-batch model.
        progress: Called as ``progress(tiles_done, tiles_total)`` after each batch.

    Raises:
        ValueError: A bad tile, overlap, merge or image.
    """
    config = SliceConfig(tile if tile is not None else model.imgsz, overlap, full_frame, merge, iou, batch)
    image = as_bgr(image)
    frame = (int(image.shape[0]), int(image.shape[1]))
    windows = tile_windows(*frame, config.tile, config.overlap)
    tiles, owner = predict_tiles(model, image, windows, config.batch, progress)
    cut = inner_border_touch(tiles.boxes, windows[owner], frame)
    if full_frame:
        whole = model.predict(image)
        tiles = concat([tiles, whole], model.task, model.names, frame)
        cut = np.concatenate([cut, np.zeros(len(whole), dtype=bool)])
    LOGGER.info("sliced %dx%d into %d tiles: %d detections before the merge", frame[1], frame[0], len(windows),
                len(tiles))
    return merge_detections(tiles, cut, merge=config.merge, iou=config.iou)


__all__ = ["SliceConfig", "concat", "default_overlap", "inner_border_touch", "merge_detections", "predict_sliced",
           "predict_tiles", "should_slice", "tile_windows"]
