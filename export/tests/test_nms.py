"""NMS and rotated NMS: hand cases, agreement with Ultralytics, and a dense reference on 10,000 boxes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from admd_edge import nms as nms_module
from admd_edge.nms import nms, probiou_matrix, rotated_nms, sweep_pairs
from admd_edge.postprocess import non_max_suppression


def raw_output(seed: int, nc: int, anchors: int, rotated: bool, size: float = 640, clusters: int = 30) -> np.ndarray:
    """A crafted raw YOLO output (C, A): boxes clustered so that many candidates overlap, random scores."""
    rng = np.random.default_rng(seed)
    pred = np.zeros((4 + nc + int(rotated), anchors), np.float32)
    centres = rng.uniform(0, size, (clusters, 2))
    pred[0:2] = (centres[rng.integers(0, clusters, anchors)] + rng.normal(0, 8, (anchors, 2))).T
    pred[2:4] = rng.uniform(10, 80, (2, anchors))
    pred[4 : 4 + nc] = rng.uniform(0, 1, (nc, anchors)) ** 3
    if rotated:
        pred[-1] = rng.uniform(-math.pi / 4, 3 * math.pi / 4, anchors)
    return pred


def ultralytics_nms(pred: np.ndarray, conf: float, iou: float, rotated: bool, nc: int, **kwargs: object) -> np.ndarray:
    import torch
    from ultralytics.utils.nms import non_max_suppression as reference

    out = reference(torch.from_numpy(pred[None].copy()), conf, iou, nc=nc if rotated else 0, rotated=rotated, **kwargs)
    return out[0].numpy()


def test_two_overlapping_boxes_of_one_class_keep_the_higher_score() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11]], np.float32)
    assert nms(boxes, np.array([0.8, 0.9], np.float32), 0.5).tolist() == [1]


def test_overlapping_boxes_of_different_classes_are_both_kept() -> None:
    pred = np.zeros((6, 2), np.float32)
    pred[:4] = np.array([[50, 50, 20, 20], [51, 51, 20, 20]], np.float32).T
    pred[4:, 0] = [0.9, 0.0]
    pred[4:, 1] = [0.0, 0.8]
    rows = non_max_suppression(pred, 0.25, 0.5)
    assert rows[:, 5].tolist() == [0.0, 1.0]
    assert len(non_max_suppression(pred, 0.25, 0.5, agnostic=True)) == 1


def test_greedy_nms_keeps_a_box_whose_suppressor_was_itself_suppressed() -> None:
    # a (best) suppresses b, b would suppress c, but a and c do not overlap: greedy keeps a and c.
    boxes = np.array([[0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7], np.float32), 0.3).tolist() == [0, 2]


def test_rotated_fast_nms_drops_a_box_overlapping_any_higher_box_even_a_suppressed_one() -> None:
    # Ultralytics' rotated NMS is Fast-NMS: the same chain drops c too.
    xywhr = np.array([[5, 5, 10, 10, 0], [9, 5, 10, 10, 0], [13, 5, 10, 10, 0]], np.float32)
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    assert rotated_nms(xywhr, scores, 0.3).tolist() == [0]


def test_a_box_rotated_by_90_degrees_with_swapped_sides_is_the_same_box() -> None:
    a = np.array([[100, 100, 40, 10, 0.0]], np.float32)
    b = np.array([[100, 100, 10, 40, math.pi / 2]], np.float32)
    assert probiou_matrix(a, b)[0, 0] == pytest.approx(1.0, abs=1e-3)
    assert rotated_nms(np.concatenate([a, b]), np.array([0.9, 0.8], np.float32), 0.7).tolist() == [0]


def test_a_cross_of_two_boxes_at_90_degrees_overlaps_less_than_the_threshold() -> None:
    xywhr = np.array([[100, 100, 40, 10, 0.0], [100, 100, 40, 10, math.pi / 2]], np.float32)
    iou = probiou_matrix(xywhr[:1], xywhr[1:])[0, 0]
    assert 0.05 < iou < 0.7
    assert rotated_nms(xywhr, np.array([0.9, 0.8], np.float32), 0.7).tolist() == [0, 1]
    assert rotated_nms(xywhr, np.array([0.9, 0.8], np.float32), iou - 1e-3).tolist() == [0]


def test_probiou_matches_ultralytics_batch_probiou() -> None:
    import torch
    from ultralytics.utils.metrics import batch_probiou

    rng = np.random.default_rng(0)
    boxes = np.column_stack(
        [rng.uniform(0, 50, 40), rng.uniform(0, 50, 40), rng.uniform(1, 30, (40, 2)), rng.uniform(-1, 3, 40)]
    ).astype(np.float32)
    expected = batch_probiou(torch.from_numpy(boxes), torch.from_numpy(boxes)).numpy()
    assert np.allclose(probiou_matrix(boxes, boxes), expected, atol=1e-5)


def test_sweep_pairs_finds_exactly_the_intersecting_intervals() -> None:
    rng = np.random.default_rng(3)
    lo = rng.uniform(0, 100, 300)
    hi = lo + rng.uniform(0, 5, 300)
    a, b = sweep_pairs(lo, hi)
    found = {tuple(sorted(p)) for p in zip(a.tolist(), b.tolist())}
    i, j = np.triu_indices(300, 1)
    expected = {(x, y) for x, y in zip(i.tolist(), j.tolist()) if lo[x] <= hi[y] and lo[y] <= hi[x]}
    assert found == expected and len(found) == len(a)


CASES = [(seed, conf, iou) for seed in range(4) for conf, iou in [(0.25, 0.7), (0.1, 0.45), (0.05, 0.1)]]


@pytest.mark.parametrize("seed, conf, iou", CASES)
def test_detect_nms_agrees_with_ultralytics(seed: int, conf: float, iou: float) -> None:
    pred = raw_output(seed, nc=1 + seed, anchors=1500 + 400 * seed, rotated=False)
    expected = ultralytics_nms(pred, conf, iou, rotated=False, nc=0)
    ours = non_max_suppression(pred, conf, iou)
    assert ours.shape == expected.shape and len(ours) > 10
    assert np.allclose(ours, expected, atol=1e-4)


@pytest.mark.parametrize("seed, conf, iou", CASES)
def test_rotated_nms_agrees_with_ultralytics(seed: int, conf: float, iou: float) -> None:
    nc = 1 + seed
    pred = raw_output(seed + 100, nc=nc, anchors=1500 + 400 * seed, rotated=True)
    expected = ultralytics_nms(pred, conf, iou, rotated=True, nc=nc)
    ours = non_max_suppression(pred, conf, iou, rotated=True, nc=nc)
    assert ours.shape == expected.shape and len(ours) > 10
    assert np.allclose(ours, expected, atol=1e-4)


@pytest.mark.parametrize("rotated", [False, True])
def test_agnostic_nms_and_class_filter_agree_with_ultralytics(rotated: bool) -> None:
    pred = raw_output(7, nc=3, anchors=1200, rotated=rotated)
    nc = 3 if rotated else 0
    for kwargs in ({"agnostic": True}, {"classes": [0, 2]}, {"max_det": 17}):
        expected = ultralytics_nms(pred, 0.2, 0.5, rotated=rotated, nc=3, **kwargs)
        ours = non_max_suppression(pred, 0.2, 0.5, rotated=rotated, nc=nc, **kwargs)
        assert ours.shape == expected.shape and np.allclose(ours, expected, atol=1e-4), kwargs


def test_dense_overlaps_take_the_block_path_and_still_agree_with_ultralytics() -> None:
    rng = np.random.default_rng(11)
    pred = np.zeros((6, 3000), np.float32)
    pred[0:2] = rng.uniform(300, 340, (2, 3000))
    pred[2:4] = rng.uniform(200, 400, (2, 3000))  # every box overlaps every other: ~4.5M pairs
    pred[4:6] = rng.uniform(0, 1, (2, 3000))
    expected = ultralytics_nms(pred, 0.05, 0.7, rotated=False, nc=0)
    ours = non_max_suppression(pred, 0.05, 0.7)
    assert ours.shape == expected.shape and np.allclose(ours, expected, atol=1e-4)


def test_block_path_and_pair_path_give_the_same_greedy_result(monkeypatch: pytest.MonkeyPatch) -> None:
    pred = raw_output(5, nc=1, anchors=2500, rotated=False, clusters=5)
    monkeypatch.setattr(nms_module, "DENSE_PAIRS_PER_BOX", 10**9)
    by_pairs = non_max_suppression(pred, 0.01, 0.5, max_det=10**6)
    monkeypatch.setattr(nms_module, "DENSE_PAIRS_PER_BOX", 0)
    by_blocks = non_max_suppression(pred, 0.01, 0.5, max_det=10**6)
    assert np.array_equal(by_pairs, by_blocks)


def dense_fast_nms_reference(xywhr: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Ultralytics' Fast-NMS on the full N x N ProbIoU matrix (its own ``batch_probiou`` and ``triu``)."""
    import torch
    from ultralytics.utils.metrics import batch_probiou

    order = torch.argsort(torch.from_numpy(scores), descending=True, stable=True)
    boxes = torch.from_numpy(xywhr)[order]
    ious = batch_probiou(boxes, boxes).triu_(diagonal=1)
    return order[(ious > iou).sum(0) <= 0].numpy()


