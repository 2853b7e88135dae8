"""Multi-label decoding (Ultralytics' validator protocol) against hand-made outputs and Ultralytics' own NMS."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _sibling(name: str):
    """A module of this folder, loaded by path: works under the root's importlib import mode and export's own."""
    spec = importlib.util.spec_from_file_location(f"_admd_edge_tests_{name}", Path(__file__).with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_nms_tests = _sibling("test_nms")
raw_output, ultralytics_nms = _nms_tests.raw_output, _nms_tests.ultralytics_nms

from admd_edge.metadata import ModelInfo
from admd_edge.postprocess import decode, non_max_suppression
from admd_edge.preprocess import letterbox_geometry


def two_class_box(rotated: bool = False) -> np.ndarray:
    """One anchor whose box scores 0.6 for class 0 and 0.4 for class 2, one anchor below every threshold."""
    pred = np.zeros((4 + 3 + int(rotated), 2), np.float32)
    pred[:4, 0] = [32, 32, 20, 10]
    pred[:4, 1] = [10, 10, 4, 4]
    pred[4:7, 0] = [0.6, 0.0005, 0.4]
    pred[4:7, 1] = [0.0002, 0.0001, 0.0003]
    if rotated:
        pred[-1] = [0.3, 0.0]
    return pred


@pytest.mark.parametrize("task", ["detect", "obb"])
def test_a_box_above_conf_for_two_classes_is_two_detections_only_under_multi_label(task: str) -> None:
    pred = two_class_box(rotated=task == "obb")[None]
    info = ModelInfo(task=task, names={0: "car", 1: "bus", 2: "truck"})
    lb = letterbox_geometry((64, 64), 64)
    (multi,) = decode(pred, [lb], info, conf=0.001, multi_label=True)
    (single,) = decode(pred, [lb], info, conf=0.001)
    assert multi.class_ids.tolist() == [0, 2] and np.allclose(multi.scores, [0.6, 0.4])
    assert np.allclose(multi.boxes[0], multi.boxes[1])  # the same box, once per class
    assert single.class_ids.tolist() == [0] and np.allclose(single.scores, [0.6])


def test_multi_label_respects_the_class_filter_and_max_det() -> None:
    pred = two_class_box()
    assert non_max_suppression(pred, 0.001, 0.7, multi_label=True, classes=[2])[:, 5].tolist() == [2.0]
    assert len(non_max_suppression(pred, 0.001, 0.7, multi_label=True, max_det=1)) == 1


def test_multi_label_with_one_class_is_single_label_as_in_ultralytics() -> None:
    pred = two_class_box()[[0, 1, 2, 3, 4]]
    single = non_max_suppression(pred, 0.001, 0.7)
    assert np.array_equal(non_max_suppression(pred, 0.001, 0.7, multi_label=True), single)


@pytest.mark.parametrize("rotated", [False, True])
@pytest.mark.parametrize("seed, conf, iou", [(0, 0.001, 0.7), (1, 0.05, 0.45), (2, 0.25, 0.7)])
def test_multi_label_nms_agrees_with_ultralytics_multi_label(rotated: bool, seed: int, conf: float, iou: float) -> None:
    nc = 4
    pred = raw_output(seed + 50 * rotated, nc=nc, anchors=900, rotated=rotated)
    expected = ultralytics_nms(pred, conf, iou, rotated=rotated, nc=nc, multi_label=True, max_det=5000)
    single = ultralytics_nms(pred, conf, iou, rotated=rotated, nc=nc, max_det=5000)
    ours = non_max_suppression(pred, conf, iou, rotated=rotated, nc=nc, multi_label=True, max_det=5000)
    assert len(expected) > len(single)  # the case tests something: multi-label adds detections
    assert ours.shape == expected.shape
    assert np.allclose(ours, expected, atol=1e-4)


def test_multi_label_caps_candidates_at_max_nms_by_score_like_ultralytics() -> None:
    pred = raw_output(9, nc=3, anchors=600, rotated=False)
    expected = ultralytics_nms(pred, 0.01, 0.6, rotated=False, nc=0, multi_label=True, max_nms=200)
    ours = non_max_suppression(pred, 0.01, 0.6, multi_label=True, max_nms=200)
    assert ours.shape == expected.shape and np.allclose(ours, expected, atol=1e-4)
