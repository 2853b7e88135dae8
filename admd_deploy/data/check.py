"""Check a YOLO dataset before training: its data YAML, its folders, and every image and label file.

Ultralytics drops an image whose file does not decode or whose label file has a malformed line,
and says so only in its scan warnings; the model then trains on less data than the user thinks.
:func:`check_dataset` decodes every image of the train and val splits, checks the shape of every
label line, and runs Ultralytics' own per-file check (``verify_image_label``, the one its dataset
scan uses), and lists the files training would drop or misread.
:func:`require_clean` turns that into one refusal unless the user allowed it
(``data.allow_corrupt: true`` / ``--allow-corrupt``).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from admd_deploy.errors import MissingFileError, UsageError

LOGGER = logging.getLogger(__name__)

SPLITS = ("train", "val")
_SHOWN = 3  # files named in the one-line refusal; `admd-deploy data check` lists them all


@dataclass(frozen=True)
class BadFile:
    """One image Ultralytics would drop, with its reason."""

    split: str
    image: str
    reason: str


@dataclass
class DatasetCheck:
    """What :func:`check_dataset` found."""

    data_yaml: Path
    images: dict[str, int] = field(default_factory=dict)  # per split
    bad: list[BadFile] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.images.values())

    def summary(self) -> str:
        """One line: how many files would be dropped, the first few with their reasons."""
        shown = "; ".join(f"{b.image} ({b.reason})" for b in self.bad[:_SHOWN])
        more = f"; and {len(self.bad) - _SHOWN} more" if len(self.bad) > _SHOWN else ""
        return (f"{len(self.bad)} of {self.total} images in {self.data_yaml} would be dropped by training (corrupt "
                f"image or malformed label): {shown}{more}")


def _resolve_root(meta: dict[str, Any], data_yaml: Path) -> Path:
    """The dataset root as Ultralytics' ``check_det_dataset`` resolves it (``path:``, else the YAML's folder)."""
    root = Path(meta.get("path") or data_yaml.parent).expanduser()
    if not root.exists() and not root.is_absolute():
        from admd_deploy.ultra.data import datasets_dir

        root = (datasets_dir() / root).resolve()
    return root.resolve()


def resolve_data_yaml(value: str | Path, field_name: str = "data") -> dict[str, list[Path]]:
    """Read a data YAML and return the train/val image sources, refusing missing files and folders in one line."""
    data_yaml = Path(value).expanduser()
    if data_yaml.suffix not in {".yaml", ".yml"}:
        raise UsageError(f"{field_name} must be a dataset .yaml file (Ultralytics format); got {str(value)!r}")
    if not data_yaml.is_file():
        raise MissingFileError(f"{field_name}: data not found: {data_yaml.resolve()} (admd-deploy uses local files "
                               "only). Fix: the path")
    try:
        meta = yaml.safe_load(data_yaml.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"{field_name}: {data_yaml} is not valid YAML ({str(err).splitlines()[0]}). Fix: the file") from err
    if not isinstance(meta, dict) or not all(meta.get(k) for k in SPLITS) or not (meta.get("names") or meta.get("nc")):
        raise UsageError(f"{field_name}: {data_yaml} must set train, val and names (Ultralytics' data YAML format). "
                         "Fix: e.g. 'path: .', 'train: images/train', 'val: images/val', 'names: {0: car}'")
    root = _resolve_root(meta, data_yaml)
    sources: dict[str, list[Path]] = {}
    for split in SPLITS:
        entries = meta[split] if isinstance(meta[split], list) else [meta[split]]
        sources[split] = []
        for entry in entries:
            p = (root / str(entry)).resolve()
            if not p.exists() and str(entry).startswith("../"):
                p = (root / str(entry)[3:]).resolve()
            if not p.exists():
                raise MissingFileError(f"{field_name}: {data_yaml}: {split} images not found at {p} ({split}: {entry} "
                                       f"under path {root}). Fix: correct 'path' or '{split}' in the data YAML")
            sources[split].append(p)
    return sources


def _image_files(sources: list[Path]) -> list[str]:
    from admd_deploy.ultra.data import image_formats

    formats = image_formats()
    files: list[str] = []
    for p in sources:
        if p.is_dir():
            files += [str(f) for f in p.rglob("*.*") if f.suffix[1:].lower() in formats]
        else:  # a text file listing images, './' relative to it (as Ultralytics reads it)
            lines = p.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [x.replace("./", str(p.parent) + os.sep, 1) if x.startswith("./") else x for x in lines]
    return sorted(files)


def _image_problem(image: str) -> str | None:
    """Why ``image`` is not an image (no decoder recognises its header), or None.

    Checked before Ultralytics' own check, which on an unidentifiable file tries to install an
    image plugin (pi-heif) instead of saying the file is broken. A header read only: cheap.
    """
    import cv2

    if not Path(image).is_file():
        return "the image file is missing"
    if not cv2.haveImageReader(image):
        return "the image does not decode (no image format recognises the file)"
    return None


def _label_problem(label: str) -> str | None:
    """A label line that is neither 'class x y w h' nor 'class x1 y1 ... xn yn' (n >= 3), or None.

    Ultralytics reads such a line as a degenerate polygon (or drops the image); either way it is not
    what the user meant.
    """
    path = Path(label)
    if not path.is_file():
        return None  # a background image
    for lineno, line in enumerate(path.read_text(encoding="utf-8-sig", errors="replace").splitlines(), 1):
        n = len(line.split())
        if n and n != 5 and (n < 7 or n % 2 == 0):
            return (f"{path.name}:{lineno} has {n} values; a label line is 'class x y w h' (5) or 'class x1 y1 x2 y2 "
                    "x3 y3 x4 y4' (9, OBB)")
    return None


def _verify(job: tuple[str, str, int]) -> str | None:
    """The reason Ultralytics would drop (or misread) this image/label pair, or None when it is fine."""
    from admd_deploy.ultra.data import label_problem

    image, label, num_cls = job
    return _image_problem(image) or _label_problem(label) or label_problem(image, label, num_cls)


def check_dataset(data_yaml: str | Path, field_name: str = "data") -> DatasetCheck:
    """Verify every train and val image and its label the way Ultralytics' dataset scan does."""
    sources = resolve_data_yaml(data_yaml, field_name)
    from admd_deploy.ultra.data import img2label_paths

    meta = yaml.safe_load(Path(data_yaml).read_text())
    names = meta.get("names")
    num_cls = len(names) if names else int(meta["nc"])
    result = DatasetCheck(Path(data_yaml).expanduser().resolve())
    for split, paths in sources.items():
        images = _image_files(paths)
        result.images[split] = len(images)
        if not images:
            raise UsageError(f"{field_name}: {data_yaml}: no images in {', '.join(map(str, paths))} ({split}). "
                             "Fix: point the data YAML at the image folders")
        labels = img2label_paths(images)
        jobs = [(im, lb, num_cls) for im, lb in zip(images, labels)]
        with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
            for job, problem in zip(jobs, pool.map(_verify, jobs)):
                if problem:
                    result.bad.append(BadFile(split, job[0], problem))
    return result


def require_clean(data_yaml: str | Path, allow_corrupt: bool, field_name: str = "data",
                  allow_flag: str = "data.allow_corrupt: true") -> DatasetCheck:
    """Check the dataset; refuse it when files would be dropped, unless ``allow_corrupt`` (then warn once)."""
    result = check_dataset(data_yaml, field_name)
    if result.bad and not allow_corrupt:
        raise UsageError(f"{field_name}: {result.summary()}. Fix: repair or remove them (see `admd-deploy data check "
                         f"{result.data_yaml}`), or set {allow_flag} to train without them")
    if result.bad:
        LOGGER.warning("%s; training without them (allowed)", result.summary())
    return result
