"""The paper metric of the verify stage's patch-level predictions (fixed predictions, AP worked out by hand)."""

from __future__ import annotations

import numpy as np
import pytest

from admd_deploy.evaluation.patches import paper_metric
from admd_deploy.pipeline.scoring import Sample


def test_oriented_predictions_get_voc07_ap_at_polygon_iou_with_the_dota_protocol_label():
    gt = np.array([[50, 50, 20, 10, 0.0], [100, 100, 20, 10, 0.5]])
    crossed = [100, 100, 10, 20, 0.5]  # the second object turned 90 degrees: polygon IoU 1/3, a false positive
    sample = Sample(np.array([0, 0]), gt, np.array([0, 0, 0]), np.array([0.9, 0.8, 0.7]),
                    np.array([gt[0], crossed, gt[1]]))
    paper = paper_metric([sample], "obb", {0: "ship", 1: "plane"})
    # TP, FP, TP: precision 1 up to recall 0.5 (6 of the 11 points), then 2/3 (5 points)
    assert paper["per_class"]["ship"]["ap"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert paper["per_class"]["plane"] == {"ap": 0.0, "npos": 0, "ndet": 0}
    assert paper["map50"] == pytest.approx((6 + 5 * 2 / 3) / 22)  # every class counts, as in DOTA_devkit
    assert paper["map50_present"] == pytest.approx((6 + 5 * 2 / 3) / 11)
    assert (paper["protocol"], paper["ap_kind"], paper["iou"], paper["iou_kind"], paper["level"]) == (
        "dota", "voc07", 0.5, "polygon", "patch")
    assert "DOTA" in paper["description"] and "patch level" in paper["description"]


def test_axis_aligned_predictions_use_box_iou_strictly_above_one_half():
    sample = Sample(np.array([0]), np.array([[0.0, 0, 10, 10]]), np.array([0, 0]), np.array([0.9, 0.8]),
                    np.array([[0.0, 0, 10, 5], [0.0, 0, 10, 6]]))  # IoU 0.5 (not a match), then 0.6 (a match)
    paper = paper_metric([sample], "detect", {0: "vehicle"})
    assert paper["map50"] == pytest.approx(0.5)  # precision 1/2 at recall 1, on all 11 points
    assert (paper["protocol"], paper["iou_kind"]) == ("dior", "box")


def test_an_image_without_predictions_or_objects_counts_its_misses_and_false_positives():
    empty_gt = Sample(np.zeros(0, np.int64), np.zeros((0, 4)), np.array([0]), np.array([0.95]),
                      np.array([[0.0, 0, 10, 10]]))
    missed = Sample(np.array([0]), np.array([[0.0, 0, 10, 10]]), np.zeros(0, np.int64), np.zeros(0), np.zeros((0, 4)))
    paper = paper_metric([empty_gt, missed], "detect", {0: "vehicle"})
    assert paper["per_class"]["vehicle"] == {"ap": 0.0, "npos": 1, "ndet": 1}


def test_the_report_shows_the_paper_metric_of_each_export_next_to_a_label_of_both_protocols():
    from admd_deploy.evaluation.patches import describe
    from admd_deploy.pipeline.report import paper_section

    paper = {"protocol": "dota", "ap_kind": "voc07", "iou": 0.5, "iou_kind": "polygon", "level": "patch",
             "description": describe("obb"), "map50": 0.4321, "map50_present": 0.5, "per_class": {}}
    report = {"exports": {"onnx": {"map50": 0.6, "paper": paper}, "engine": {"skipped": "no GPU"}}}
    text = "\n".join(paper_section(report))
    assert "| exported onnx | 43.2 | 50.0 | dota: voc07 AP, polygon IoU 0.5, patch level |" in text
    assert "Ultralytics' metric (101-point AP" in text and "VOC07 11-point AP at polygon IoU 0.5" in text
    assert "engine" not in text.split("## Paper metric")[1].split("|", 1)[1]
    assert paper_section({"exports": {"onnx": {"map50": 0.6}}}) == []  # a report from before the paper metric
