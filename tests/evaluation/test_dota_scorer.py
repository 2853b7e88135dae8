"""The DOTA-protocol scorer against fixtures whose AP is worked out by hand in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from admd_deploy.evaluation.dota import (
    ImageDetections,
    ImageTruth,
    average_precision,
    evaluate,
    polygon_iou,
    polygon_nms,
    read_task1,
    write_task1,
)


def square(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float64)


NAMES = ("ship", "plane", "car")
G1, G2, G3 = square(0, 0, 10, 10), square(20, 0, 30, 10), square(0, 0, 10, 10)
TRUTHS = {
    "img1": ImageTruth(np.stack([G1, G2]), np.array([0, 0]), np.array([False, True])),  # G2 is difficult
    "img2": ImageTruth(np.stack([G3, square(40, 40, 50, 50)]), np.array([0, 2]), np.array([False, False])),
}


def detections(tie_tp_first: bool = False) -> dict[str, ImageDetections]:
    far, on_g3 = (square(50, 0, 60, 10), 0.7), (G3, 0.7)
    img2 = [on_g3, far] if tie_tp_first else [far, on_g3]
    return {
        "img1": ImageDetections(np.stack([G1, G2, G1 + 0.5, square(100, 100, 110, 110)]),
                                np.array([0.9, 0.8, 0.6, 0.95]), np.array([0, 0, 0, 1])),
        "img2": ImageDetections(np.stack([p for p, _ in img2]), np.array([s for _, s in img2]), np.array([0, 0])),
    }


def test_the_hand_worked_fixture_scores_28_over_33_with_voc07_and_ignores_the_difficult_match():
    # ship: npos 2 (G1, G3; G2 is difficult). Sorted: d1 .9 on G1 TP; d2 .8 on G2 difficult: neither;
    # d3 .7 far FP; d4 .7 on G3 TP (the tie keeps input order: d3 first); d5 .6 on G1 again FP (taken).
    # cum tp 1,1,1,2,2  cum fp 0,0,1,1,2 -> recall .5,.5,.5,1,1  precision 1,1,.5,2/3,.5
    # 11-point: t = 0..0.5 (6 points) max precision 1; t = 0.6..1 (5 points) 2/3 -> (6 + 10/3) / 11 = 28/33.
    scores = evaluate(detections(), TRUTHS, NAMES)
    ship = scores.classes["ship"]
    assert ship.npos == 2 and ship.ndet == 5
    assert ship.ap == pytest.approx(28 / 33, abs=1e-12)
    assert np.allclose(ship.precision, [1, 1, 0.5, 2 / 3, 0.5])
    assert np.allclose(ship.recall, [0.5, 0.5, 0.5, 1, 1])


def test_tied_confidences_follow_input_order_so_the_true_positive_first_gives_ap_1():
    # d4 (TP) before d3 (FP): cum tp 1,1,2,2,2 -> precision 1 up to recall 1 -> every one of the 11 points is 1.
    assert evaluate(detections(tie_tp_first=True), TRUTHS, NAMES).classes["ship"].ap == pytest.approx(1.0)


def test_area_ap_is_the_area_under_the_precision_envelope():
    # envelope: precision 1 on recall (0, .5], 2/3 on (.5, 1] -> .5 + .5 * 2/3 = 5/6.
    scores = evaluate(detections(), TRUTHS, NAMES, ap_kind="area")
    assert scores.classes["ship"].ap == pytest.approx(5 / 6)
    assert scores.ap_kind == "area"


def test_an_empty_class_scores_0_and_counts_in_the_devkit_mean_but_not_in_map_present():
    # plane: one detection, no ground truth (npos 0) -> AP 0. car: one object, no detection -> AP 0.
    scores = evaluate(detections(), TRUTHS, NAMES)
    assert scores.classes["plane"].npos == 0 and scores.classes["plane"].ndet == 1 and scores.classes["plane"].ap == 0
    assert scores.classes["car"].npos == 1 and scores.classes["car"].ndet == 0 and scores.classes["car"].ap == 0
    assert scores.map == pytest.approx((28 / 33) / 3)
    assert scores.map_present == pytest.approx((28 / 33) / 2)


def test_iou_of_exactly_one_half_is_not_a_match_because_the_devkit_needs_more_than_0_5():
    truth = {"a": ImageTruth(square(0, 0, 2, 1)[None], np.array([0]), np.array([False]))}
    det = {"a": ImageDetections(square(0, 0, 1, 1)[None], np.array([0.9]), np.array([0]))}
    assert evaluate(det, truth, ["x"]).classes["x"].ap == 0.0
    det = {"a": ImageDetections(square(0, 0, 1.1, 1)[None], np.array([0.9]), np.array([0]))}
    assert evaluate(det, truth, ["x"]).classes["x"].ap == pytest.approx(1.0)


def test_detections_on_an_image_without_ground_truth_are_false_positives():
    truth = {"a": ImageTruth(G1[None], np.array([0]), np.array([False]))}
    det = {"b": ImageDetections(G1[None], np.array([0.9]), np.array([0])),
           "a": ImageDetections(G1[None], np.array([0.8]), np.array([0]))}
    # FP then TP: precision .5 at recall 1 -> 11 points of 0.5.
    assert evaluate(det, truth, ["x"]).classes["x"].ap == pytest.approx(0.5)


def test_polygon_iou_of_a_square_and_its_45_degree_rotation_is_one_over_root_two():
    s = math.sqrt(2)
    diamond = np.array([[s, 0], [0, s], [-s, 0], [0, -s]])
    assert polygon_iou(square(-1, -1, 1, 1), diamond[None])[0] == pytest.approx(1 / s, rel=1e-5)
    assert polygon_iou(square(0, 0, 1, 1), square(0.5, 0, 1.5, 1)[None])[0] == pytest.approx(1 / 3, rel=1e-6)
    assert polygon_iou(square(0, 0, 1, 1), square(2, 2, 3, 3)[None])[0] == 0.0


def test_voc07_ap_of_an_empty_curve_is_0_and_an_unknown_kind_is_refused():
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0
    with pytest.raises(ValueError, match="voc07, area"):
        average_precision(np.zeros(1), np.zeros(1), "coco")
    with pytest.raises(ValueError, match="protocol must be one of dota, dior, dior-r"):
        evaluate({}, {}, ["x"], protocol="voc")


def test_polygon_nms_at_0_1_drops_an_overlapping_lower_score_and_keeps_a_disjoint_one():
    polys = np.stack([square(0, 0, 1, 1), square(0.5, 0, 1.5, 1), square(5, 5, 6, 6), square(0.95, 0, 1.95, 1)])
    # 1 overlaps 0 at IoU 1/3 > 0.1 (dropped); 3 overlaps 0 by 0.05 / 1.95 < 0.1 and 1 was dropped (kept).
    keep = polygon_nms(polys, np.array([0.9, 0.8, 0.7, 0.6]), 0.1)
    assert keep.tolist() == [0, 2, 3]


def test_task1_files_hold_one_line_per_detection_and_read_back_to_the_same_scores(tmp_path):
    dets = detections()
    paths = write_task1(tmp_path / "sub", dets, NAMES)
    assert [p.name for p in paths] == ["Task1_ship.txt", "Task1_plane.txt", "Task1_car.txt"]
    first = paths[0].read_text().splitlines()[0].split()
    assert first[:2] == ["img1", "0.900000"] and [float(v) for v in first[2:]] == G1.reshape(-1).tolist()
    assert paths[2].read_text() == ""
    back = read_task1(tmp_path / "sub", NAMES)
    assert evaluate(back, TRUTHS, NAMES).classes["ship"].ap == pytest.approx(28 / 33)


def test_the_scorer_and_the_protocol_runner_import_neither_torch_nor_ultralytics():
    import subprocess
    import sys

    code = ("import sys, admd_deploy.evaluation.dota, admd_deploy.evaluation.protocol, admd_deploy.evaluation.cli; "
            "print(sorted(m for m in ('torch', 'ultralytics') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]"
