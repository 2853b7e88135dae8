"""Non-maximum suppression in numpy, matching Ultralytics: greedy NMS for axis-aligned boxes, Fast-NMS with
ProbIoU for rotated boxes.

Neither builds the dense N x N overlap matrix. Boxes are ranked by score, candidate pairs are found with a
sort-and-sweep over x-extents (``searchsorted`` + ``repeat``), filtered on y-extents, and the overlap is
computed only for those pairs:

- axis-aligned (``torchvision.ops.nms`` semantics): a box is kept when no *kept* higher-scored box overlaps
  it above the threshold. That recursion is solved by iterating "drop every box with a kept partner" from
  "all kept"; each step fixes at least one more link of the longest suppression chain and the fixed point is
  the greedy answer (usually reached in a few steps).
- rotated (``TorchNMS.fast_nms`` with ``batch_probiou``): a box is dropped when *any* higher-scored box
  overlaps it above the threshold, suppressed or not.

ProbIoU is not zero for disjoint boxes, so the rotated sweep extent is not the box: ProbIoU > t needs the
Bhattacharyya distance below ``B = -ln(1 - (1 - t)^2)``, and that distance is at least
``|d|^2 / (4 * (m1^2 + m2^2) / 12)`` for centre distance ``d`` and longest sides ``m1``, ``m2``; hence a box
of longest side ``m`` can only interact within ``sqrt(B / 3) * m`` of its centre (plus a margin).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np

EPS = 1e-7
PAIR_CHUNK = 1 << 20  # candidate pairs evaluated per step (bounds temporaries to tens of MB)
DENSE_PAIRS_PER_BOX = 32  # above this, greedy NMS switches from pairs to score-ordered blocks
_ROTATED_MARGIN = 1.05  # relative slack on the ProbIoU interaction radius (covers the eps terms)


def _ranks(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``order`` (indices by descending score, ties by index like torch on small inputs) and ``rank``."""
    order = np.argsort(-scores, kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return order, rank


def sweep_counts(lo_sorted: np.ndarray, hi_sorted: np.ndarray) -> np.ndarray:
    """For intervals sorted by start: how many later intervals start before each one ends."""
    counts = np.searchsorted(lo_sorted, hi_sorted, side="right") - np.arange(1, len(lo_sorted) + 1)
    np.maximum(counts, 0, out=counts)
    return counts


def sweep_positions(counts: np.ndarray, max_pairs: int = PAIR_CHUNK) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Pairs ``(i, j)``, ``i < j``, of intervals sorted by start whose ``[lo, hi]`` intersect, in chunks.

    Args:
        counts: :func:`sweep_counts` of the sorted intervals.
        max_pairs: Largest chunk (bounds memory on dense inputs); a chunk holds all pairs of whole rows.

    Yields:
        Two position arrays into the sorted intervals.
    """
    n = len(counts)
    ends = np.cumsum(counts)
    cuts = np.searchsorted(ends, np.arange(max_pairs, int(ends[-1]) if n else 0, max_pairs), side="right")
    bounds = [0, *sorted(set(cuts.tolist()) - {0, n}), n]
    for lo_row, hi_row in zip(bounds[:-1], bounds[1:]):
        rows = np.arange(lo_row, hi_row)
        c = counts[lo_row:hi_row]
        total = int(c.sum())
        if total == 0:
            continue
        first = np.repeat(rows, c)
        offsets = np.cumsum(c) - c - (rows + 1)
        yield first, np.arange(total) - np.repeat(offsets, c)


def sweep_pairs(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All index pairs whose intervals ``[lo, hi]`` intersect, each pair once, without an N x N matrix."""
    order = np.argsort(lo)
    chunks = list(sweep_positions(sweep_counts(lo[order], hi[order]), max_pairs=1 << 62))
    if not chunks:
        empty = np.empty(0, dtype=np.intp)
        return empty, empty
    a, b = chunks[0]
    return order[a], order[b]


def box_iou_pairs(boxes: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of the xyxy boxes ``boxes[a]`` and ``boxes[b]``, pair by pair (torchvision's formula)."""
    ba, bb = boxes[a], boxes[b]
    w = np.minimum(ba[:, 2], bb[:, 2]) - np.maximum(ba[:, 0], bb[:, 0])
    h = np.minimum(ba[:, 3], bb[:, 3]) - np.maximum(ba[:, 1], bb[:, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (area[a] + area[b] - inter)


def _f32(func: np.ufunc, x: np.ndarray) -> np.ndarray:
    """A transcendental evaluated in float64 and rounded to the input dtype: correctly rounded, like torch's
    float32 kernels, where numpy's float32 SIMD versions can be one ulp off (visible on ProbIoU near 1)."""
    return func(x.astype(np.float64)).astype(x.dtype, copy=False)


def covariance(xywhr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian covariance ``[[a, c], [c, b]]`` of rotated boxes (Ultralytics ``_get_covariance_matrix``)."""
    a0 = xywhr[:, 2] ** 2 / 12
    b0 = xywhr[:, 3] ** 2 / 12
    cos, sin = _f32(np.cos, xywhr[:, 4]), _f32(np.sin, xywhr[:, 4])
    cos2, sin2 = cos**2, sin**2
    return a0 * cos2 + b0 * sin2, a0 * sin2 + b0 * cos2, (a0 - b0) * cos * sin


def probiou_pairs(
    xywhr: np.ndarray, a: np.ndarray, b: np.ndarray, cov: tuple[np.ndarray, ...] | None = None
) -> np.ndarray:
    """ProbIoU of ``xywhr[a]`` and ``xywhr[b]`` pair by pair, term for term as Ultralytics' ``batch_probiou``."""
    ca, cb, cc = covariance(xywhr) if cov is None else cov
    a1, b1, c1 = ca[a], cb[a], cc[a]
    a2, b2, c2 = ca[b], cb[b], cc[b]
    dx = xywhr[a, 0] - xywhr[b, 0]
    dy = xywhr[a, 1] - xywhr[b, 1]
    sa, sb, sc = a1 + a2, b1 + b2, c1 + c2
    det = sa * sb - sc**2
    t1 = ((sa * dy**2 + sb * dx**2) / (det + EPS)) * 0.25
    t2 = ((sc * -dx * dy) / (det + EPS)) * 0.5
    d1 = np.maximum(a1 * b1 - c1**2, 0)
    d2 = np.maximum(a2 * b2 - c2**2, 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        t3 = _f32(np.log, det / (4 * np.sqrt(d1 * d2) + EPS) + EPS) * 0.5
    bd = np.clip(t1 + t2 + t3, EPS, 100.0)
    hd = np.sqrt(1.0 - _f32(np.exp, -bd) + EPS)
    return 1 - hd


def probiou_matrix(obb1: np.ndarray, obb2: np.ndarray) -> np.ndarray:
    """Dense ProbIoU between every box of ``obb1`` (N, 5) and ``obb2`` (M, 5); a reference, O(N*M) memory."""
    both = np.concatenate([obb1, obb2]).astype(obb1.dtype, copy=False)
    a = np.repeat(np.arange(len(obb1)), len(obb2))
    b = np.tile(np.arange(len(obb1), len(obb1) + len(obb2)), len(obb1))
    return probiou_pairs(both, a, b).reshape(len(obb1), len(obb2))


def probiou_radius(xywhr: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Distance from each box centre beyond which its ProbIoU with any box is at most ``iou_threshold``."""
    limit = max(-math.log(max(1.0 - (1.0 - iou_threshold) ** 2 + EPS, 1e-30)), 0.0)
    longest = np.maximum(np.abs(xywhr[:, 2]), np.abs(xywhr[:, 3]))
    return (math.sqrt(limit / 3.0) * _ROTATED_MARGIN) * longest + 1e-3


DENSE_ROTATED_MAX = 128  # up to here rotated NMS scores all n(n-1)/2 pairs directly


@functools.lru_cache(maxsize=DENSE_ROTATED_MAX + 1)
def _upper_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs ``i < j`` of ``n`` ranked boxes (cached: a video stream sees the same few sizes)."""
    i, j = np.triu_indices(n, 1)
    i.setflags(write=False)
    j.setflags(write=False)
    return i, j


def _check_threshold(iou_threshold: float) -> None:
    if not 0.0 <= iou_threshold <= 1.0:
        raise ValueError(f"iou threshold must be in [0, 1]; got {iou_threshold}")


def greedy_keep(n: int, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Greedy NMS keep mask over ranked boxes given suppression edges ``src -> dst`` (``src < dst``)."""
    keep = np.ones(n, dtype=bool)
    if src.size == 0:
        return keep
    while True:
        suppressed = np.zeros(n, dtype=bool)
        suppressed[dst[keep[src]]] = True
        new = ~suppressed
        if np.array_equal(new, keep):
            return keep
        keep = new


def box_iou_matrix(b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Dense IoU between xyxy boxes ``b1`` (N, 4) and ``b2`` (M, 4) (torchvision's formula)."""
    w = np.minimum(b1[:, None, 2], b2[None, :, 2]) - np.maximum(b1[:, None, 0], b2[None, :, 0])
    h = np.minimum(b1[:, None, 3], b2[None, :, 3]) - np.maximum(b1[:, None, 1], b2[None, :, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    a1 = (b1[:, 2] - b1[:, 0]) * (b1[:, 3] - b1[:, 1])
    a2 = (b2[:, 2] - b2[:, 0]) * (b2[:, 3] - b2[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / (a1[:, None] + a2[None, :] - inter)


def greedy_blocks(ranked: np.ndarray, iou_threshold: float, max_keep: int, block: int = 128) -> np.ndarray:
    """Greedy NMS over score-ranked xyxy boxes, a block of ranks at a time; for dense overlaps.

    Within a block the survivors are resolved by :func:`greedy_keep`; the block's kept boxes then drop every
    later box they overlap. Stops once ``max_keep`` boxes are kept (later ones cannot change those).

    Returns:
        Kept ranks, ascending, at most ``max_keep``.
    """
    n = len(ranked)
    alive = np.ones(n, dtype=bool)
    kept: list[np.ndarray] = []
    n_kept = 0
    for start in range(0, n, block):
        end = min(start + block, n)
        members = start + np.flatnonzero(alive[start:end])
        if members.size == 0:
            continue
        src, dst = np.nonzero(np.triu(box_iou_matrix(ranked[members], ranked[members]) > iou_threshold, 1))
        winners = members[greedy_keep(members.size, src, dst)]
        kept.append(winners)
        n_kept += winners.size
        if n_kept >= max_keep:
            break
        rest = end + np.flatnonzero(alive[end:])
        if rest.size:
            alive[rest[(box_iou_matrix(ranked[winners], ranked[rest]) > iou_threshold).any(0)]] = False
    return np.concatenate(kept)[:max_keep] if kept else np.empty(0, dtype=np.intp)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Greedy NMS of xyxy ``boxes`` with ``torchvision.ops.nms`` semantics.

    Sparse inputs go through candidate pairs from the sweep; dense ones (many more pairs than boxes) through
    :func:`greedy_blocks`, which stops at ``max_keep``.

    Args:
        boxes: (N, 4) xyxy boxes (add ``class * max_wh`` offsets beforehand for class-aware NMS).
        scores: (N,) scores.
        iou_threshold: A box is suppressed by a kept higher-scored box with IoU above this.
        max_keep: Return at most this many (the highest-scored survivors); None keeps all.

    Returns:
        Indices of the kept boxes, by descending score.
    """
    _check_threshold(iou_threshold)
    n = len(scores)
    max_keep = n if max_keep is None else int(max_keep)
    if n == 0:
        return np.empty(0, dtype=np.intp)
    order, rank = _ranks(scores)
    by_x = np.argsort(boxes[:, 0])
    sb, sr = boxes[by_x], rank[by_x]  # the sweep works in x-sorted positions
    counts = sweep_counts(sb[:, 0], sb[:, 2])
    if int(counts.sum()) > DENSE_PAIRS_PER_BOX * n:
        return order[greedy_blocks(boxes[order], iou_threshold, max_keep)]
    src, dst = [], []
    for a, b in sweep_positions(counts):
        y_hit = (sb[a, 1] <= sb[b, 3]) & (sb[b, 1] <= sb[a, 3])
        a, b = a[y_hit], b[y_hit]
        hit = box_iou_pairs(sb, a, b) > iou_threshold
        ra, rb = sr[a[hit]], sr[b[hit]]
        src.append(np.minimum(ra, rb))
        dst.append(np.maximum(ra, rb))
    edges = (np.concatenate(src), np.concatenate(dst)) if src else (np.empty(0, np.intp),) * 2
    return order[greedy_keep(n, *edges)][:max_keep]


def rotated_nms(xywhr: np.ndarray, scores: np.ndarray, iou_threshold: float, max_keep: int | None = None) -> np.ndarray:
    """Fast-NMS of rotated boxes with ProbIoU, as Ultralytics' ``TorchNMS.fast_nms(..., iou_func=batch_probiou)``.

    A box is dropped when any higher-scored box (suppressed or not) has ProbIoU above the threshold with it.

    Args:
        xywhr: (N, 5) boxes, centre, size and angle in radians (add class offsets to x, y for class-aware NMS).
        scores: (N,) scores.
        iou_threshold: ProbIoU above which the lower-scored box of a pair is dropped.
        max_keep: Return at most this many (the highest-scored survivors); None keeps all.

    Returns:
        Indices of the kept boxes, by descending score.
    """
    _check_threshold(iou_threshold)
    n = len(scores)
    if n == 0:
        return np.empty(0, dtype=np.intp)
    order, rank = _ranks(scores)
    if n <= DENSE_ROTATED_MAX:  # few candidates (the usual frame): every pair at once beats the sweep's overhead
        i, j = _upper_pairs(n)
        keep = np.ones(n, dtype=bool)
        keep[j[probiou_pairs(xywhr[order], i, j) > iou_threshold]] = False  # ranked: j scores below i
        return order[keep][:max_keep]
    r = probiou_radius(xywhr, iou_threshold)
    lo = xywhr[:, 0] - r
    by_x = np.argsort(lo)
    sb, sr, srad = xywhr[by_x], rank[by_x], r[by_x]  # the sweep works in x-sorted positions
    y = sb[:, 1]
    keep = np.ones(n, dtype=bool)
    for a, b in sweep_positions(sweep_counts(lo[by_x], sb[:, 0] + srad)):
        near = np.abs(y[a] - y[b]) <= srad[a] + srad[b]
        a, b = a[near], b[near]
        hit = probiou_pairs(sb, a, b) > iou_threshold
        keep[np.maximum(sr[a[hit]], sr[b[hit]])] = False  # ranks: the lower-scored box of each pair goes
    return order[keep][:max_keep]
