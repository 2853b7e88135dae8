"""The exported models' mAP uses Ultralytics' own matching and AP code: check it on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from admd_deploy.pipeline.scoring import Sample, ground_truth, score

NAMES = {0: "a", 1: "b"}


def test_perfect_predictions_score_one_and_misses_lower_recall():
    gt = np.array([[10, 10, 50, 50], [60, 60, 90, 90]], dtype=float)
    perfect = Sample(np.array([0, 1]), gt, np.array([0, 1]), np.array([0.9, 0.8]), gt.copy())
    assert score([perfect], "detect", NAMES)["map50_95"] == pytest.approx(0.995, abs=1e-3)  # 101-point interpolation caps at 0.995
    half = Sample(np.array([0, 1]), gt, np.array([0]), np.array([0.9]), gt[:1].copy())
    m = score([half], "detect", NAMES)
    assert m["per_class_ap50_95"]["a"] == pytest.approx(0.995, abs=1e-3)  # 101-point interpolation caps at 0.995 and m["map50_95"] < 0.6


def test_a_box_shifted_to_iou_0_6_counts_at_0_5_but_not_at_0_75():
    gt = np.array([[0, 0, 100, 100]], dtype=float)
    shifted = np.array([[25, 0, 125, 100]], dtype=float)  # IoU = 75 / 125 = 0.6
    m = score([Sample(np.array([0]), gt, np.array([0]), np.array([0.9]), shifted)], "detect", NAMES)
    assert m["map50"] == pytest.approx(0.995, abs=1e-3)  # 101-point interpolation caps at 0.995
    assert m["map50_95"] == pytest.approx(0.3, abs=0.01)  # thresholds 0.50, 0.55, 0.60 of ten


def test_wrong_class_never_matches():
    gt = np.array([[0, 0, 10, 10]], dtype=float)
    m = score([Sample(np.array([0]), gt, np.array([1]), np.array([0.9]), gt.copy())], "detect", NAMES)
    assert m["map50"] == 0.0


def test_obb_labels_convert_to_pixel_xywhr_and_match_themselves(tmp_path):
    label = tmp_path / "x.txt"
    label.write_text("1 0.1 0.1 0.5 0.1 0.5 0.3 0.1 0.3\n")  # 40x20 px box in a 100x100 image
    cls, boxes = ground_truth(label, 100, 100, "obb")
    assert cls.tolist() == [1]
    assert sorted(boxes[0, 2:4].round(3).tolist()) == [20.0, 40.0] and boxes[0, :2].round(3).tolist() == [30.0, 20.0]
    m = score([Sample(cls, boxes, cls, np.array([0.5]), boxes.copy())], "obb", NAMES)
    assert m["map50_95"] == pytest.approx(0.995, abs=1e-3)  # 101-point interpolation caps at 0.995

