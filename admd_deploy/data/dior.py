"""Convert DIOR (horizontal boxes) or DIOR-R (oriented boxes) into an Ultralytics YOLO dataset.

Input (the official release)::

    src/JPEGImages-trainval/00001.jpg   src/JPEGImages-test/11726.jpg        (or a single src/JPEGImages/)
    src/Annotations/Horizontal Bounding Boxes/00001.xml                     (DIOR; or src/Annotations/*.xml)
    src/Annotations/Oriented Bounding Boxes/00001.xml                       (DIOR-R)
    src/ImageSets/Main/{train,val,test}.txt                                 (image ids, one a line)

DIOR XML is Pascal VOC: ``<object><name>`` and ``<bndbox><xmin><ymin><xmax><ymax>``. DIOR-R puts the four
corners in ``<robndbox>`` as ``x_left_top y_left_top x_right_top y_right_top x_right_bottom y_right_bottom
x_left_bottom y_left_bottom`` (the form read by mmrotate's ``DIORDataset`` and BboxToolkit's ``load_dior_obb``;
a ``<robndbox>`` without these corners is rejected rather than guessed at). Coordinates are read as
0-based pixels, as those loaders do (no VOC ``- 1``).

Class names in the XML are mixed case (``Expressway-Service-area``): they are compared lower-cased and
written lower-case (``expressway-service-area``), in the DIOR paper's order (:data:`DIOR_CLASSES`; note that
mmrotate orders the two expressway classes before ``dam``, so its class ids differ from these).

Output, built in a temporary sibling folder and renamed into place::

    out/images/{split}/<id>.jpg   (hardlinked to src, else symlinked, else copied)
    out/labels/{split}/<id>.txt   (detect: ``cls cx cy w h``; oriented: ``cls x1 y1 ... x4 y4``; normalised)
    out/data.yaml  out/convert.json

Boxes are clipped to the image (oriented corners clamped to it); boxes left with no area are dropped.
"""

from __future__ import annotations

import logging
import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from admd_deploy.data._output import (
    atomic_output,
    clamp,
    format_rows,
    image_size,
    link_or_copy,
    resolve_dirs,
    write_data_yaml,
    write_marker,
)
from admd_deploy.data.polygons import polygon_area
from admd_deploy.errors import MissingFileError, UsageError

LOGGER = logging.getLogger(__name__)

DIOR_CLASSES = (
    "airplane", "airport", "baseballfield", "basketballcourt", "bridge", "chimney", "dam",
    "expressway-service-area", "expressway-toll-station", "golffield", "groundtrackfield", "harbor", "overpass",
    "ship", "stadium", "storagetank", "tenniscourt", "trainstation", "vehicle", "windmill",
)
_CLASS_IDS = {name: i for i, name in enumerate(DIOR_CLASSES)}
SPLITS = ("train", "val", "test")
_IMAGE_DIRS = ("JPEGImages-trainval", "JPEGImages-test", "JPEGImages")
_ANNOTATION_DIRS = {False: "Horizontal Bounding Boxes", True: "Oriented Bounding Boxes"}
CORNER_TAGS = ("x_left_top", "y_left_top", "x_right_top", "y_right_top",
               "x_right_bottom", "y_right_bottom", "x_left_bottom", "y_left_bottom")
_BOX_TAGS = ("xmin", "ymin", "xmax", "ymax")
_CONVERTER = "admd_deploy.data.dior"


