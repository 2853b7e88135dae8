"""Whole-image evaluation: DOTA windows, labels clipped to the image, split-predict-merge-score end to end."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_deploy.evaluation.protocol import ProtocolSettings, dota_windows, evaluate_images, read_labels

NAMES = {0: "ship", 1: "car"}


class BlobRunner:
    """An end-to-end OBB 'model' that reports each white blob of its input as a ship, scored by its area
    (a whole object outscores its own fragment cut by a window border)."""

    def __init__(self, size: int = 64):
        self.input_name, self.input_shape, self.input_dtype = "images", (None, 3, size, size), np.dtype(np.float32)
        self.metadata = {"names": str(NAMES), "task": "obb", "imgsz": str([size, size]), "end2end": "True"}

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        out = np.zeros((len(batch), 50, 7), dtype=np.float32)
        for n, planes in enumerate(batch):
            contours, _ = cv2.findContours((planes.min(0) > 0.9).astype(np.uint8), cv2.RETR_EXTERNAL,
                                           cv2.CHAIN_APPROX_SIMPLE)
            for k, c in enumerate(contours[:50]):
                (x, y), (w, h), a = cv2.minAreaRect(c)
                out[n, k] = (x, y, w + 1, h + 1, min(0.99, 0.3 + (w + 1) * (h + 1) / 1000), 0, math.radians(a))
        return [out]


def blob_model():
    from admd_edge.model import EdgeModel

    return EdgeModel(BlobRunner(64), batch=4)


def test_windows_are_those_of_ultralytics_split_dota():
    from admd_deploy.ultra import env as yolo_env

    yolo_env.prepare()
    from ultralytics.data.split_dota import get_windows

    for h, w, crop, gap in [(700, 600, 1024, 200), (2000, 3000, 1024, 200), (1024, 1024, 1024, 200),
                            (500, 1100, 1024, 200), (260, 300, 64, 16), (1300, 900, 800, 150)]:
        assert np.array_equal(dota_windows(h, w, crop, gap), get_windows((h, w), [crop], [gap])), (h, w, crop, gap)


def test_labels_outside_the_image_are_clipped_and_those_with_nothing_inside_dropped(tmp_path: Path):
    label = tmp_path / "a.txt"
    label.write_text("imagesource:GoogleEarth\ngsd:0.5\n"
                     "90 10 110 10 110 20 90 20 ship 0\n"  # half outside on the right: clipped to x <= 100
                     "120 10 130 10 130 20 120 20 car 1\n"  # wholly outside: dropped
                     "10 10 20 10 20 20 10 20 car 1\n")
    truth = read_labels(label, list(NAMES.values()), 100, 50)
    assert truth.classes.tolist() == [0, 1] and truth.difficult.tolist() == [False, True]
    assert truth.polygons[0, :, 0].max() == 100


def test_yolo_obb_and_detect_labels_are_read_in_pixels(tmp_path: Path):
    (tmp_path / "obb.txt").write_text("1 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4\n")
    (tmp_path / "det.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    obb = read_labels(tmp_path / "obb.txt", list(NAMES.values()), 200, 100)
    det = read_labels(tmp_path / "det.txt", list(NAMES.values()), 200, 100)
    assert obb.classes.tolist() == [1] and np.allclose(obb.polygons[0], [[20, 20], [60, 20], [60, 40], [20, 40]])
    assert np.allclose(det.polygons[0], [[80, 30], [120, 30], [120, 70], [80, 70]])
    (tmp_path / "bad.txt").write_text("7 0.5 0.5 0.2 0.4\n")
    with pytest.raises(ValueError, match="bad.txt:1: class id 7 is not one of the model's 0..1"):
        read_labels(tmp_path / "bad.txt", list(NAMES.values()), 200, 100)


def scene(tmp_path: Path) -> tuple[Path, Path]:
    """Two 260x300 images of white ships, some across window borders (windows 64 px, gap 16: starts 0, 48, 96...)."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    ships = {"s0": [(60, 30, 30, 8, 0), (150, 100, 12, 6, 45), (30, 200, 20, 8, 90), (250, 240, 16, 8, 30)],
             "s1": [(100, 100, 24, 8, 60), (200, 50, 14, 8, 10)]}
    for stem, blobs in ships.items():
        image = np.zeros((260, 300, 3), np.uint8)
        lines = []
        for cx, cy, w, h, deg in blobs:
            pts = cv2.boxPoints(((cx, cy), (w, h), deg))
            cv2.fillPoly(image, [np.round(pts).astype(np.int32)], (255, 255, 255))
            lines.append(" ".join(f"{v:.1f}" for v in pts.reshape(-1)) + " ship 0\n")
        cv2.imwrite(str(images / f"{stem}.png"), image)
        (labels / f"{stem}.txt").write_text("".join(lines))
    return images, labels


@pytest.mark.parametrize("merge", ["polygon", "rotated"])
def test_a_perfect_detector_scores_ap_1_on_whole_images_after_split_and_merge(tmp_path: Path, merge: str):
    images, labels = scene(tmp_path)
    settings = ProtocolSettings(crop_size=64, gap=16, merge=merge, merge_iou=0.1)
    scores, summary = evaluate_images(blob_model(), images, labels, settings, task1=tmp_path / "task1")
    assert scores.classes["ship"].npos == 6 and scores.classes["ship"].ap == pytest.approx(1.0)
    assert scores.classes["ship"].ndet == 6  # every fragment and duplicate merged away
    assert scores.classes["car"].npos == 0 and scores.map == pytest.approx(0.5)  # DOTA_devkit: mean over all classes
    assert summary["windows"] == 2 * 6 * 6  # ceil((300 - 64) / 48 + 1) = ceil((260 - 64) / 48 + 1) = 6
    assert len((tmp_path / "task1" / "Task1_ship.txt").read_text().splitlines()) == 6


def test_a_missing_label_folder_or_empty_image_folder_is_refused_naming_it(tmp_path: Path):
    images, labels = scene(tmp_path)
    with pytest.raises(FileNotFoundError, match="label folder .*nolabels not found"):
        evaluate_images(blob_model(), images, tmp_path / "nolabels")
    with pytest.raises(FileNotFoundError, match="no images"):
        evaluate_images(blob_model(), labels, labels)
    with pytest.raises(ValueError, match="crop_size > gap"):
        ProtocolSettings(crop_size=64, gap=64)
