"""Tests for the synthetic aerial dataset generator (admd_deploy.data.synth)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from admd_deploy.data import SynthConfig, generate_synthetic
from admd_deploy.data import synth
from admd_deploy.data.synth import CLASS_NAMES, _object_label, _overlap, _rect_corners, _visible_fraction
from admd_deploy.data.polygons import clip_polygon, polygon_area

SMALL = dict(n_train=6, n_val=3, imgsz=96, seed=0)


def _read_labels(path: Path) -> np.ndarray:
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def _stems(folder: Path) -> list[str]:
    return sorted(p.stem for p in folder.iterdir())


# ---------------------------------------------------------------------------------------------- layout
@pytest.mark.parametrize("task, ncols", [("detect", 5), ("obb", 9)])
def test_written_dataset_has_matching_images_and_labels_with_valid_normalised_rows(tmp_path, task, ncols):
    yaml_path = generate_synthetic(tmp_path / "ds", task=task, **SMALL)

    assert yaml_path.is_absolute() and yaml_path == (tmp_path / "ds" / "data.yaml").resolve()
    data = yaml.safe_load(yaml_path.read_text())
    assert data["path"] == str((tmp_path / "ds").resolve())
    assert (data["train"], data["val"]) == ("images/train", "images/val")
    assert data["names"] == dict(enumerate(CLASS_NAMES))
    root = Path(data["path"])
    n_objects = 0
    for split, count in (("train", SMALL["n_train"]), ("val", SMALL["n_val"])):
        images, labels = root / "images" / split, root / "labels" / split
        assert len(list(images.glob("*.jpg"))) == count
        assert _stems(images) == _stems(labels)
        for label_file in labels.iterdir():
            rows = _read_labels(label_file)
            if len(rows):
                assert rows.shape[1] == ncols
                assert np.all(rows[:, 0] == np.round(rows[:, 0])) and rows[:, 0].min() >= 0
                assert rows[:, 0].max() < len(CLASS_NAMES)
                assert rows[:, 1:].min() >= 0.0 and rows[:, 1:].max() <= 1.0
                if task == "detect":
                    assert (rows[:, 3:5] > 0).all()
            n_objects += len(rows)
        image = cv2.imread(str(next(images.iterdir())))
        assert image.shape == (SMALL["imgsz"], SMALL["imgsz"], 3)
    assert n_objects / (SMALL["n_train"] + SMALL["n_val"]) >= 1.0


def test_a_class_subset_is_numbered_in_the_given_order(tmp_path):
    yaml_path = generate_synthetic(tmp_path / "ds", classes=("ship", "plane"), min_objects=3, max_objects=3, **SMALL)
    assert yaml.safe_load(yaml_path.read_text())["names"] == {0: "ship", 1: "plane"}
    ids = np.concatenate([_read_labels(p)[:, 0] for p in (tmp_path / "ds" / "labels" / "train").iterdir()])
    assert set(ids.astype(int)) == {0, 1}


def test_storage_tanks_get_axis_aligned_obb_labels(tmp_path):
    generate_synthetic(tmp_path / "ds", task="obb", classes=("storage-tank",), **SMALL)
    rows = np.concatenate([_read_labels(p) for p in (tmp_path / "ds" / "labels" / "train").iterdir()])
    corners = rows[:, 1:].reshape(-1, 4, 2) * SMALL["imgsz"]
    assert len(rows) > 0
    for c in corners:  # every corner shares its x with one other corner and its y with another
        assert len(np.unique(np.round(c[:, 0], 2))) == 2 and len(np.unique(np.round(c[:, 1], 2))) == 2


def test_scenes_are_textured_terrain_not_shapes_on_black(tmp_path):
    generate_synthetic(tmp_path / "ds", task="detect", **SMALL)
    for path in (tmp_path / "ds" / "images" / "train").iterdir():
        img = cv2.imread(str(path)).astype(np.float32)
        assert (img.max(axis=2) < 20).mean() < 0.01  # hardly any black pixels
        local_texture = np.abs(img - cv2.blur(img, (9, 9))).mean()
        assert img.std() > 8 and local_texture > 1.5


# ---------------------------------------------------------------------------------------------- determinism
def test_the_same_seed_gives_identical_outputs_and_a_different_seed_does_not(tmp_path):
    a = generate_synthetic(tmp_path / "a", task="obb", **SMALL).parent
    b = generate_synthetic(tmp_path / "b", task="obb", **SMALL).parent
    c = generate_synthetic(tmp_path / "c", task="obb", **{**SMALL, "seed": 1}).parent

    def contents(root: Path) -> tuple[list[bytes], list[np.ndarray]]:
        labels = [p.read_bytes() for p in sorted((root / "labels").rglob("*.txt"))]
        images = [cv2.imread(str(p)) for p in sorted((root / "images").rglob("*.jpg"))]
        return labels, images

    (la, ia), (lb, ib), (lc, ic) = contents(a), contents(b), contents(c)
    assert la == lb and all(np.array_equal(x, y) for x, y in zip(ia, ib, strict=True))
    assert la != lc and not all(np.array_equal(x, y) for x, y in zip(ia, ic, strict=True))


def test_detect_and_obb_datasets_with_the_same_seed_show_the_same_images(tmp_path):
    d = generate_synthetic(tmp_path / "d", task="detect", **SMALL).parent
    o = generate_synthetic(tmp_path / "o", task="obb", **SMALL).parent
    for pd, po in zip(sorted((d / "images").rglob("*.jpg")), sorted((o / "images").rglob("*.jpg")), strict=True):
        assert pd.read_bytes() == po.read_bytes()


# ---------------------------------------------------------------------------------------------- border clipping
def test_a_rectangle_centred_on_the_left_border_is_labelled_by_its_visible_half():
    corners = _rect_corners(0.0, 50.0, 20.0, 10.0)  # axis-aligned 20 x 10 box centred at x=0, imgsz 100

    detect = _object_label("detect", corners, 100) * 100
    np.testing.assert_allclose(detect, [5.0, 50.0, 10.0, 10.0], atol=1e-9)  # cx, cy, w, h in px

    obb = _object_label("obb", corners, 100).reshape(4, 2) * 100
    assert sorted(tuple(p) for p in np.round(obb, 3) + 0.0) == [(0, 45), (0, 55), (10, 45), (10, 55)]


def test_a_rotated_rectangle_cut_by_the_border_is_labelled_by_its_visible_part():
    angle = math.radians(30)
    corners = _rect_corners(0.0, 50.0, 40.0, 10.0, angle)  # exactly half of it lies inside x >= 0
    assert polygon_area(clip_polygon(corners, (0, 0, 100, 100))) == pytest.approx(200.0)

    # By hand: visible x in [0, 20cos30 + 5sin30], y in [50 - 5/cos30, 50 + 20sin30 + 5cos30].
    x1 = 20 * math.cos(angle) + 5 * math.sin(angle)
    y0, y1 = 50 - 5 / math.cos(angle), 50 + 20 * math.sin(angle) + 5 * math.cos(angle)
    detect = _object_label("detect", corners, 100) * 100
    np.testing.assert_allclose(detect, [x1 / 2, (y0 + y1) / 2, x1, y1 - y0], atol=1e-6)

    # The min-area rectangle of the visible part follows the object's 30 deg and would stick out of the
    # image, so the label falls back to the smallest rectangle inside the image: the axis-aligned box.
    assert not synth._obb_label_fits(corners, 100)
    obb = _object_label("obb", corners, 100).reshape(4, 2) * 100
    expected = [(0.0, y0), (0.0, y1), (x1, y0), (x1, y1)]
    np.testing.assert_allclose(sorted(map(tuple, obb)), expected, atol=1e-6)


def test_a_rectangle_whose_visible_part_fits_keeps_its_min_area_rectangle():
    assert synth._obb_label_fits(_rect_corners(0.0, 50.0, 20.0, 10.0), 100)
    assert synth._obb_label_fits(_rect_corners(50.0, 50.0, 40.0, 10.0, 0.7), 100)  # fully inside


def test_an_object_mostly_outside_the_image_gets_no_label():
    hidden = _rect_corners(-6.0, 50.0, 20.0, 10.0)  # 4 of its 20 px width visible: 20 % < 30 %
    shown = _rect_corners(-2.0, 50.0, 20.0, 10.0)  # 40 % visible
    for task in ("detect", "obb"):
        assert _object_label(task, hidden, 100, min_visible=0.3) is None
        assert _object_label(task, shown, 100, min_visible=0.3) is not None


def test_placed_objects_respect_the_overlap_and_visibility_limits():
    cfg = SynthConfig(imgsz=128, min_objects=10, max_objects=10, max_overlap=0.1, min_visible=0.3)
    for seed in range(4):
        _, placed = synth._render_scene(np.random.default_rng(seed), cfg)
        assert len(placed) >= 5
        boxes = [shape.corners() for _, shape in placed]
        assert all(_visible_fraction(b, 128) >= 0.3 and synth._obb_label_fits(b, 128) for b in boxes)
        for i in range(len(boxes)):
            for j in range(i):
                assert _overlap(boxes[i], boxes[j]) <= 0.1 + 1e-6


# ---------------------------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"task": "segment"}, "task"),
        ({"n_train": 0}, "n_train"),
        ({"imgsz": 16}, "imgsz"),
        ({"classes": ()}, "classes"),
        ({"classes": ("plane", "plane")}, "classes"),
        ({"classes": ("plane", "helicopter")}, "classes"),
        ({"min_objects": 5, "max_objects": 2}, "min_objects"),
        ({"imgsize": 128}, "imgsize"),
    ],
)
def test_an_invalid_config_raises_value_error_naming_the_field(tmp_path, overrides, field):
    with pytest.raises(ValueError, match=field) as err:
        generate_synthetic(tmp_path / "ds", **overrides)
    assert "valid" in str(err.value) and "Fix" in str(err.value)
    assert not (tmp_path / "ds").exists()


# ---------------------------------------------------------------------------------------------- caching / atomicity
def test_rerunning_with_the_same_config_returns_early_and_a_different_config_regenerates(tmp_path, monkeypatch):
    out = tmp_path / "ds"
    first = generate_synthetic(out, task="detect", **SMALL)
    label = out / "labels" / "train" / "train_00000.txt"
    stat = label.stat()

    with monkeypatch.context() as m:
        m.setattr(synth, "_sample", lambda *a: pytest.fail("regenerated a cached dataset"))
        assert generate_synthetic(out, SynthConfig(task="detect", **SMALL)) == first
    assert (label.stat().st_mtime_ns, label.stat().st_ino) == (stat.st_mtime_ns, stat.st_ino)

    generate_synthetic(out, task="detect", **{**SMALL, "seed": 7})
    assert label.stat().st_ino != stat.st_ino
    assert json.loads((out / "synth.json").read_text())["config"]["seed"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]  # no temp or old copies left behind


def test_an_interrupted_run_leaves_no_dataset_behind(tmp_path, monkeypatch):
    original = synth._sample

    def failing(cfg, split, index):
        if index == 2:
            raise KeyboardInterrupt
        return original(cfg, split, index)

    monkeypatch.setattr(synth, "_sample", failing)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic(tmp_path / "ds", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_a_directory_that_is_not_a_synthetic_dataset_is_never_overwritten(tmp_path):
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    with pytest.raises(FileExistsError, match="refusing"):
        generate_synthetic(out, **SMALL)
    assert (out / "keep.txt").read_text() == "precious"


# ---------------------------------------------------------------------------------------------- Ultralytics
def test_ultralytics_loads_the_yaml_and_accepts_every_image_label_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("YOLO_OFFLINE", "1")
    monkeypatch.setenv("YOLO_CONFIG_DIR", str(tmp_path / "yolo_cfg"))
    du = pytest.importorskip("ultralytics.data.utils")
    monkeypatch.setattr(du, "check_font", lambda *a, **k: None)  # it would try to download Arial.ttf

    for task in ("detect", "obb"):
        out = tmp_path / task
        data = du.check_det_dataset(str(generate_synthetic(out, task=task, **SMALL)))
        assert data["nc"] == len(CLASS_NAMES) and data["names"] == dict(enumerate(CLASS_NAMES))
        assert Path(data["train"]) == out.resolve() / "images" / "train"
        assert Path(data["val"]) == out.resolve() / "images" / "val"
        for image in sorted((out / "images").rglob("*.jpg")):
            label = du.img2label_paths([str(image)])[0]
            assert Path(label).is_file()
            result = du.verify_image_label((str(image), label, "", False, data["nc"], 0, 0, False))
            n_missing, n_found, n_corrupt, msg = result[5], result[6], result[8], result[9]
            assert (n_missing, n_found, n_corrupt) == (0, 1, 0), msg
