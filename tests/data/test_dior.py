"""Tests for the DIOR / DIOR-R converter (admd_deploy.data.dior) on tiny fixtures in the official layout."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from admd_deploy.data.dior import CORNER_TAGS, DIOR_CLASSES, convert_dior, read_dior_xml

W, H = 200, 150
# (name as written in the XML, horizontal box xmin ymin xmax ymax, oriented corners lt rt rb lb)
OBJECTS = {
    "00001": [("Airplane", (20, 30, 60, 90), (20, 30, 60, 30, 60, 90, 20, 90)),
              ("Expressway-Service-area", (180, 10, 230, 40), (100, 10, 130, 40, 100, 70, 70, 40))],
    "00002": [("Expressway-toll-station", (0, 0, 50, 75), (10, 5, 50, 5, 50, 25, 10, 25))],
    "00003": [("windmill", (100, 75, 200, 150), (150, 60, 170, 80, 150, 100, 130, 80))],
    "00004": [("STORAGETANK", (10, 10, 30, 30), (-10, 10, 30, 10, 30, 30, -10, 30))],
}
SPLITS = {"train": ["00001"], "val": ["00002", "00003"], "test": ["00004"]}


def _xml(objects: list[tuple], size: bool = True) -> str:
    body = [f"<size><width>{W}</width><height>{H}</height><depth>3</depth></size>" if size else ""]
    for name, box, corners in objects:
        bnd = "".join(f"<{t}>{v}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"), box))
        rob = "".join(f"<{t}>{v}</{t}>" for t, v in zip(CORNER_TAGS, corners))
        body.append(f"<object><name>{name}</name><pose>Unspecified</pose><truncated>0</truncated>"
                    f"<difficult>0</difficult><bndbox>{bnd}</bndbox><robndbox>{rob}</robndbox></object>")
    return f"<annotation><filename>x.jpg</filename>{''.join(body)}</annotation>"


def _dior(root: Path, objects: dict[str, list[tuple]] = OBJECTS, size: bool = True) -> Path:
    for image_id, objs in objects.items():
        folder = root / ("JPEGImages-test" if image_id in SPLITS["test"] else "JPEGImages-trainval")
        folder.mkdir(parents=True, exist_ok=True)
        img = np.random.default_rng(int(image_id)).integers(0, 255, (H, W, 3), dtype=np.uint8)
        assert cv2.imwrite(str(folder / f"{image_id}.jpg"), img)
        for kind in ("Horizontal Bounding Boxes", "Oriented Bounding Boxes"):
            (root / "Annotations" / kind).mkdir(parents=True, exist_ok=True)
            (root / "Annotations" / kind / f"{image_id}.xml").write_text(_xml(objs, size))
    (root / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)
    for split, ids in SPLITS.items():
        (root / "ImageSets" / "Main" / f"{split}.txt").write_text("\n".join(ids) + "\n")
    return root


def _rows(path: Path) -> np.ndarray:
    rows = sorted([float(v) for v in line.split()] for line in path.read_text().splitlines() if line.strip())
    return np.array(rows, dtype=np.float64).reshape(len(rows), -1)


@pytest.fixture()
def src(tmp_path: Path) -> Path:
    return _dior(tmp_path / "DIOR")


def test_class_names_are_the_20_lower_case_dior_classes():
    assert len(DIOR_CLASSES) == 20 and all(n == n.lower() for n in DIOR_CLASSES)
    assert DIOR_CLASSES.index("expressway-service-area") == 7 and DIOR_CLASSES.index("expressway-toll-station") == 8


def test_horizontal_labels_are_normalised_centre_boxes_clipped_to_the_image(src, tmp_path):
    data_yaml = convert_dior(src, tmp_path / "out")

    assert data_yaml == (tmp_path / "out" / "data.yaml").resolve()
    data = yaml.safe_load(data_yaml.read_text())
    assert data["path"] == str((tmp_path / "out").resolve()) and data["names"] == dict(enumerate(DIOR_CLASSES))
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    labels = tmp_path / "out" / "labels"
    expected = {  # cx cy w h of each box, the Expressway box clipped from x 180..230 to 180..200
        "train/00001": [[0, 40 / W, 60 / H, 40 / W, 60 / H], [7, 190 / W, 25 / H, 20 / W, 30 / H]],
        "val/00002": [[8, 25 / W, 37.5 / H, 50 / W, 75 / H]],
        "val/00003": [[19, 150 / W, 112.5 / H, 100 / W, 75 / H]],
        "test/00004": [[15, 20 / W, 20 / H, 20 / W, 20 / H]],
    }
    for name, rows in expected.items():
        np.testing.assert_allclose(_rows(labels / f"{name}.txt"), rows, atol=1e-6, err_msg=name)
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "val").iterdir()) == ["00002.jpg", "00003.jpg"]


def test_oriented_labels_are_normalised_corners_clamped_to_the_image(src, tmp_path):
    convert_dior(src, tmp_path / "out", oriented=True)
    labels = tmp_path / "out" / "labels"
    np.testing.assert_allclose(_rows(labels / "train" / "00001.txt"), [
        [0, 20 / W, 30 / H, 60 / W, 30 / H, 60 / W, 90 / H, 20 / W, 90 / H],
        [7, 100 / W, 10 / H, 130 / W, 40 / H, 100 / W, 70 / H, 70 / W, 40 / H],
    ], atol=1e-6)
    np.testing.assert_allclose(_rows(labels / "test" / "00004.txt"),  # x -10 clamped to 0
                               [[15, 0, 10 / H, 30 / W, 10 / H, 30 / W, 30 / H, 0, 30 / H]], atol=1e-6)


def test_image_size_comes_from_the_image_when_the_xml_has_none(tmp_path):
    root = _dior(tmp_path / "DIOR", size=False)
    convert_dior(root, tmp_path / "out", splits=("train", "val"))
    np.testing.assert_allclose(_rows(tmp_path / "out" / "labels" / "val" / "00002.txt"),
                               [[8, 25 / W, 37.5 / H, 50 / W, 75 / H]], atol=1e-6)


def test_images_are_linked_or_copied_with_identical_bytes(src, tmp_path):
    convert_dior(src, tmp_path / "out")
    out_image, src_image = tmp_path / "out" / "images" / "train" / "00001.jpg", src / "JPEGImages-trainval" / "00001.jpg"
    assert out_image.read_bytes() == src_image.read_bytes()
    assert os.path.samefile(out_image, src_image)  # hardlinked (or symlinked) on one filesystem, not copied
    counts = json.loads((tmp_path / "out" / "convert.json").read_text())["counts"]
    assert counts["val"]["objects"] == 2 and counts["train"]["clipped"] == 1


def test_a_single_jpegimages_folder_and_a_split_subset_are_accepted(src, tmp_path):
    (src / "JPEGImages-trainval").rename(src / "JPEGImages")
    data = yaml.safe_load(convert_dior(src, tmp_path / "out", splits=("train", "val")).read_text())
    assert "test" not in data and (tmp_path / "out" / "images" / "train" / "00001.jpg").is_file()


@pytest.mark.parametrize("name, class_id", [
    ("airplane", 0), ("AIRPLANE", 0), ("Expressway-Service-area", 7), ("expressway-service-area", 7),
    ("Expressway-toll-station", 8), ("EXPRESSWAY-TOLL-STATION", 8), (" Windmill ", 19), ("groundtrackfield", 10),
])
def test_mixed_case_names_map_to_their_class_id(tmp_path, name, class_id):
    path = tmp_path / "a.xml"
    path.write_text(_xml([(name, (1, 2, 3, 4), (1, 2, 3, 2, 3, 4, 1, 4))]))
    size, classes, boxes = read_dior_xml(path, oriented=False)
    assert size == (W, H) and classes.tolist() == [class_id] and boxes.tolist() == [[1, 2, 3, 4]]


# ------------------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize("xml, oriented, error, message", [
    (_xml([("helipad", (1, 2, 3, 4), (1, 2, 3, 2, 3, 4, 1, 4))]), False, ValueError,
     r"00001\.xml: object 1 has unknown class 'helipad'; valid classes \(any case\): airplane, airport"),
    ("<annotation><object><name>ship</name><bndbox><xmin>1</xmin></bndbox></object></annotation>", False, ValueError,
     r"object 1 \(ship\) needs <bndbox> with numeric xmin, ymin, xmax, ymax; found fields: xmin"),
    ("<annotation><object><name>ship</name><robndbox><cx>5</cx><cy>5</cy><w>4</w><h>2</h><angle>0.3</angle>"
     "</robndbox></object></annotation>", True, ValueError,
     r"needs <robndbox> with numeric x_left_top.*found fields: cx, cy, w, h, angle"),
    ("<annotation><object>", False, ValueError, r"00001\.xml: not valid XML"),
])
def test_bad_annotations_raise_naming_the_file_and_the_problem(src, tmp_path, xml, oriented, error, message):
    kind = "Oriented Bounding Boxes" if oriented else "Horizontal Bounding Boxes"
    (src / "Annotations" / kind / "00001.xml").write_text(xml)
    with pytest.raises(error, match=message):
        convert_dior(src, tmp_path / "out", oriented=oriented)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DIOR"]  # nothing half-written, no temporary folder


@pytest.mark.parametrize("change, kwargs, error, message", [
    (None, dict(splits=("train", "trainval")), ValueError, r"splits must be distinct names from train, val, test"),
    (None, dict(splits=("train", "train")), ValueError, r"splits must be distinct names"),
    ("ImageSets/Main/test.txt", {}, FileNotFoundError, r"split list .*test\.txt not found.*leave 'test' out"),
    ("JPEGImages-test", {}, FileNotFoundError, r"1 of 1 test images missing \(e\.g\. 00004\)"),
    ("Annotations/Oriented Bounding Boxes", dict(oriented=True), FileNotFoundError,
     r"Oriented Bounding Boxes not found\. Fix: unpack the DIOR-R annotations"),
])
def test_bad_inputs_raise_with_what_is_missing_and_the_fix(src, tmp_path, change, kwargs, error, message):
    if change:
        target = src / change
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    with pytest.raises(error, match=message):
        convert_dior(src, tmp_path / "out", **kwargs)


def test_a_foreign_non_empty_output_folder_is_refused_and_an_earlier_conversion_replaced(src, tmp_path):
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match=r"refusing to overwrite"):
        convert_dior(src, tmp_path / "other")
    convert_dior(src, tmp_path / "out")
    convert_dior(src, tmp_path / "out", oriented=True, splits=("train", "val"))
    assert len(_rows(tmp_path / "out" / "labels" / "train" / "00001.txt")[0]) == 9
    assert not (tmp_path / "out" / "images" / "test").exists()


@pytest.mark.parametrize("oriented", [False, True])
def test_output_loads_with_ultralytics_check_det_dataset(src, tmp_path, oriented):
    from admd_deploy.ultra import env as yolo_env

    yolo_env.prepare()  # conftest points ADMD_DEPLOY_HOME at a temporary folder first
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(convert_dior(src, tmp_path / "out", oriented=oriented)))
    assert data["nc"] == 20 and data["names"][7] == "expressway-service-area"
    assert all(Path(data[k]).is_dir() for k in ("train", "val", "test"))
