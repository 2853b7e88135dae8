"""Sliced inference: tile windows, shifting into frame pixels, batching, and the rotation-aware merge."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from admd_edge.model import EdgeModel
from admd_edge.postprocess import Detections, xywhr_to_corners
from admd_edge.slicing import (
    SliceConfig,
    inner_border_touch,
    merge_detections,
    predict_sliced,
    predict_tiles,
    should_slice,
    tile_windows,
)

NAMES = {0: "ship", 1: "car"}


class ContourRunner:
    """An end-to-end OBB 'model' that finds white blobs in its input: a perfect detector with known answers.

    Each blob becomes one row ``x, y, w, h, conf, cls, angle`` (its minimum-area rectangle); a blob cut by the
    tile border becomes a truncated box, as a real detector's would. ``calls`` records each batch's size.
    """

    def __init__(self, size: int = 64, batch: int | None = None):
        self.input_name = "images"
        self.input_shape = (batch, 3, size, size)
        self.input_dtype = np.dtype(np.float32)
        self.metadata = {"names": str(NAMES), "task": "obb", "imgsz": str([size, size]), "end2end": "True"}
        self.calls: list[int] = []

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        self.calls.append(len(batch))
        out = np.zeros((len(batch), 50, 7), dtype=np.float32)
        for n, planes in enumerate(batch):
            mask = (planes.min(0) > 0.9).astype(np.uint8)
            contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
            for k, c in enumerate(contours[:50]):
                (x, y), (w, h), a = cv2.minAreaRect(c)
                out[n, k] = (x, y, w + 1, h + 1, 0.9 - 0.001 * k, 0, math.radians(a))
        return [out]


def blob_model(size: int = 64, batch: int | None = None) -> EdgeModel:
    return EdgeModel(ContourRunner(size, batch), conf=0.25, batch=batch or 1)


def test_windows_overlap_by_the_given_pixels_and_the_last_one_is_flush_with_the_border():
    w = tile_windows(100, 150, 64, 16)
    xs, ys = sorted({int(v) for v in w[:, 0]}), sorted({int(v) for v in w[:, 1]})
    assert xs == [0, 48, 86] and ys == [0, 36]  # stride 48; last starts at 150 - 64 and 100 - 64
    assert (w[:, 2] - w[:, 0] == 64).all() and (w[:, 3] - w[:, 1] == 64).all()
    assert w[:, 2].max() == 150 and w[:, 3].max() == 100


def test_a_frame_smaller_than_a_tile_is_one_window_of_the_frame_itself():
    assert tile_windows(40, 30, 64, 16).tolist() == [[0, 0, 30, 40]]
    assert tile_windows(40, 200, 64, 0)[:, 1].tolist() == [0, 0, 0, 0]  # 0, 64, 128, 136


def test_an_overlap_as_large_as_the_tile_is_refused_naming_the_fix():
    with pytest.raises(ValueError, match="overlap must be in \\[0, tile\\)"):
        SliceConfig(64, overlap=64)
    with pytest.raises(ValueError, match="merge must be one of rotated, axis"):
        SliceConfig(64, overlap=8, merge="sahi")


def test_auto_slices_only_frames_more_than_twice_the_input():
    assert should_slice((4000, 3000), (640, 640))
    assert not should_slice((1280, 1280), (640, 640))
    assert should_slice((100, 1281), (640, 640))


def frame_with_blobs(h: int, w: int, blobs: list[tuple[float, float, float, float, float]]) -> np.ndarray:
    image = np.zeros((h, w, 3), dtype=np.uint8)
    for cx, cy, bw, bh, deg in blobs:
        pts = cv2.boxPoints(((cx, cy), (bw, bh), deg)).astype(np.int32)
        cv2.fillPoly(image, [pts], (255, 255, 255))
    return image


def test_tile_detections_are_shifted_into_frame_pixels_and_batched_by_the_dynamic_batch():
    image = frame_with_blobs(150, 200, [(100, 20, 20, 8, 30), (30, 120, 16, 10, 0), (170, 110, 12, 6, 60)])
    model = blob_model(64, batch=None)
    windows = tile_windows(150, 200, 64, 16)
    found, owner = predict_tiles(model, image, windows, batch=4)
    assert model.runner.calls == [4, 4, 4] and len(windows) == 12
    for i in range(len(found)):  # each box lies in its own window, in frame pixels
        x0, y0, x1, y1 = windows[owner[i]]
        cx, cy = found.xywhr[i, :2]
        assert x0 <= cx <= x1 and y0 <= cy <= y1
    whole = [(100, 20), (30, 120), (170, 110)]
    for cx, cy in whole:
        assert np.hypot(*(found.xywhr[:, :2] - (cx, cy)).T).min() < 1.5


def test_a_fixed_batch_model_gets_full_batches_and_the_padding_tile_adds_nothing():
    image = frame_with_blobs(100, 100, [(50, 50, 10, 6, 0)])
    model = blob_model(64, batch=2)
    windows = tile_windows(100, 100, 64, 0)  # starts 0, 36 -> 4 windows
    found, _ = predict_tiles(model, image, windows[:3])
    assert model.runner.calls == [2, 2] and len(found) == 3  # the blob is in windows 0, 1, 2 (not 3 padded)


def test_sliced_predict_finds_each_object_once_and_keeps_the_complete_box_of_an_object_cut_by_a_tile():
    # A 30x8 ship across the x = 64 edge of the first tile: tile 0 sees a truncated part, tile 1 (starts at 48)
    # sees it whole. The merge must keep the whole one, with its full length.
    blobs = [(60, 30, 30, 8, 0), (150, 100, 12, 6, 45), (30, 100, 20, 8, 90)]
    image = frame_with_blobs(140, 200, blobs)
    result = predict_sliced(blob_model(64), image, overlap=32)
    assert isinstance(result, Detections) and result.image_shape == (140, 200)
    assert len(result) == 3
    ship = int(np.argmin(np.hypot(*(result.xywhr[:, :2] - (60, 30)).T)))
    assert max(result.xywhr[ship, 2:4]) == pytest.approx(31, abs=1.5)
    assert np.all(np.diff(result.scores) <= 0)


def test_a_frame_smaller_than_the_tile_gives_what_the_plain_predict_gives():
    image = frame_with_blobs(40, 50, [(20, 20, 12, 6, 30)])
    model = blob_model(64)
    sliced, plain = predict_sliced(model, image), model.predict(image)
    assert np.allclose(sliced.xywhr, plain.xywhr) and np.allclose(sliced.scores, plain.scores)


def test_grayscale_and_4_channel_frames_are_sliced_like_bgr():
    image = frame_with_blobs(100, 140, [(70, 50, 20, 8, 20)])
    model = blob_model(64)
    base = predict_sliced(model, image, overlap=16)
    gray = predict_sliced(model, image[..., 0], overlap=16)
    bgra = predict_sliced(model, cv2.cvtColor(image, cv2.COLOR_BGR2BGRA), overlap=16)
    assert len(base) == 1 and np.allclose(gray.xywhr, base.xywhr) and np.allclose(bgra.xywhr, base.xywhr)


def obb(rows: list[tuple[float, float, float, float, float, float, int]]) -> Detections:
    a = np.array(rows, dtype=np.float32).reshape(-1, 7)
    xywhr = a[:, :5].copy()
    corners = xywhr_to_corners(xywhr)
    boxes = np.concatenate([corners.min(1), corners.max(1)], 1)
    return Detections("obb", boxes, a[:, 5].copy(), a[:, 6].astype(np.int64), NAMES, (500, 500), xywhr, corners)


def test_the_merge_keeps_the_complete_box_over_a_higher_scored_fragment_cut_by_a_tile_border():
    d = obb([(100, 50, 40, 10, 0.0, 0.95, 0),  # fragment, cut by the tile edge at x = 120
             (110, 50, 60, 10, 0.0, 0.80, 0)])  # the complete object from the next tile
    kept = merge_detections(d, np.array([True, False]))
    assert kept.scores.tolist() == pytest.approx([0.80])


def test_the_rotated_merge_keeps_thin_crossing_objects_that_the_axis_aligned_merge_suppresses():
    # Two 60x6 ships crossing at right angles rotated by 45 degrees: their hulls coincide (IoU 1), the boxes
    # themselves overlap little.
    d = obb([(100, 100, 60, 6, math.pi / 4, 0.9, 0), (100, 100, 60, 6, -math.pi / 4, 0.8, 0)])
    none_cut = np.zeros(2, dtype=bool)
    assert len(merge_detections(d, none_cut, merge="rotated", iou=0.5)) == 2
    assert len(merge_detections(d, none_cut, merge="axis", iou=0.5)) == 1


def test_duplicates_of_different_classes_are_not_merged():
    d = obb([(100, 100, 30, 10, 0.3, 0.9, 0), (100, 100, 30, 10, 0.3, 0.8, 1)])
    assert sorted(merge_detections(d, np.zeros(2, bool)).class_ids.tolist()) == [0, 1]


def test_a_box_touches_an_inner_border_but_not_the_frame_border():
    windows = np.array([[0, 0, 64, 64], [48, 0, 112, 64]])
    boxes = np.array([[50, 10, 63.5, 20], [0, 10, 10, 20], [100, 0, 112, 8], [48.5, 30, 60, 40]], dtype=np.float32)
    touch = inner_border_touch(boxes, windows[[0, 0, 1, 1]], (64, 112))
    assert touch.tolist() == [True, False, False, True]


def test_on_an_exported_obb_onnx_the_tiles_are_what_the_plain_predict_gives_on_each_crop_shifted(obb_onnx, bus_image):
    from admd_edge import load_model, predict_sliced as exported

    model = load_model(obb_onnx, conf=0.05)
    image = cv2.resize(bus_image, (150, 110))
    windows = tile_windows(110, 150, 64, 16)
    found, owner = predict_tiles(model, image, windows)
    for k, (x0, y0, x1, y1) in enumerate(windows):
        crop = model.predict(image[y0:y1, x0:x1])
        mine = found.xywhr[owner == k]
        assert len(mine) == len(crop)
        assert np.allclose(mine[:, :2], crop.xywhr[:, :2] + (x0, y0), atol=1e-3)
    merged = exported(model, image, overlap=16)
    assert merged.image_shape == (110, 150) and 0 < len(merged) <= len(found)


def test_a_fragment_is_dropped_only_for_a_complete_box_of_its_own_class_that_covers_it():
    d = obb([(100, 50, 40, 10, 0.0, 0.95, 0),  # cut, class 0
             (110, 50, 60, 10, 0.0, 0.80, 1),  # complete, class 1: does not absorb the class-0 fragment
             (300, 300, 20, 10, 0.0, 0.90, 0),  # cut, class 0, alone
             (310, 300, 60, 12, 0.0, 0.70, 0)])  # complete, class 0, covers it
    kept = merge_detections(d, np.array([True, False, True, False]))
    assert sorted(kept.scores.tolist()) == pytest.approx([0.70, 0.80, 0.95])