def test_rotated_nms_on_10000_boxes_equals_the_dense_reference() -> None:
    """10,000 boxes of 4 classes on a 1024 px image. The reference is dense within each class (4 matrices of
    2,500 x 2,500); across classes the 7680 px offsets put ProbIoU at 0, checked on a sample."""
    rng = np.random.default_rng(2024)
    n, classes = 10_000, 4
    xywhr = np.column_stack(
        [
            rng.uniform(0, 1024, n),
            rng.uniform(0, 1024, n),
            rng.uniform(8, 64, n),
            rng.uniform(8, 64, n),
            rng.uniform(-math.pi / 4, 3 * math.pi / 4, n),
        ]
    ).astype(np.float32)
    cls = rng.integers(0, classes, n).astype(np.float32)
    xywhr[:, :2] += cls[:, None] * 7680  # Ultralytics' class offset
    scores = rng.uniform(0.25, 1, n).astype(np.float32)
    assert probiou_matrix(xywhr[cls == 0][:200], xywhr[cls == 1][:200]).max() <= 0
    iou = 0.5
    kept = []
    for c in range(classes):
        members = np.flatnonzero(cls == c)
        kept.append(members[dense_fast_nms_reference(xywhr[members], scores[members], iou)])
    expected = np.concatenate(kept)
    expected = expected[np.argsort(-scores[expected], kind="stable")]
    ours = rotated_nms(xywhr, scores, iou)
    assert 0 < len(ours) < n
    assert np.array_equal(ours, expected)


