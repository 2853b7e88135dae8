"""The INT8 calibration inputs use the edge package's letterbox: pixel-identical to Ultralytics' LetterBox."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from admd_deploy.pipeline.exporting import letterboxed


def ultralytics_letterboxed(paths, imgsz: int) -> np.ndarray:
    """What ``letterboxed`` computed before, with Ultralytics' ``LetterBox`` (its val preprocessing, rect=False)."""
    from ultralytics.data.augment import LetterBox

    lb = LetterBox((imgsz, imgsz), auto=False, scale_fill=False, scaleup=True, center=True)
    batch = [lb(image=cv2.imread(str(p)))[..., ::-1].transpose(2, 0, 1) for p in paths]
    return np.ascontiguousarray(np.stack(batch)).astype(np.float32) / 255.0


@pytest.mark.parametrize("imgsz", [64, 96, 640])
def test_calibration_inputs_equal_ultralytics_letterbox_bit_for_bit(tmp_path, imgsz):
    rng = np.random.default_rng(0)
    shapes = [(333, 517), (517, 333), (7, 3), (64, 64), (479, 641), (1, 200), (1000, 10)]  # odd, portrait, landscape
    paths = []
    for i, (h, w) in enumerate(shapes):
        p = tmp_path / f"{i}-{h}x{w}.png"
        assert cv2.imwrite(str(p), rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        paths.append(p)
    ours, reference = letterboxed(paths, imgsz), ultralytics_letterboxed(paths, imgsz)
    assert ours.dtype == reference.dtype == np.float32
    assert ours.shape == reference.shape == (len(shapes), 3, imgsz, imgsz)
    assert np.array_equal(ours, reference)