def convert_dior(
    src: str | Path,
    out: str | Path,
    *,
    oriented: bool = False,
    splits: tuple[str, ...] = SPLITS,
) -> Path:
    """Convert DIOR (``oriented=False``) or DIOR-R (``oriented=True``) and return the absolute ``data.yaml`` path.

    Args:
        src: DIOR root holding ``JPEGImages-*``, ``Annotations/`` and ``ImageSets/Main/``.
        out: output root; must be absent, empty, or an earlier output of this function (it is replaced).
        oriented: write YOLO-OBB labels from ``Annotations/Oriented Bounding Boxes`` (DIOR-R) instead of
            YOLO detect labels from ``Annotations/Horizontal Bounding Boxes``.
        splits: which of ``train``, ``val``, ``test`` to convert (Ultralytics needs ``train`` and ``val``).

    Raises:
        ValueError: a bad argument, an unknown class name, or an XML object lacking its box fields.
        FileNotFoundError: a missing image folder, annotation folder, split list, image or XML file.
        FileExistsError: ``out`` is a file or a non-empty folder that this converter did not write.
    """
    splits = _check_splits(splits)
    src_dir, out_dir = resolve_dirs(src, out)
    ann_dir = _annotation_dir(src_dir, oriented)
    images = _image_index(src_dir)
    ids = {s: _read_ids(src_dir, s) for s in splits}
    for s, split_ids in ids.items():
        _require_files(s, [images.get(i) for i in split_ids], split_ids, "images", f"{', '.join(_IMAGE_DIRS)} in {src_dir}")
        _require_files(s, [ann_dir / f"{i}.xml" for i in split_ids], split_ids, "annotations", str(ann_dir))
    counts = {}
    with atomic_output(out_dir, _CONVERTER, src_dir) as tmp:
        for s, split_ids in ids.items():
            counts[s] = _write_split(tmp, s, split_ids, images, ann_dir, oriented)
            LOGGER.info("DIOR%s %s: %s", "-R" if oriented else "", s, ", ".join(f"{k} {v}" for k, v in counts[s].items()))
        title = f"DIOR{'-R (oriented boxes)' if oriented else ' (horizontal boxes)'} converted by {_CONVERTER}"
        write_data_yaml(tmp, out_dir, splits, DIOR_CLASSES, title)
        write_marker(tmp, _CONVERTER, src_dir, dict(oriented=oriented, splits=list(splits)), counts)
    return out_dir / "data.yaml"


def read_dior_xml(path: str | Path, oriented: bool) -> tuple[tuple[int, int] | None, np.ndarray, np.ndarray]:
    """Read one DIOR / DIOR-R annotation.

    Args:
        path: the VOC-style ``.xml`` file.
        oriented: read ``<robndbox>`` corners (DIOR-R) instead of ``<bndbox>``.

    Returns:
        ``(size, class ids (N,), boxes)``: ``size`` is ``(width, height)`` from ``<size>`` or ``None`` when it is
        absent or zero; boxes are ``(N, 4)`` ``xmin ymin xmax ymax`` or ``(N, 4, 2)`` corners, in pixels.

    Raises:
        ValueError: unparsable XML, an unknown class name, or an object without the expected box fields.
    """
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise UsageError(f"{path}: not valid XML ({err}). Fix: re-extract the annotation archive.") from None
    size = None
    width, height = root.findtext("size/width"), root.findtext("size/height")
    try:
        if width and height and int(float(width)) > 0 and int(float(height)) > 0:
            size = int(float(width)), int(float(height))
    except ValueError:
        pass  # fall back to the image's own size
    box_tag, tags = ("robndbox", CORNER_TAGS) if oriented else ("bndbox", _BOX_TAGS)
    classes, boxes = [], []
    for k, obj in enumerate(root.iter("object"), 1):
        name = (obj.findtext("name") or "").strip()
        if name.lower() not in _CLASS_IDS:
            raise UsageError(f"{path}: object {k} has unknown class {name!r}; valid classes (any case): "
                             f"{', '.join(DIOR_CLASSES)}")
        box = obj.find(box_tag)
        values = [None if box is None else box.findtext(t) for t in tags]
        try:
            coords = [float(v) for v in values]  # type: ignore[arg-type]
        except (TypeError, ValueError):
            found = "none" if box is None else ", ".join(child.tag for child in box) or "none"
            raise UsageError(f"{path}: object {k} ({name}) needs <{box_tag}> with numeric {', '.join(tags)}; "
                             f"found fields: {found}. Fix: use the official DIOR{'-R' if oriented else ''} "
                             f"annotations{'' if oriented else ' (or pass oriented=True for DIOR-R)'}.") from None
        if not all(map(math.isfinite, coords)):
            raise UsageError(f"{path}: object {k} ({name}) has non-finite coordinates {coords}")
        classes.append(_CLASS_IDS[name.lower()])
        boxes.append(coords)
    shape = (-1, 4, 2) if oriented else (-1, 4)
    return size, np.array(classes, dtype=np.int64), np.array(boxes, dtype=np.float64).reshape(shape)