@pytest.mark.parametrize("iou", [-0.1, 1.5])
def test_thresholds_outside_0_1_are_refused(iou: float) -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        nms(np.zeros((1, 4), np.float32), np.ones(1, np.float32), iou)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rotated_nms(np.zeros((1, 5), np.float32), np.ones(1, np.float32), iou)


def dense_fast_nms(xywhr: np.ndarray, scores: np.ndarray, thr: float) -> np.ndarray:
    """The reference: Ultralytics' fast_nms on a full upper-triangular ProbIoU matrix."""
    order = np.argsort(-scores, kind="stable")
    iou = np.triu(probiou_matrix(xywhr[order], xywhr[order]), 1)
    return order[~(iou > thr).any(0)]


@pytest.mark.parametrize("n", [2, 40, nms_module.DENSE_ROTATED_MAX, nms_module.DENSE_ROTATED_MAX + 1, 400])
def test_rotated_nms_equals_the_dense_reference_on_both_sides_of_the_small_n_path(n: int) -> None:
    rng = np.random.default_rng(n)
    xywhr = np.column_stack([rng.uniform(0, 200, (n, 2)), rng.uniform(8, 40, (n, 2)), rng.uniform(0, np.pi, n)])
    xywhr = xywhr.astype(np.float32)
    scores = rng.random(n).astype(np.float32)
    assert np.array_equal(rotated_nms(xywhr, scores, 0.5), dense_fast_nms(xywhr, scores, 0.5))
