"""Letterboxing must be pixel-identical to Ultralytics' predict path."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from admd_edge.preprocess import Preprocessor, letterbox_geometry, letterbox_image, tensor_from_letterboxed

SHAPES = [(810, 1080), (333, 517), (517, 333), (1, 2000), (7, 3), (64, 64), (479, 641), (1000, 10)]
SIZES = [64, 256, 640, (320, 640)]


def ultralytics_letterbox(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    from ultralytics.data.augment import LetterBox

    return LetterBox(size, auto=False, stride=32)(image=image)


def ultralytics_tensor(letterboxed: np.ndarray) -> np.ndarray:
    """The uint8 -> tensor steps of ``BasePredictor.preprocess`` (torch), for one image."""
    import torch

    im = torch.from_numpy(letterboxed).unsqueeze(0).permute(0, 3, 1, 2).contiguous().flip(1)
    return im.float().div_(255).numpy()


def odd_image(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*shape, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_letterbox_is_pixel_identical_to_ultralytics(shape: tuple[int, int], size: int) -> None:
    image = odd_image(shape)
    expected = ultralytics_letterbox(image, size)
    ours, _ = letterbox_image(image, size)
    assert ours.shape == expected.shape
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("shape", SHAPES)
def test_preprocessor_tensor_equals_ultralytics_tensor_bit_for_bit(shape: tuple[int, int], size: int) -> None:
    image = odd_image(shape, seed=1)
    tensor, (lb,) = Preprocessor(size)(image)
    expected = ultralytics_tensor(ultralytics_letterbox(image, size))
    assert tensor.dtype == np.float32 and tensor.shape == expected.shape
    assert np.array_equal(tensor, expected)
    assert lb == letterbox_geometry(image.shape, size)


def test_real_photo_tensor_equals_ultralytics_tensor(bus_image: np.ndarray) -> None:
    for size in (64, 640):
        tensor, _ = Preprocessor(size)(bus_image)
        assert np.abs(tensor - ultralytics_tensor(ultralytics_letterbox(bus_image, size))).max() == 0


def test_preprocessor_repads_when_the_image_size_changes() -> None:
    pre = Preprocessor(64)
    wide, tall = odd_image((20, 100), 2), odd_image((100, 20), 3)
    for image in (wide, tall, wide, tall):
        tensor, _ = pre(image)
        assert np.array_equal(tensor, tensor_from_letterboxed([letterbox_image(image, 64)[0]]))


def test_preprocessor_fills_a_batch_in_order() -> None:
    images = [odd_image((30, 50), 4), odd_image((50, 30), 5), odd_image((64, 64), 6)]
    tensor, geometry = Preprocessor(64, batch=4)(images)
    assert tensor.shape == (3, 3, 64, 64)
    assert np.array_equal(tensor, tensor_from_letterboxed([letterbox_image(im, 64)[0] for im in images]))
    assert [g.orig_shape for g in geometry] == [(30, 50), (50, 30), (64, 64)]


def test_preprocessor_converts_gray_and_bgra_like_bgr() -> None:
    gray = odd_image((40, 60))[..., 0]
    bgr = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    reference = Preprocessor(64)(bgr)[0].copy()
    assert np.array_equal(Preprocessor(64)(gray)[0], reference)
    assert np.array_equal(Preprocessor(64)(bgra)[0], reference)


def test_fp16_preprocessor_rounds_the_fp32_tensor() -> None:
    image = odd_image((50, 70))
    half, _ = Preprocessor(64, dtype=np.float16)(image)
    assert half.dtype == np.float16
    assert np.array_equal(half, Preprocessor(64)(image)[0].astype(np.float16))


def test_geometry_maps_boxes_back_with_ultralytics_gains() -> None:
    lb = letterbox_geometry((810, 1080), 640)
    assert lb.new_unpad == (640, 480) and (lb.top, lb.bottom, lb.left, lb.right) == (80, 80, 0, 0)
    assert lb.gain == (640 / 1080, 480 / 810) and lb.pad == (0, 80)


@pytest.mark.parametrize(
    "images, size, message",
    [
        (np.zeros((10, 10, 3), np.float32), 64, "uint8"),
        (np.zeros((10, 10, 2), np.uint8), 64, "shape"),
        ([np.zeros((10, 10, 3), np.uint8)] * 2, 64, "batch"),
        (np.zeros((0, 10, 3), np.uint8), 64, "positive"),
    ],
)
def test_bad_images_are_refused_with_what_is_valid(images: object, size: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Preprocessor(size)(images)


@pytest.mark.parametrize("size", [0, -5, (64,), (64, 64, 3), 64.0])
def test_bad_sizes_are_refused(size: object) -> None:
    with pytest.raises(ValueError, match="image size"):
        Preprocessor(size)