# ------------------------------------------------------------------------------------------------ inputs
def _check_splits(splits: tuple[str, ...]) -> tuple[str, ...]:
    if isinstance(splits, str):
        splits = (splits,)
    splits = tuple(splits)
    bad = [s for s in splits if s not in SPLITS]
    if not splits or bad or len(set(splits)) != len(splits):
        raise UsageError(f"splits must be distinct names from {', '.join(SPLITS)}; got {splits!r}. "
                         "Fix: e.g. splits=('train', 'val', 'test').")
    if not {"train", "val"} <= set(splits):
        LOGGER.warning("splits %s lacks train or val: Ultralytics will not load the data.yaml for training", splits)
    return splits


def _annotation_dir(root: Path, oriented: bool) -> Path:
    folder = root / "Annotations" / _ANNOTATION_DIRS[oriented]
    if folder.is_dir():
        return folder
    if not oriented and any((root / "Annotations").glob("*.xml")):  # the first DIOR release: a flat folder
        return root / "Annotations"
    hint = "unpack the DIOR-R annotations there" if oriented else "unpack the DIOR annotations there"
    raise MissingFileError(f"annotation folder {folder} not found. Fix: {hint}, or pass the DIOR root as src.")


def _image_index(root: Path) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for name in _IMAGE_DIRS:
        if (root / name).is_dir():
            for p in (root / name).iterdir():
                if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    index.setdefault(p.stem, p)
    if not index:
        raise MissingFileError(f"no images in {', '.join(str(root / n) for n in _IMAGE_DIRS)}. "
                                "Fix: unpack JPEGImages-trainval and JPEGImages-test under the DIOR root.")
    return index


def _read_ids(root: Path, split: str) -> list[str]:
    path = root / "ImageSets" / "Main" / f"{split}.txt"
    if not path.is_file():
        raise MissingFileError(f"split list {path} not found. Fix: restore it, or leave {split!r} out of splits.")
    return [line.split()[0] for line in path.read_text(encoding="utf-8-sig").splitlines() if line.strip()]


def _require_files(split: str, paths: list[Path | None], ids: list[str], what: str, where: str) -> None:
    missing = [i for i, p in zip(ids, paths) if p is None or not p.is_file()]
    if missing:
        raise MissingFileError(f"{len(missing)} of {len(ids)} {split} {what} missing (e.g. {', '.join(missing[:5])}); "
                                f"looked in {where}. Fix: unpack the full archive, or leave {split!r} out of splits.")


# ------------------------------------------------------------------------------------------------ outputs
def _write_split(tmp: Path, split: str, ids: list[str], images: dict[str, Path], ann_dir: Path,
                 oriented: bool) -> dict[str, int]:
    im_dir, lb_dir = tmp / "images" / split, tmp / "labels" / split
    im_dir.mkdir(parents=True)
    lb_dir.mkdir(parents=True)
    counts = dict(images=len(ids), objects=0, clipped=0, degenerate_dropped=0)
    for image_id in ids:
        image = images[image_id]
        size, classes, boxes = read_dior_xml(ann_dir / f"{image_id}.xml", oriented)
        width, height = size or image_size(image)
        if oriented:
            fitted = clamp(boxes, 0, 0, width, height)
            keep = polygon_area(fitted) > 0
            coords = (fitted[keep] / [width, height]).reshape(-1, 8)
        else:
            lo, hi = np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])
            fitted = np.concatenate([lo, hi], axis=1).clip(0, [width, height, width, height])
            keep = (fitted[:, 2] > fitted[:, 0]) & (fitted[:, 3] > fitted[:, 1])
            xyxy = fitted[keep] / [width, height, width, height]
            coords = np.concatenate([(xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]], axis=1)
        counts["clipped"] += int((fitted != boxes).reshape(len(boxes), -1).any(axis=1).sum())
        counts["degenerate_dropped"] += int((~keep).sum())
        counts["objects"] += int(keep.sum())
        mode = link_or_copy(image, im_dir / f"{image_id}{image.suffix}")
        counts[f"images_{mode}"] = counts.get(f"images_{mode}", 0) + 1
        (lb_dir / f"{image_id}.txt").write_text(format_rows(classes[keep], coords))
    return counts
