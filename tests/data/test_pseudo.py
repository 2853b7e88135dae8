"""Pseudo-labels: the teacher's detections written as YOLO label rows and a training split (hand-checked values)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_deploy.data.pseudo import MARKER, label_rows, write_split
from admd_deploy.errors import UsageError


def test_obb_rows_are_corners_normalised_by_width_and_height_and_clipped():
    dets = [{"cls": 2, "conf": 0.9, "corners": [[10, 20], [30, 20], [30, 40], [10, 40]]},
            {"cls": 1, "conf": 0.8, "corners": [[-5, 0], [110, 0], [110, 50], [-5, 50]]}]
    rows = label_rows(dets, width=100, height=50, task="obb", conf=0.5)
    assert rows == ["2 0.100000 0.400000 0.300000 0.400000 0.300000 0.800000 0.100000 0.800000",
                    "1 0.000000 0.000000 1.000000 0.000000 1.000000 1.000000 0.000000 1.000000"]


def test_detect_rows_are_centre_and_size_and_a_box_clipped_to_nothing_is_dropped():
    dets = [{"cls": 0, "conf": 0.7, "xyxy": [20, 10, 60, 30]},
            {"cls": 0, "conf": 0.7, "xyxy": [120, 10, 160, 30]}]  # wholly right of a 100 px wide image
    assert label_rows(dets, width=100, height=50, task="detect", conf=0.5) == ["0 0.400000 0.400000 0.400000 0.400000"]


def test_rows_below_the_confidence_or_of_an_unknown_class_are_left_out():
    dets = [{"cls": 0, "conf": 0.49, "xyxy": [0, 0, 10, 10]}, {"cls": 0, "conf": 0.5, "xyxy": [0, 0, 10, 10]},
            {"cls": 5, "conf": 0.9, "xyxy": [0, 0, 10, 10]}]
    assert label_rows(dets, 10, 10, "detect", conf=0.5, nc=5) == ["0 0.500000 0.500000 1.000000 1.000000"]
    assert len(label_rows(dets, 10, 10, "detect", conf=0.5)) == 2  # nc unknown: every class


def test_a_wrong_task_or_an_empty_image_is_refused():
    with pytest.raises(UsageError, match="valid values are obb, detect"):
        label_rows([], 10, 10, "segment", 0.5)
    with pytest.raises(UsageError, match="0x10 is empty"):
        label_rows([], 0, 10, "obb", 0.5)


def _frames(root: Path) -> list[Path]:
    (root / "day").mkdir(parents=True)
    files = [root / "a.png", root / "day" / "a.png"]
    for f in files:
        assert cv2.imwrite(str(f), np.zeros((20, 40, 3), np.uint8))
    return files


def test_the_split_links_every_image_under_images_with_its_label_under_labels(tmp_path):
    files = _frames(tmp_path / "frames")
    dets = [[{"cls": 1, "conf": 0.9, "xyxy": [0, 0, 20, 10]}], [{"cls": 1, "conf": 0.1, "xyxy": [0, 0, 20, 10]}]]
    counts = write_split(tmp_path / "frames", files, dets, [(40, 20)] * 2, tmp_path / "pseudo", "detect", 0.5, nc=2)
    out = tmp_path / "pseudo"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["a.png", "day__a.png"]  # names made unique
    assert (out / "labels" / "a.txt").read_text() == "1 0.250000 0.250000 0.500000 0.500000\n"
    assert (out / "labels" / "day__a.txt").read_text() == ""  # nothing confident: a background image
    assert counts == {"images": 2, "boxes": 1, "images_without_boxes": 1, "conf": 0.5, "task": "detect"}
    assert (out / MARKER).is_file() and not (tmp_path / "pseudo.partial").exists()
    assert cv2.imread(str(out / "images" / "day__a.png")).shape == (20, 40, 3)


def test_the_split_replaces_an_old_or_half_written_one_and_checks_its_inputs(tmp_path):
    files = _frames(tmp_path / "frames")
    out = tmp_path / "pseudo"
    (out / "labels").mkdir(parents=True)
    (out / "labels" / "stale.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (tmp_path / "pseudo.partial").mkdir()
    write_split(tmp_path / "frames", files, [[], []], [(40, 20)] * 2, out, "obb", 0.5)
    assert sorted(p.name for p in (out / "labels").iterdir()) == ["a.txt", "day__a.txt"]
    with pytest.raises(UsageError, match="2 images, 1 detection lists and 2 sizes"):
        write_split(tmp_path / "frames", files, [[]], [(40, 20)] * 2, out, "obb", 0.5)
