"""Tests for the DOTA converter (admd_deploy.data.dota) on tiny fixtures in the official layout."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from admd_deploy.data.dota import DOTA_CLASSES, convert_dota, polygon_window_iof, read_dota_labels

W, H = 200, 150  # fixture image size
HEADER = "imagesource:GoogleEarth\ngsd:0.146343590398\n"
# Three axis-aligned boxes placed against the 100 px / gap 20 windows of a 200x150 image:
# windows start at x in (0, 80, 100) and y in (0, 50).
A = "10 10 40 10 40 30 10 30 plane 0"  # inside window (0, 0) only
B = "90 60 110 60 110 80 90 80 ship 0"  # half in x-window 0 and 100 (IoF 0.5): only x-window 80, both y-windows
C = "75 110 105 110 105 140 75 140 small-vehicle 1"  # 25/30 in x-windows 0 and 80: kept there, clamped; difficult


def _image(path: Path, w: int = W, h: int = H) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(0).integers(0, 255, (h, w, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), img)


def _dota(root: Path, labels: dict[str, dict[str, str]], label_dir: str = "labelTxt-v1.0/labelTxt") -> Path:
    """Write ``root/{split}/images/{stem}.png`` and ``root/{split}/{label_dir}/{stem}.txt``."""
    for split, files in labels.items():
        for stem, text in files.items():
            _image(root / split / "images" / f"{stem}.png")
            (root / split / label_dir).mkdir(parents=True, exist_ok=True)
            (root / split / label_dir / f"{stem}.txt").write_text(text)
    return root


def _rows(path: Path) -> np.ndarray:
    """Label rows sorted by class then coordinates, as an (N, 9) array."""
    rows = sorted([float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip())
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


def _assert_rows(path: Path, expected: list[list[float]]) -> None:
    np.testing.assert_allclose(_rows(path), np.array(expected, dtype=np.float64).reshape(len(expected), -1), atol=1e-5)


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    return _dota(tmp_path / "DOTA", {"train": {"P0001": HEADER + "\n" + "\n".join([A, B, C]) + "\n\n"},
                                     "val": {"P0002": A + "\n"}})


# ------------------------------------------------------------------------------------------------ full images
@pytest.mark.parametrize("label_dir", ["labelTxt", "labelTxt-v1.0", "labelTxt-v1.0/labelTxt"])
def test_full_image_labels_are_normalised_corners_in_class_order(tmp_path, label_dir):
    root = _dota(tmp_path / "DOTA", {"train": {"P0001": HEADER + A + "\n"}, "val": {"P0002": "\n" + B}}, label_dir)
    data_yaml = convert_dota(root, tmp_path / "out", split=False)

    assert data_yaml == (tmp_path / "out" / "data.yaml").resolve()
    data = yaml.safe_load(data_yaml.read_text())
    assert data["path"] == str((tmp_path / "out").resolve())
    assert (data["train"], data["val"], data["names"]) == ("images/train", "images/val", dict(enumerate(DOTA_CLASSES["1.0"])))
    _assert_rows(tmp_path / "out" / "labels" / "train" / "P0001.txt",
                 [[0, 10 / W, 10 / H, 40 / W, 10 / H, 40 / W, 30 / H, 10 / W, 30 / H]])
    _assert_rows(tmp_path / "out" / "labels" / "val" / "P0002.txt",
                 [[1, 90 / W, 60 / H, 110 / W, 60 / H, 110 / W, 80 / H, 90 / W, 80 / H]])
    image = tmp_path / "out" / "images" / "train" / "P0001.png"
    assert image.read_bytes() == (root / "train" / "images" / "P0001.png").read_bytes()


@pytest.mark.parametrize("include_difficult, classes", [(True, [0, 1, 10]), (False, [0, 1])])
def test_difficult_objects_are_kept_or_dropped(src, tmp_path, include_difficult, classes):
    convert_dota(src, tmp_path / "out", split=False, include_difficult=include_difficult)
    rows = _rows(tmp_path / "out" / "labels" / "train" / "P0001.txt")
    assert rows[:, 0].astype(int).tolist() == classes
    counts = json.loads((tmp_path / "out" / "convert.json").read_text())["counts"]["train"]
    assert counts["difficult_dropped"] == (0 if include_difficult else 1)


def test_corners_outside_the_image_are_clamped_and_empty_objects_dropped(tmp_path):
    text = "-10 -5 30 -5 30 20 -10 20 plane 0\n300 10 320 10 320 20 300 20 ship 0\n"  # 2nd lies right of the image
    root = _dota(tmp_path / "DOTA", {"train": {"P0001": text}, "val": {"P0002": ""}})
    convert_dota(root, tmp_path / "out", split=False)
    _assert_rows(tmp_path / "out" / "labels" / "train" / "P0001.txt", [[0, 0, 0, 30 / W, 0, 30 / W, 20 / H, 0, 20 / H]])
    assert (tmp_path / "out" / "labels" / "val" / "P0002.txt").read_text() == ""


def test_version_1_5_adds_container_crane_as_class_15(tmp_path):
    line = "10 10 40 10 40 30 10 30 container-crane 0\n"
    root = _dota(tmp_path / "DOTA", {"train": {"P0001": line}, "val": {"P0002": line}}, "labelTxt-v1.5/DOTA-v1.5_train")
    data = yaml.safe_load(convert_dota(root, tmp_path / "out", version="1.5", split=False).read_text())
    assert data["names"][15] == "container-crane" and data["nc"] == 16
    assert _rows(tmp_path / "out" / "labels" / "train" / "P0001.txt")[:, 0].tolist() == [15]


# ------------------------------------------------------------------------------------------------ bad labels
@pytest.mark.parametrize("line, message", [
    ("10 10 40 10 40 30 10 30 airplane 0", r"P0001\.txt:3: unknown class 'airplane'; valid classes: plane, ship"),
    ("10 10 40 10 40 30 10 30 container-crane 0", r"P0001\.txt:3: .*'container-crane'.*version='1\.5'"),
    ("10 10 40 10 40 30 plane 0", r"P0001\.txt:3: expected 'x1 y1"),
    ("10 10 40 ten 40 30 10 30 plane 0", r"P0001\.txt:3: coordinates and difficult must be numbers"),
    ("10 10 40 10 40 30 10 30 plane 0.5", r"P0001\.txt:3: .*difficult a non-negative integer"),
])
def test_bad_label_lines_raise_value_error_naming_file_and_line(tmp_path, line, message):
    root = _dota(tmp_path / "DOTA", {"train": {"P0001": HEADER + line + "\n"}, "val": {"P0002": ""}})
    with pytest.raises(ValueError, match=message):
        convert_dota(root, tmp_path / "out", split=False)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kwargs, message", [
    (dict(version="2.0"), r"version must be one of 1\.0, 1\.5; got '2\.0'"),
    (dict(crop_size=100, gap=100), r"crop_size > gap >= 0"),
    (dict(gap=-1), r"crop_size > gap >= 0"),
    (dict(rates=()), r"rates must be a non-empty tuple"),
    (dict(rates=(1.0, -0.5)), r"rates must be a non-empty tuple"),
])
def test_invalid_arguments_raise_value_error_with_valid_values(src, tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        convert_dota(src, tmp_path / "out", **kwargs)


def test_missing_labels_folder_raises_file_not_found_naming_where_it_looked(tmp_path):
    _image(tmp_path / "DOTA" / "train" / "images" / "P0001.png")
    with pytest.raises(FileNotFoundError, match=r"no DOTA v1\.0 label files for train; looked in .*labelTxt-v1\.0"):
        convert_dota(tmp_path / "DOTA", tmp_path / "out")


def test_read_dota_labels_returns_pixel_polygons_classes_and_difficult(src):
    polys, classes, difficult = read_dota_labels(src / "train" / "labelTxt-v1.0" / "labelTxt" / "P0001.txt",
                                                 DOTA_CLASSES["1.0"])
    assert polys.shape == (3, 4, 2) and polys[0].tolist() == [[10, 10], [40, 10], [40, 30], [10, 30]]
    assert classes.tolist() == [0, 1, 10] and difficult.tolist() == [False, False, True]


# ------------------------------------------------------------------------------------------------ patches
def test_iof_is_the_fraction_of_each_polygon_inside_each_window():
    square = np.array([[[0, 0], [10, 0], [10, 10], [0, 10]]], dtype=float)
    diamond = np.array([[[5, 0], [10, 5], [5, 10], [0, 5]]], dtype=float)  # area 50
    windows = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 5, 5]])
    np.testing.assert_allclose(polygon_window_iof(square, windows), [[1.0, 0.5, 0.0, 0.25]])
    np.testing.assert_allclose(polygon_window_iof(diamond, windows), [[1.0, 0.5, 0.0, 0.25]])


def test_split_cuts_windows_and_keeps_objects_mostly_inside_each(src, tmp_path):
    convert_dota(src, tmp_path / "out", crop_size=100, gap=20)
    images, labels = tmp_path / "out" / "images" / "train", tmp_path / "out" / "labels" / "train"
    windows = {f"P0001__100__{x}___{y}" for x in (0, 80, 100) for y in (0, 50)}
    assert {p.stem for p in images.glob("*.jpg")} == windows
    assert all(cv2.imread(str(p)).shape == (100, 100, 3) for p in images.iterdir())
    expected = {  # hand-computed: pixel corners minus the window origin, clamped to [0, 100], divided by 100
        "P0001__100__0___0": [[0, .1, .1, .4, .1, .4, .3, .1, .3]],
        "P0001__100__80___0": [[1, .1, .6, .3, .6, .3, .8, .1, .8]],
        "P0001__100__80___50": [[1, .1, .1, .3, .1, .3, .3, .1, .3], [10, 0, .6, .25, .6, .25, .9, 0, .9]],
        "P0001__100__0___50": [[10, .75, .6, 1, .6, 1, .9, .75, .9]],
    }
    assert {p.stem for p in labels.glob("*.txt")} == set(expected)  # the two right-hand windows are background
    for stem, rows in expected.items():
        _assert_rows(labels / f"{stem}.txt", rows)
        assert _rows(labels / f"{stem}.txt")[:, 1:].min() >= 0 and _rows(labels / f"{stem}.txt")[:, 1:].max() <= 1
    assert len(list((tmp_path / "out" / "images" / "val").glob("*.jpg"))) == 6


def test_a_second_rate_adds_wider_windows(src, tmp_path):
    convert_dota(src, tmp_path / "out", crop_size=100, gap=20, rates=(1.0, 0.5))
    wide = tmp_path / "out" / "labels" / "train" / "P0001__200__0___0.txt"  # one 200 px window, 150 px of image
    assert len(list((tmp_path / "out" / "images" / "train").glob("*.jpg"))) == 7
    np.testing.assert_allclose(_rows(wide)[0], [0, 10 / 200, 10 / 150, 40 / 200, 10 / 150, 40 / 200, 30 / 150,
                                                10 / 200, 30 / 150], atol=1e-5)


def test_split_output_loads_with_ultralytics_check_det_dataset(src, tmp_path):
    from admd_deploy.ultra import env as yolo_env

    yolo_env.prepare()  # conftest points ADMD_DEPLOY_HOME at a temporary folder first
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(convert_dota(src, tmp_path / "out", crop_size=100, gap=20)))
    assert data["nc"] == 15 and Path(data["train"]).is_dir() and Path(data["val"]).is_dir()


# ------------------------------------------------------------------------------------------------ output folder
def test_a_foreign_non_empty_output_folder_is_refused(src, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "thesis.tex").write_text("precious")
    with pytest.raises(FileExistsError, match=r"not an earlier output.*Fix: pass an empty or new out"):
        convert_dota(src, tmp_path / "out", split=False)
    assert (tmp_path / "out" / "thesis.tex").read_text() == "precious"


def test_an_earlier_conversion_is_replaced_and_no_temporary_folder_is_left(src, tmp_path):
    convert_dota(src, tmp_path / "out", crop_size=100, gap=20)
    convert_dota(src, tmp_path / "out", split=False)
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "train").iterdir()) == ["P0001.png"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DOTA", "out"]


def test_a_rerun_over_an_output_from_before_the_file_list_still_keeps_files_outside_its_layout(src, tmp_path):
    out = tmp_path / "out"
    convert_dota(src, out, split=False)
    marker = json.loads((out / "convert.json").read_text())
    del marker["files"]  # as written by the earlier converter version
    (out / "convert.json").write_text(json.dumps(marker))
    (out / "README.md").write_text("my notes")
    with pytest.raises(FileExistsError, match=r"holds 1 file\(s\) it did not write \(README.md\)"):
        convert_dota(src, out, split=False)
    assert (out / "README.md").read_text() == "my notes"
    (out / "README.md").unlink()
    assert convert_dota(src, out, split=False) == out / "data.yaml"  # its own layout alone: replaced
