"""`admd-deploy data scenes`: the command line of the large-scene generator."""

from __future__ import annotations

import json

import cv2

from admd_deploy.cli import main
from admd_deploy.data.dota import read_dota_labels
from admd_deploy.data.synth import CLASS_NAMES


def test_data_scenes_writes_whole_tile_scenes_with_dota_labels_and_says_where(tmp_path, capsys):
    out = tmp_path / "scenes"
    assert main(["data", "scenes", str(out), "--n-scenes", "2", "--size", "300", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    assert "2 scene(s) of 512x512 px" in printed and str(out / "labelTxt") in printed
    images = sorted((out / "images").iterdir())
    assert [p.name for p in images] == ["scene_00000.png", "scene_00001.png"]
    assert cv2.imread(str(images[0])).shape == (512, 512, 3)
    polys, _, _ = read_dota_labels(out / "labelTxt" / "scene_00000.txt", CLASS_NAMES)
    meta = json.loads((out / "scenes.json").read_text())
    assert len(polys) > 0 and meta["config"]["seed"] == 3 and meta["config"]["n_scenes"] == 2


def test_data_scenes_refuses_a_used_folder_and_bad_sizes_with_exit_2_and_one_line(tmp_path, capsys):
    used = tmp_path / "used"
    used.mkdir()
    (used / "keep.txt").write_text("mine")
    assert main(["data", "scenes", str(used), "--n-scenes", "1", "--size", "256"]) == 2
    err = capsys.readouterr().err.strip()
    assert "not an empty folder" in err and len(err.splitlines()) == 1
    assert (used / "keep.txt").read_text() == "mine" and not (used / "images").exists()
    assert main(["data", "scenes", str(tmp_path / "new"), "--size", "0"]) == 2
    assert "scene size" in capsys.readouterr().err and not (tmp_path / "new").exists()
