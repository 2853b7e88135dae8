"""Unlabelled target images for the KD term: listing, fingerprint, letterbox + flip, endless batches, synthetic ones."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from admd_deploy.data import SynthConfig, generate_synthetic
from admd_deploy.data.synth import generate_unlabelled
from admd_deploy.data.unlabelled import UnlabelledImages, endless_batches, fingerprint, list_images
from admd_deploy.errors import MissingFileError, UsageError


def _write(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def test_images_are_listed_recursively_in_path_order_and_other_files_are_skipped(tmp_path):
    img = np.zeros((8, 8, 3), np.uint8)
    b = _write(tmp_path / "b.png", img)
    a = _write(tmp_path / "sub" / "a.JPG", img)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "labels").mkdir()
    assert list_images(tmp_path) == [b, a]  # sorted by path: "b.png" < "sub/a.JPG"


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_a_missing_or_imageless_folder_is_refused_with_the_fix(tmp_path, make):
    folder = tmp_path / "frames"
    if make == "empty":
        folder.mkdir()
        (folder / "readme.txt").write_text("x")
    with pytest.raises(MissingFileError, match="Fix: point data.unlabelled at"):
        list_images(folder)


def test_the_fingerprint_changes_when_an_image_is_added_or_renamed_and_only_then(tmp_path):
    _write(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    first = fingerprint(tmp_path)
    assert fingerprint(tmp_path) == first
    (tmp_path / "notes.txt").write_text("not an image")
    assert fingerprint(tmp_path) == first
    _write(tmp_path / "b.png", np.zeros((8, 8, 3), np.uint8))
    second = fingerprint(tmp_path)
    assert second != first
    (tmp_path / "b.png").rename(tmp_path / "c.png")
    assert fingerprint(tmp_path) not in (first, second)


def test_an_image_is_letterboxed_to_rgb_chw_and_padded_with_114(tmp_path):
    # A 16x32 (h x w) BGR image: blue channel 10, green 20, red = column index; imgsz 32 pads 8 rows top and bottom.
    bgr = np.zeros((16, 32, 3), np.uint8)
    bgr[..., 0], bgr[..., 1] = 10, 20
    bgr[..., 2] = np.arange(32, dtype=np.uint8)[None, :]
    _write(tmp_path / "a.png", bgr)
    out = UnlabelledImages(tmp_path, 32, fliplr=0.0)[0]
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    assert (out[:, :8] == 114).all() and (out[:, 24:] == 114).all()
    assert (out[0, 8:24] == np.arange(32)[None, :]).all()  # channel 0 is red now
    assert (out[1, 8:24] == 20).all() and (out[2, 8:24] == 10).all()
    flipped = UnlabelledImages(tmp_path, 32, fliplr=1.0)[0]
    assert (flipped[0, 8:24] == np.arange(31, -1, -1)[None, :]).all()


def test_flips_are_seeded_per_image_and_pass(tmp_path):
    for i in range(20):
        _write(tmp_path / f"{i:02d}.png", np.tile(np.arange(32, dtype=np.uint8)[None, :, None], (32, 1, 3)))
    ds = UnlabelledImages(tmp_path, 32, fliplr=0.5, seed=3)
    flips = [bool(ds[i][0, 0, 0] == 31) for i in range(20)]
    assert 0 < sum(flips) < 20  # some flipped, some not
    assert flips == [bool(UnlabelledImages(tmp_path, 32, 0.5, seed=3)[i][0, 0, 0] == 31) for i in range(20)]
    ds.passes = 1
    assert [bool(ds[i][0, 0, 0] == 31) for i in range(20)] != flips


@pytest.mark.parametrize("kwargs, match", [({"imgsz": 16}, "imgsz"), ({"imgsz": 32, "fliplr": 1.5}, "fliplr")])
def test_bad_dataset_arguments_are_refused(tmp_path, kwargs, match):
    _write(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UsageError, match=match):
        UnlabelledImages(tmp_path, **kwargs)


def _numbered(tmp_path, n):
    """n images whose every pixel holds the image's number (so a batch says which images it holds)."""
    for i in range(n):
        _write(tmp_path / f"{i:02d}.png", np.full((32, 32, 3), i, np.uint8))
    return UnlabelledImages(tmp_path, 32, fliplr=0.0)


def test_endless_batches_cover_a_pass_without_repeats_then_reshuffle(tmp_path):
    ds = _numbered(tmp_path, 7)
    it = endless_batches(ds, 3, seed=0)
    ids = [next(it)[:, 0, 0, 0].tolist() for _ in range(4)]  # 2 full batches per pass (the 7th image dropped)
    assert all(len(b) == 3 for b in ids)
    first_pass, second_pass = ids[0] + ids[1], ids[2] + ids[3]
    assert len(set(first_pass)) == 6 and len(set(second_pass)) == 6
    assert first_pass != second_pass and ds.passes == 1
    again = endless_batches(_numbered(tmp_path / "again", 7), 3, seed=0)
    assert [next(again)[:, 0, 0, 0].tolist() for _ in range(4)] == ids  # seeded: the same on every run


def test_fewer_images_than_the_batch_still_give_full_batches(tmp_path):
    batch = next(endless_batches(_numbered(tmp_path, 2), 5))
    assert tuple(batch.shape) == (5, 3, 32, 32) and set(batch[:, 0, 0, 0].tolist()) <= {0, 1}


def test_synthetic_unlabelled_images_are_the_next_training_tiles_of_the_same_draw(tmp_path):
    cfg = SynthConfig(n_train=3, n_val=1, imgsz=64, seed=7, max_objects=3)
    folder = generate_unlabelled(tmp_path / "unl", cfg, 2)
    longer = generate_synthetic(tmp_path / "longer", SynthConfig(n_train=5, n_val=1, imgsz=64, seed=7, max_objects=3))
    names = [p.name for p in list_images(folder)]
    assert names == ["train_00003.jpg", "train_00004.jpg"]
    for name in names:
        assert (folder / name).read_bytes() == (longer.parent / "images" / "train" / name).read_bytes()
    assert not list(folder.rglob("*.txt"))  # no labels
    stamp = (folder / names[0]).stat().st_mtime_ns
    assert generate_unlabelled(tmp_path / "unl", cfg, 2) == folder and (folder / names[0]).stat().st_mtime_ns == stamp
    assert len(list_images(generate_unlabelled(tmp_path / "unl", cfg, 3))) == 3  # another count: made again


@pytest.mark.parametrize("count", [0, -1, True, 2.5])
def test_a_bad_unlabelled_count_is_refused(tmp_path, count):
    with pytest.raises(UsageError, match="count"):
        generate_unlabelled(tmp_path / "unl", SynthConfig(n_train=1, n_val=1, imgsz=64), count)
