"""Paper-comparable scores of whole images: DOTA_devkit's ``dota_evaluation_task1.py`` in numpy.

Where it lives: the scorer is the measuring side, not the runtime that ships to the drone, so it is in
``admd_deploy`` (whose CLI and tests reach it) and not in ``admd_edge``. It imports neither torch nor
Ultralytics (numpy and OpenCV only), so a scoring run costs no torch start-up.

Geometry is reused, not rewritten: polygon areas are :func:`admd_deploy.data.polygons.polygon_area` and the
intersection of two convex polygons is OpenCV's ``intersectConvexConvex`` (as ``data._geometry._overlap``
uses it). DOTA_devkit intersects general polygons (``polyiou``); oriented boxes are convex, and a rare
non-convex label quadrilateral is replaced by its convex hull here.

The algorithm, per class, exactly as ``voc_eval`` of the devkit:

1. ``npos`` = ground-truth objects of the class that are not difficult.
2. Detections of the class from every image are sorted by descending confidence. Ties keep their input order
   (image order, then detection order): a stable sort, which is what the devkit's ``np.argsort`` gives on
   small inputs; tied detections can change the AP, so the order is part of the contract.
3. Each detection takes the ground truth of its image with the largest polygon IoU (first on ties); if that
   IoU is above ``iou_threshold`` (strictly, ``ovmax > 0.5``): a difficult match is neither TP nor FP, an
   unmatched non-difficult one is a TP (and is now taken), an already-taken one is an FP. Otherwise FP.
4. ``recall = cumsum(tp) / npos``, ``precision = cumsum(tp) / max(cumsum(tp + fp), eps)``.
5. AP: ``"voc07"`` averages, at recall 0, 0.1, ..., 1.0, the highest precision at a recall at least that
   (0 where none); ``"area"`` (VOC2010 and later) is the area under the monotone precision envelope.

Which protocol uses which AP (:data:`PROTOCOL_AP`): DOTA (devkit and mmrotate's ``DOTAMetric`` defaults)
``voc07``; DIOR and DIOR-R papers report VOC07-style mAP@0.5, ``voc07`` as well. ``ap=`` overrides it.

A class with no ground truth (``npos == 0``) gets AP 0 and, as in the devkit, still counts in the mean:
``mAP`` averages over every class name. mmrotate averages only over classes with ground truth; that mean
is reported as ``map_present``. A class with ground truth but no detection gets AP 0.
"""

from __future__ import annotations

from admd_deploy.errors import UsageError

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from admd_deploy.data.polygons import polygon_area

LOGGER = logging.getLogger(__name__)

AP_KINDS = ("voc07", "area")
PROTOCOL_AP = {"dota": "voc07", "dior": "voc07", "dior-r": "voc07"}


@dataclass(frozen=True)
class ImageTruth:
    """Ground truth of one image: ``polygons`` (n, 4, 2) pixels, ``classes`` (n,) ids, ``difficult`` (n,) bool."""

    polygons: np.ndarray
    classes: np.ndarray
    difficult: np.ndarray


@dataclass(frozen=True)
class ImageDetections:
    """Detections of one image: ``polygons`` (n, 4, 2) pixels, ``scores`` (n,), ``classes`` (n,) ids."""

    polygons: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


@dataclass
class ClassResult:
    """One class: AP, non-difficult ground-truth count, detections, and the precision/recall curve."""

    ap: float
    npos: int
    ndet: int
    recall: np.ndarray = field(repr=False)
    precision: np.ndarray = field(repr=False)


@dataclass
class Scores:
    """Per-class results by name, ``map`` (mean over every class, the devkit's) and ``map_present``."""

    classes: dict[str, ClassResult]
    map: float
    map_present: float
    ap_kind: str
    iou_threshold: float

    def to_dict(self) -> dict[str, object]:
        """JSON-ready summary (AP per class, counts, both means)."""
        return {"map": self.map, "map_present": self.map_present, "ap_kind": self.ap_kind,
                "iou_threshold": self.iou_threshold,
                "classes": {n: {"ap": r.ap, "npos": r.npos, "ndet": r.ndet} for n, r in self.classes.items()}}


def _convex(poly: np.ndarray) -> np.ndarray:
    return cv2.convexHull(np.asarray(poly, dtype=np.float32).reshape(-1, 2)).reshape(-1, 2)


def polygon_iou(poly: np.ndarray, others: np.ndarray) -> np.ndarray:
    """IoU of one polygon (k, 2) with each of ``others`` (n, k, 2), both convex (hulls taken otherwise)."""
    others = np.asarray(others, dtype=np.float64).reshape(-1, *np.shape(poly))
    out = np.zeros(len(others))
    a = _convex(poly)
    area_a = float(polygon_area(a[None].astype(np.float64))[0])
    for i, other in enumerate(others):
        b = _convex(other)
        inter, _ = cv2.intersectConvexConvex(a, b)
        union = area_a + float(polygon_area(b[None].astype(np.float64))[0]) - float(inter)
        out[i] = float(inter) / union if union > 0 else 0.0
    return out


