"""Where images come from: one image file, a folder of images, or a video file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm")


@dataclass(frozen=True)
class Frame:
    """One image to run on.

    Attributes:
        name: File stem of the image (or of the video).
        index: Frame number in a video, 0 for images.
        image: BGR uint8 pixels.
        path: The file it came from.
    """

    name: str
    index: int
    image: np.ndarray
    path: Path


def source_kind(source: str | Path) -> str:
    """``"image"``, ``"folder"`` or ``"video"``.

    Raises:
        FileNotFoundError: If the source does not exist.
        ValueError: If it is a file of an unknown type.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"source not found: {path}")
    if path.is_dir():
        return "folder"
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    raise ValueError(
        f"source {path.name!r} is neither an image ({', '.join(IMAGE_SUFFIXES)}) nor a video "
        f"({', '.join(VIDEO_SUFFIXES)}) nor a folder"
    )


def image_files(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted.

    Raises:
        ValueError: If there are none.
    """
    files = sorted(p for p in Path(folder).iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in folder {folder}")
    return files


def read_image(path: str | Path) -> np.ndarray:
    """Read a BGR image.

    Raises:
        ValueError: If OpenCV cannot decode it.
    """
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"could not read image {path} (corrupt or unsupported)")
    return image


def iter_frames(source: str | Path) -> Iterator[Frame]:
    """Frames of an image, a folder of images, or a video, in order."""
    path = Path(source)
    kind = source_kind(path)
    if kind == "image":
        yield Frame(path.stem, 0, read_image(path), path)
    elif kind == "folder":
        for file in image_files(path):
            yield Frame(file.stem, 0, read_image(file), file)
    else:
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise ValueError(f"could not open video {path}")
        try:
            index = 0
            while True:
                ok, image = capture.read()
                if not ok:
                    break
                yield Frame(path.stem, index, image, path)
                index += 1
        finally:
            capture.release()


def video_fps(source: str | Path, default: float = 25.0) -> float:
    """Frame rate of a video file (``default`` when it does not say)."""
    capture = cv2.VideoCapture(str(source))
    try:
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    return float(fps) if fps and fps > 0 else default


def video_frame_count(source: str | Path) -> int:
    """Frames in a video file as its container says (0 when it does not say)."""
    capture = cv2.VideoCapture(str(source))
    try:
        count = capture.get(cv2.CAP_PROP_FRAME_COUNT)
    finally:
        capture.release()
    return int(count) if count and count > 0 else 0
