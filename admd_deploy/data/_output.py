"""Output helpers shared by the dataset converters: atomic output folders, links, labels, data.yaml."""

from __future__ import annotations

import json
import logging
import os
import shutil
import struct
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from admd_deploy.errors import MissingFileError, OutputExistsError, UsageError

LOGGER = logging.getLogger(__name__)

MARKER = "convert.json"


def image_size(path: str | Path) -> tuple[int, int]:
    """Return ``(width, height)`` of an image: from the header for PNG, else by decoding it with OpenCV."""
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
        return struct.unpack(">II", head[16:24])
    img = cv2.imread(str(path))  # applies EXIF orientation, as Ultralytics' exif_size does
    if img is None:
        raise UsageError(f"cannot read image {path}: not an image OpenCV can decode. Fix: replace or remove it.")
    return img.shape[1], img.shape[0]


def resolve_dirs(src: str | Path, out: str | Path) -> tuple[Path, Path]:
    src_dir, out_dir = Path(src).expanduser().resolve(), Path(out).expanduser().resolve()
    if not src_dir.is_dir():
        raise MissingFileError(f"dataset root {src_dir} not found. Fix: pass the folder that holds train/ and val/.")
    if out_dir == src_dir or out_dir in src_dir.parents:
        raise UsageError(f"out {out_dir} must not contain src {src_dir}. Fix: choose an output folder outside it.")
    return src_dir, out_dir


def clamp(polys: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.stack([polys[..., 0].clip(x0, x1), polys[..., 1].clip(y0, y1)], axis=-1)


def format_rows(classes: np.ndarray, coords: np.ndarray) -> str:
    return "".join(f"{int(c)} " + " ".join(f"{v:.6f}" for v in row) + "\n" for c, row in zip(classes, coords))


def link_or_copy(src: Path, dst: Path) -> str:
    """Place ``src`` at ``dst`` as a hardlink, else a symlink, else a copy; return which of the three.

    A hardlink costs no space and survives the source tree moving; a symlink is the fallback across
    filesystems; a copy where neither is allowed.
    """
    try:
        os.link(src, dst)
        return "hardlinked"
    except OSError:
        pass
    try:
        dst.symlink_to(src.resolve())
        return "symlinked"
    except OSError:
        shutil.copy2(src, dst)
        return "copied"


def write_data_yaml(tmp: Path, final: Path, splits: Sequence[str], names: Sequence[str], title: str) -> None:
    data: dict[str, Any] = {"path": str(final)}
    data.update({s: f"images/{s}" for s in splits})
    data.update(nc=len(names), names=dict(enumerate(names)))
    (tmp / "data.yaml").write_text(f"# {title}; see {MARKER}.\n" + yaml.safe_dump(data, sort_keys=False))


def write_marker(tmp: Path, converter: str, src: Path, params: dict[str, Any], counts: dict[str, Any]) -> None:
    files = sorted(p.relative_to(tmp).as_posix() for p in tmp.rglob("*") if not p.is_dir())
    meta = dict(converter=converter, format=1, source=str(src), params=params, counts=counts, files=files)
    (tmp / MARKER).write_text(json.dumps(meta, indent=2) + "\n")  # written last: marks a complete conversion


def _written_by_converter(folder: Path) -> set[str] | None:
    """The files an earlier conversion wrote (its marker's list), or None for a marker without one."""
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return set(files) if isinstance(files, list) else None


def _foreign_files(out: Path) -> list[str]:
    """Files in an earlier conversion ``out`` that the converter did not write (the user's: never deleted).

    Ultralytics' label caches (``*.cache``, written next to the labels when training reads them)
    are derived and may go. A marker from before the file list: anything outside the layout
    (``images/<split>/*``, ``labels/<split>/*``, ``data.yaml``) counts as the user's.
    """
    written = _written_by_converter(out)
    foreign = []
    for p in out.rglob("*"):
        if p.is_dir():
            continue
        rel = p.relative_to(out).as_posix()
        if rel == MARKER or p.suffix == ".cache":
            continue
        parts = rel.split("/")
        ours = rel in written if written is not None else (
            rel == "data.yaml" or (len(parts) == 3 and parts[0] in ("images", "labels")))
        if not ours:
            foreign.append(rel)
    return sorted(foreign)


def is_conversion(folder: Path, converter: str) -> bool:
    try:
        return json.loads((folder / MARKER).read_text()).get("converter") == converter
    except (OSError, ValueError, AttributeError):
        return False


def check_replaceable(out: Path, converter: str) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise OutputExistsError(f"{out} exists and is not a folder. Fix: pass another out, or delete {out}.")
    if out.is_dir() and any(out.iterdir()) and not is_conversion(out, converter):
        raise OutputExistsError(f"{out} is not empty and is not an earlier output of {converter} (no {MARKER}); "
                              f"refusing to overwrite it. Fix: pass an empty or new out, or delete {out} first.")
    foreign = _foreign_files(out) if out.is_dir() and is_conversion(out, converter) else []
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise OutputExistsError(f"{out} is an earlier output of {converter} but also holds {len(foreign)} file(s) it "
                                f"did not write ({shown}); replacing it would delete them. Fix: move them out of "
                                f"{out}, or pass another out.")


@contextmanager
def atomic_folder(out: Path, already_there: Callable[[], bool] | None = None) -> Iterator[Path]:
    """Yield a new temporary sibling of ``out`` to build a dataset in; when the body succeeds, it becomes ``out``.

    The old ``out`` is renamed aside, the new folder renamed in, then the old one deleted, so ``out`` is at
    every moment the old dataset or the new one; when renaming in fails the old one is put back. When the
    body fails, ``out`` is untouched. The temporary folder never outlives the call.

    Args:
        out: The dataset folder to write.
        already_there: Asked before the swap and after a failed rename: True when a concurrent run has put the
            same dataset at ``out`` first; it is then kept and the temporary folder dropped.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        if already_there is not None and already_there():
            return
        trash = None
        if out.is_dir():
            trash = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
            os.rename(out, trash)
        try:
            os.rename(tmp, out)
        except OSError:
            if trash is not None:
                os.rename(trash, out)
                trash = None
            if already_there is None or not already_there():
                raise
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_output(out: Path, converter: str, src: Path) -> Iterator[Path]:
    """:func:`atomic_folder` for a converter: ``out`` must be empty or an earlier output of ``converter``
    holding no file it did not write (checked before and again just before the swap)."""
    check_replaceable(out, converter)
    with atomic_folder(out) as tmp:
        yield tmp
        check_replaceable(out, converter)  # again: another process may have written there meanwhile
    LOGGER.info("wrote %s from %s", out, src)
