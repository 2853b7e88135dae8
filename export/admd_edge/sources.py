"""Where images come from: one image file, a folder of images, or a video file.

Images are decoded as Ultralytics decodes them (``cv2.imdecode(..., cv2.IMREAD_COLOR)``), so the model sees the
same pixels it was validated on: a grayscale image is repeated into three channels, an alpha channel is
dropped (transparent pixels keep their stored colour), a 16-bit image is scaled to 8 bits (value / 256), and
a JPEG's EXIF orientation is applied (OpenCV's default for ``imread`` and ``imdecode``; the image is predicted
upright, as it is displayed). An image over OpenCV's decoding limit (``CV_IO_MAX_IMAGE_PIXELS``, 2**30 pixels
unless the environment variable ``OPENCV_IO_MAX_IMAGE_PIXELS`` raises it) is refused as too large.
A file that is empty, truncated (a JPEG without its end-of-image marker, a PNG without its ``IEND`` chunk) or
that OpenCV cannot decode raises :class:`ImageReadError`. OpenCV 4 decodes a truncated JPEG with the missing
part grey and only a libjpeg warning, so the marker is checked before decoding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".mpg", ".mpeg", ".webm")


class ImageReadError(ValueError):
    """An image file that cannot be used: unreadable, empty, truncated or not decodable.

    Attributes:
        path: The file.
        reason: What is wrong with it, without the path (e.g. ``"truncated JPEG (no end-of-image marker)"``).
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"could not read image {path}: {reason}; replace or remove the file")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class Unreadable:
    """An image of a folder that was skipped, and why (yielded by ``iter_frames(..., skip_unreadable=True)``)."""

    path: Path
    reason: str


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
    """Read an image as BGR uint8, converted as described in the module docstring.

    Raises:
        ImageReadError: If the file cannot be read, is empty or truncated, or OpenCV cannot decode it.
    """
    path = Path(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)  # also reads non-ASCII paths, which cv2.imread may not
    except OSError as err:
        raise ImageReadError(path, err.strerror or str(err)) from err
    return decode_image(data, path)


def decode_image(data: np.ndarray, path: Path) -> np.ndarray:
    """Decode the bytes of an image file (``path`` names it in errors); see :func:`read_image`."""
    raw = data.tobytes()
    if not raw:
        raise ImageReadError(path, "the file is empty (0 bytes)")
    if raw[:2] == b"\xff\xd8" and raw.rfind(b"\xff\xd9") < raw.rfind(b"\xff\xda"):
        # entropy-coded data never holds FF D9, so an end marker after the last scan header means a whole file
        raise ImageReadError(path, "truncated JPEG (no end-of-image marker after its image data)")
    if raw[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND\xaeB`\x82" not in raw:
        raise ImageReadError(path, "truncated PNG (no IEND chunk)")
    try:
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    except cv2.error as err:  # OpenCV asserts on images over CV_IO_MAX_IMAGE_PIXELS (2**30 by default)
        if "CV_IO_MAX_IMAGE_PIXELS" not in str(err):
            raise
        raise ImageReadError(path, "too large to decode: more pixels than OpenCV's limit (2**30); raise it with "
                                   "the environment variable OPENCV_IO_MAX_IMAGE_PIXELS, or split the image") from None
    if image is None:
        raise ImageReadError(path, "OpenCV cannot decode it (corrupt, or an unsupported format or bit depth)")
    return image


def iter_frames(source: str | Path, *, skip_unreadable: bool = False) -> Iterator[Frame | Unreadable]:
    """Frames of an image, a folder of images, or a video, in order.

    Args:
        source: Image file, folder of images, or video file.
        skip_unreadable: In a folder, yield an :class:`Unreadable` for an image that cannot be read instead of
            raising :class:`ImageReadError`.
    """
    path = Path(source)
    kind = source_kind(path)
    if kind == "image":
        yield Frame(path.stem, 0, read_image(path), path)
    elif kind == "folder":
        for file in image_files(path):
            try:
                image = read_image(file)
            except ImageReadError as err:
                if not skip_unreadable:
                    raise
                yield Unreadable(file, err.reason)
                continue
            yield Frame(file.stem, 0, image, file)
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


def check_video(source: str | Path) -> None:
    """Open a video and decode its first frame, so that a bad file is refused before any work.

    Raises:
        ValueError: If OpenCV cannot open it or it has no decodable frame.
    """
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened() or not capture.read()[0]:
            raise ValueError(f"could not read a frame of video {source} (empty, corrupt or an unsupported codec); "
                             f"check that it plays, or convert it to H.264 .mp4")
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