def average_precision(recall: np.ndarray, precision: np.ndarray, kind: str = "voc07") -> float:
    """AP from a recall/precision curve (the devkit's ``voc_ap``): ``"voc07"`` 11-point or ``"area"``.

    Raises:
        ValueError: An unknown ``kind``.
    """
    if kind not in AP_KINDS:
        raise UsageError(f"ap kind must be one of {', '.join(AP_KINDS)}; got {kind!r}")
    recall, precision = np.asarray(recall, dtype=np.float64), np.asarray(precision, dtype=np.float64)
    if kind == "voc07":
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):  # the devkit's own grid (its 0.3 is 0.30000000000000004)
            above = recall >= t
            ap += (float(precision[above].max()) if above.any() else 0.0) / 11.0
        return ap
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def _hbb(polys: np.ndarray) -> np.ndarray:
    return np.concatenate([polys.min(axis=1), polys.max(axis=1)], axis=1)


def class_result(detections: Sequence[tuple[str, float, np.ndarray]],
                 truths: Mapping[str, tuple[np.ndarray, np.ndarray]], iou_threshold: float = 0.5,
                 ap_kind: str = "voc07") -> ClassResult:
    """AP of one class (the devkit's ``voc_eval``).

    Args:
        detections: ``(image_id, score, polygon (4, 2))`` of the class, in input order.
        truths: ``image_id -> (polygons (n, 4, 2), difficult (n,))`` of the class; images without an entry have
            no object of the class (their detections are false positives).
        iou_threshold: A match needs polygon IoU above this (strictly).
        ap_kind: ``"voc07"`` or ``"area"``.
    """
    npos = int(sum(int((~np.asarray(d, bool)).sum()) for _, d in truths.values()))
    taken = {k: np.zeros(len(d), dtype=bool) for k, (_, d) in truths.items()}
    boxes = {k: _hbb(np.asarray(p, np.float64).reshape(-1, 4, 2)) for k, (p, _) in truths.items()}
    scores = np.array([float(s) for _, s, _ in detections], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    tp, fp = np.zeros(len(order)), np.zeros(len(order))
    for rank, d in enumerate(order):
        image_id, _, poly = detections[d]
        poly = np.asarray(poly, np.float64).reshape(4, 2)
        polys, difficult = truths.get(image_id, (np.zeros((0, 4, 2)), np.zeros(0, bool)))
        ovmax, jmax = -np.inf, -1
        if len(polys):
            gt = boxes[image_id]
            lo, hi = poly.min(0), poly.max(0)  # cheap prefilter; the devkit's "+1" boxes overlap exactly then
            near = np.flatnonzero((gt[:, 0] <= hi[0] + 1) & (gt[:, 2] + 1 >= lo[0]) & (gt[:, 1] <= hi[1] + 1)
                                  & (gt[:, 3] + 1 >= lo[1]))
            if near.size:
                ious = polygon_iou(poly, np.asarray(polys, np.float64)[near])
                ovmax, jmax = float(ious.max()), int(near[int(ious.argmax())])
        if ovmax > iou_threshold:
            if not difficult[jmax]:
                if not taken[image_id][jmax]:
                    tp[rank] = 1.0
                    taken[image_id][jmax] = True
                else:
                    fp[rank] = 1.0
        else:
            fp[rank] = 1.0
    tp, fp = np.cumsum(tp), np.cumsum(fp)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp / float(npos) if npos else np.full_like(tp, np.nan)
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).eps)
    ap = average_precision(recall, precision, ap_kind) if npos else 0.0
    return ClassResult(ap, npos, len(order), recall, precision)


