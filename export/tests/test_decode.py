"""Decoding real exported models end to end must equal Ultralytics' own ``YOLO(onnx).predict``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from admd_edge import load_model
from admd_edge.metadata import ModelInfo
from admd_edge.postprocess import decode, end2end_rows, regularize_rboxes, xywhr_to_corners
from admd_edge.preprocess import letterbox_geometry

TOL = 1e-3  # pixels: both sides run the same ONNX in float32


def ultralytics_predict(onnx: Path, image: np.ndarray, task: str, **kwargs: object):
    from ultralytics import YOLO

    return YOLO(str(onnx), task=task).predict(image, imgsz=64, verbose=False, **kwargs)[0]


@pytest.mark.parametrize("conf, iou", [(0.25, 0.7), (0.5, 0.3)])
def test_detect_end_to_end_equals_ultralytics_predict(detect_onnx: Path, bus_image: np.ndarray, conf, iou) -> None:
    ours = load_model(detect_onnx, conf=conf, iou=iou).predict(bus_image)
    ref = ultralytics_predict(detect_onnx, bus_image, "detect", conf=conf, iou=iou).boxes
    assert len(ours) == len(ref) and len(ours) > 1
    assert np.allclose(ours.boxes, ref.xyxy.numpy(), atol=TOL)
    assert np.allclose(ours.scores, ref.conf.numpy(), atol=1e-6)
    assert np.array_equal(ours.class_ids, ref.cls.numpy().astype(int))


@pytest.mark.parametrize("conf, iou", [(0.25, 0.7), (0.5, 0.3)])
def test_obb_end_to_end_equals_ultralytics_predict(obb_onnx: Path, bus_image: np.ndarray, conf, iou) -> None:
    ours = load_model(obb_onnx, conf=conf, iou=iou).predict(bus_image)
    ref = ultralytics_predict(obb_onnx, bus_image, "obb", conf=conf, iou=iou).obb
    assert len(ours) == len(ref) and len(ours) > 1
    assert np.allclose(ours.xywhr, ref.xywhr.numpy(), atol=TOL)
    assert np.allclose(ours.corners, ref.xyxyxyxy.numpy(), atol=TOL)
    assert np.allclose(ours.boxes, ref.xyxy.numpy(), atol=TOL)
    assert np.allclose(ours.scores, ref.conf.numpy(), atol=1e-6)
    assert np.array_equal(ours.class_ids, ref.cls.numpy().astype(int))


def test_model_facts_come_from_the_onnx_metadata(detect_onnx: Path, obb_onnx: Path) -> None:
    detect, obb = load_model(detect_onnx), load_model(obb_onnx)
    assert (detect.task, obb.task) == ("detect", "obb")
    assert detect.imgsz == (64, 64) and detect.info.imgsz == (64, 64) and detect.info.stride == 32
    assert len(detect.names) == 80 and detect.names[0] == "0"
    assert len(obb.names) == 80


def test_batched_prediction_equals_one_by_one(detect_onnx: Path, bus_image: np.ndarray) -> None:
    model = load_model(detect_onnx, conf=0.25)
    crops = [bus_image, bus_image[:500, :300], bus_image[200:, 100:]]
    together = model.predict(crops)
    for image, result in zip(crops, together):
        alone = model.predict(image)
        assert np.array_equal(alone.boxes, result.boxes) and np.array_equal(alone.class_ids, result.class_ids)


def test_detections_serialise_with_class_names(obb_onnx: Path, bus_image: np.ndarray) -> None:
    result = load_model(obb_onnx).predict(bus_image)
    payload = json.loads(result.to_json())
    assert payload["task"] == "obb" and payload["image"] == {"height": 1080, "width": 810}
    first = payload["detections"][0]
    assert set(first) == {"class_id", "name", "score", "box", "xywhr", "corners"}
    assert first["name"] == result.names[first["class_id"]] and len(first["corners"]) == 4


def test_end_to_end_outputs_are_filtered_and_scaled() -> None:
    info = ModelInfo(task="detect", names={0: "car", 1: "truck"}, end2end=True)
    rows = np.array([[[10, 20, 30, 40, 0.9, 1], [0, 0, 5, 5, 0.1, 0], [1, 1, 2, 2, 0.5, 0]]], np.float32)
    lb = letterbox_geometry((32, 64), 64)  # scaled 1x, 16 px of padding on top
    (result,) = decode(rows, [lb], info, conf=0.25)
    assert result.class_ids.tolist() == [1, 0]
    assert np.allclose(result.boxes[0], [10, 4, 30, 24])
    assert len(end2end_rows(rows[0], 0.25, max_det=1)) == 1


def test_corners_follow_ultralytics_order_and_regularisation_swaps_sides() -> None:
    import torch
    from ultralytics.utils.ops import regularize_rboxes as ref_regularize
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    rng = np.random.default_rng(0)
    xywhr = np.column_stack([rng.uniform(0, 99, (50, 4)), rng.uniform(-3, 3, 50)]).astype(np.float32)
    assert np.allclose(xywhr_to_corners(xywhr), xywhr2xyxyxyxy(xywhr), atol=1e-4)
    assert np.allclose(regularize_rboxes(xywhr), ref_regularize(torch.from_numpy(xywhr)).numpy(), atol=1e-5)


def test_an_output_that_does_not_fit_the_classes_is_refused() -> None:
    info = ModelInfo(task="detect", names={0: "a", 1: "b"})
    with pytest.raises(ValueError, match=r"\(N, 6, anchors\)"):
        decode(np.zeros((1, 7, 10), np.float32), [letterbox_geometry((64, 64), 64)], info)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"conf": 1.5}, "conf"), ({"iou": -0.1}, "iou"), ({"max_det": 0}, "max_det")],
)
def test_bad_thresholds_are_refused_with_the_valid_range(detect_onnx: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        load_model(detect_onnx, **kwargs)


def test_imgsz_that_contradicts_a_fixed_input_is_refused(detect_onnx: Path) -> None:
    with pytest.raises(ValueError, match="fixed at 64x64"):
        load_model(detect_onnx, imgsz=128)
