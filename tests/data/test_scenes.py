"""Large synthetic scenes: sizes, DOTA labels that match the drawn objects, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from admd_deploy.data.dota import read_dota_labels
from admd_deploy.data.scenes import SceneConfig, generate_scenes, render_scene
from admd_deploy.data.synth import CLASS_NAMES

SMALL = dict(n_scenes=2, size=(600, 300), tile=128, seed=3, min_objects=3, max_objects=6)


def test_scenes_are_rounded_up_to_whole_tiles_and_labelled_in_dota_format_inside_the_image(tmp_path):
    out = generate_scenes(tmp_path / "scenes", SceneConfig(**SMALL))
    images = sorted((out / "images").glob("*.png"))
    assert [p.name for p in images] == ["scene_00000.png", "scene_00001.png"]
    image = cv2.imread(str(images[0]))
    assert image.shape == (384, 640, 3)  # 300 -> 3 tiles of 128, 600 -> 5 tiles
    polys, classes, difficult = read_dota_labels(out / "labelTxt" / "scene_00000.txt", CLASS_NAMES)
    assert len(polys) >= 3 * 15 and not difficult.any()  # 15 tiles, at least 3 objects each
    assert polys[..., 0].min() >= 0 and polys[..., 0].max() <= 640 and polys[..., 1].max() <= 384
    assert set(classes.tolist()) <= set(range(len(CLASS_NAMES)))


def test_each_label_covers_a_drawn_object_not_bare_terrain(tmp_path):
    config = SceneConfig(**SMALL)
    image, polys, _, _ = render_scene(config, 0)
    tile = render_scene(SceneConfig(**{**SMALL, "seed": 4}), 0)[0]  # another scene's pixels at the same places
    differs = []
    for p in polys:
        mask = np.zeros(image.shape[:2], np.uint8)
        cv2.fillPoly(mask, [np.round(p).astype(np.int32)], 1)
        differs.append(np.abs(image[mask > 0].astype(int) - tile[mask > 0].astype(int)).mean())
    assert np.median(differs) > 10  # boxes hold scene-specific content


def test_the_same_seed_gives_the_same_scene_and_another_seed_another(tmp_path):
    a, pa, ca, _ = render_scene(SceneConfig(**SMALL), 1)
    b, pb, cb, _ = render_scene(SceneConfig(**SMALL), 1)
    c, *_ = render_scene(SceneConfig(**{**SMALL, "seed": 9}), 1)
    assert np.array_equal(a, b) and np.array_equal(pa, pb) and np.array_equal(ca, cb)
    assert not np.array_equal(a, c)


def test_objects_keep_the_pixel_sizes_of_the_training_tiles():
    _, polys, classes, _ = render_scene(SceneConfig(**{**SMALL, "size": 1024, "tile": 256}), 0)
    sides = np.linalg.norm(polys - np.roll(polys, -1, axis=1), axis=2).max(axis=1)
    assert 5 <= np.median(sides) <= 128  # 256 px tiles: objects of about 2-40 % of a tile


def test_small_objects_can_be_marked_difficult_and_bad_settings_are_refused(tmp_path):
    _, polys, _, difficult = render_scene(SceneConfig(**{**SMALL, "difficult_below": 1e6}), 0)
    assert difficult.all() and len(difficult) == len(polys)
    with pytest.raises(ValueError, match="n_scenes must be an integer >= 1"):
        SceneConfig(n_scenes=0)
    with pytest.raises(ValueError, match="SynthConfig.max_objects"):
        SceneConfig(max_objects=0)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        generate_scenes(tmp_path / "full", SceneConfig(**SMALL))