def evaluate(detections: Mapping[str, ImageDetections], truths: Mapping[str, ImageTruth], names: Sequence[str],
             *, iou_threshold: float = 0.5, ap_kind: str | None = None, protocol: str = "dota") -> Scores:
    """Score whole-image detections against ground truth, class by class.

    Args:
        detections: ``image_id -> ImageDetections`` (images missing here have no detections).
        truths: ``image_id -> ImageTruth``; detections of an image missing here are all false positives.
        names: Class names in id order; every one gets an AP (0 without ground truth, see the module notes).
        iou_threshold: Polygon IoU a match must exceed (0.5 for DOTA and DIOR).
        ap_kind: ``"voc07"`` or ``"area"``; None takes the protocol's (:data:`PROTOCOL_AP`).
        protocol: ``"dota"``, ``"dior"`` or ``"dior-r"`` (only chooses the default AP kind).

    Raises:
        ValueError: An unknown protocol or AP kind.
    """
    if protocol not in PROTOCOL_AP:
        raise UsageError(f"protocol must be one of {', '.join(PROTOCOL_AP)}; got {protocol!r}")
    kind = ap_kind or PROTOCOL_AP[protocol]
    average_precision(np.zeros(0), np.zeros(0), kind)  # validates the kind before any work
    results: dict[str, ClassResult] = {}
    for c, name in enumerate(names):
        dets = [(image_id, s, p) for image_id, d in detections.items()
                for s, p, k in zip(d.scores.tolist(), d.polygons, d.classes.tolist()) if int(k) == c]
        cls_truths = {}
        for image_id, t in truths.items():
            mask = np.asarray(t.classes) == c
            cls_truths[image_id] = (np.asarray(t.polygons).reshape(-1, 4, 2)[mask], np.asarray(t.difficult, bool)[mask])
        results[name] = class_result(dets, cls_truths, iou_threshold, kind)
    aps = [r.ap for r in results.values()]
    present = [r.ap for r in results.values() if r.npos > 0]
    return Scores(results, float(np.mean(aps)) if aps else 0.0, float(np.mean(present)) if present else 0.0,
                  kind, iou_threshold)


def polygon_nms(polygons: np.ndarray, scores: np.ndarray, iou_threshold: float = 0.1) -> np.ndarray:
    """Greedy polygon NMS (the devkit's ``py_cpu_nms_poly`` used when merging patches); kept indices by score."""
    polygons = np.asarray(polygons, np.float64).reshape(-1, 4, 2)
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    boxes = _hbb(polygons)
    keep: list[int] = []
    while order.size:
        i, rest = int(order[0]), order[1:]
        keep.append(i)
        b = boxes[rest]
        near = (b[:, 0] <= boxes[i, 2]) & (b[:, 2] >= boxes[i, 0]) & (b[:, 1] <= boxes[i, 3]) & (b[:, 3] >= boxes[i, 1])
        drop = np.zeros(rest.size, dtype=bool)
        if near.any():
            drop[near] = polygon_iou(polygons[i], polygons[rest[near]]) > iou_threshold
        order = rest[~drop]
    return np.array(keep, dtype=np.intp)


def write_task1(folder: str | Path, detections: Mapping[str, ImageDetections], names: Sequence[str]) -> list[Path]:
    """Write the DOTA server's submission files: ``Task1_<class>.txt``, lines ``image_id score x1 y1 ... x4 y4``.

    Every class gets a file (empty when it has no detection), as the server expects one per class.

    Returns:
        The files written, in class order.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines: dict[int, list[str]] = {c: [] for c in range(len(names))}
    for image_id, d in detections.items():
        polys = np.asarray(d.polygons).reshape(-1, 8).tolist()
        for score, poly, c in zip(d.scores.tolist(), polys, d.classes.tolist()):
            if int(c) in lines:
                lines[int(c)].append(f"{image_id} {score:.6f} " + " ".join(f"{v:.1f}" for v in poly))
    paths = []
    for c, name in enumerate(names):
        path = folder / f"Task1_{name}.txt"
        path.write_text("".join(line + "\n" for line in lines[c]), encoding="utf-8")
        paths.append(path)
    return paths


def read_task1(folder: str | Path, names: Sequence[str]) -> dict[str, ImageDetections]:
    """Read ``Task1_<class>.txt`` files back into :class:`ImageDetections` per image (missing files: none)."""
    rows: dict[str, list[tuple[float, list[float], int]]] = {}
    for c, name in enumerate(names):
        path = Path(folder) / f"Task1_{name}.txt"
        if not path.is_file():
            continue
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            tokens = line.split()
            if not tokens:
                continue
            if len(tokens) != 10:
                raise UsageError(f"{path}:{lineno}: expected 'image_id score x1 y1 ... x4 y4', got {line!r}")
            rows.setdefault(tokens[0], []).append((float(tokens[1]), [float(t) for t in tokens[2:]], c))
    return {k: ImageDetections(np.array([r[1] for r in v]).reshape(-1, 4, 2), np.array([r[0] for r in v]),
                               np.array([r[2] for r in v], dtype=np.int64)) for k, v in rows.items()}


def iter_class_lines(scores: Scores) -> Iterable[str]:
    """Human-readable table lines: ``class  AP  npos  ndet`` then the means."""
    for name, r in scores.classes.items():
        yield f"{name:<20} {r.ap * 100:6.2f}  npos {r.npos:5d}  ndet {r.ndet:6d}"
    yield f"{'mAP (' + scores.ap_kind + ', all classes)':<32} {scores.map * 100:6.2f}"
    yield f"{'mAP (classes with ground truth)':<32} {scores.map_present * 100:6.2f}"
