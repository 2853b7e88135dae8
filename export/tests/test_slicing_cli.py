"""``admd-edge predict --slice auto|off|SIZE --overlap PX`` on large and awkward images."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_edge.cli import main


def large(bus_image: np.ndarray, w: int = 300, h: int = 200) -> np.ndarray:
    return cv2.resize(bus_image, (w, h))


def exif_rotated_jpeg(image: np.ndarray) -> bytes:
    """A JPEG of ``image`` with EXIF orientation 6 (displayed rotated 90 degrees clockwise)."""
    jpg = cv2.imencode(".jpg", image)[1].tobytes()
    ifd = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHII", 1, 0x0112, 3, 1, 6 << 16) + b"\x00" * 4
    app1 = b"Exif\x00\x00" + ifd
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + jpg[2:]


def huge_png_header() -> bytes:
    """A valid PNG announcing 40000 x 40000 pixels (1.6 gigapixels: over OpenCV's decoding limit)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", 40000, 40000, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 40001))
            + chunk(b"IEND", b""))


def test_auto_slices_an_image_over_twice_the_input_and_says_so_once_on_stderr(
        obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), large(bus_image))
    cv2.imwrite(str(src / "b.png"), large(bus_image)[::-1])
    assert main(["predict", str(obb_onnx), str(src), "--out", str(tmp_path / "out"), "--conf", "0.05"]) == 0
    err = capsys.readouterr().err
    # overlap 12 (a fifth of 64), stride 52: 6 x 4 windows
    assert err.count("more than twice the model input 64x64: predicting it in 24 tiles") == 1
    payload = json.loads((tmp_path / "out" / "a.png.json").read_text())
    assert payload["image"] == {"height": 200, "width": 300} and payload["detections"]
    assert cv2.imread(str(tmp_path / "out" / "a.png")).shape == (200, 300, 3)


def test_slice_off_letterboxes_the_whole_image_as_before(
        obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from admd_edge import load_model

    cv2.imwrite(str(tmp_path / "a.png"), large(bus_image))
    assert main(["predict", str(obb_onnx), str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
                 "--slice", "off", "--conf", "0.05"]) == 0
    assert "tiles" not in capsys.readouterr().err
    plain = load_model(obb_onnx, conf=0.05).predict(cv2.imread(str(tmp_path / "a.png")))
    assert len(json.loads((tmp_path / "out" / "a.png.json").read_text())["detections"]) == len(plain)


def test_many_tiles_report_progress_on_stderr(obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), large(bus_image, 520, 520))
    assert main(["predict", str(obb_onnx), str(tmp_path / "a.png"), "--out", str(tmp_path / "out"),
                 "--slice", "64", "--overlap", "0"]) == 0
    assert "a.png: 81/81 tiles (100%)" in capsys.readouterr().err  # 9 x 9 windows: 0, 64, ..., 456


@pytest.mark.parametrize(("flags", "message"), [
    (["--slice", "100", "--overlap", "120"], "overlap must be in [0, tile); got overlap 120 for tile 100x100"),
    (["--slice", "tiles"], "must be auto, off or a tile size in pixels"),
    (["--slice", "8"], "tile size must be >= 32 px"),
])
def test_bad_slice_flags_exit_2_in_one_line_before_anything_is_written(
        obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture,
        flags: list[str], message: str) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), large(bus_image))
    code = exit_code(["predict", str(obb_onnx), str(tmp_path / "a.png"), "--out", str(tmp_path / "out"), *flags])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and message in err[-1] and "Traceback" not in "\n".join(err)
    assert not (tmp_path / "out").exists()


def exit_code(argv: list[str]) -> int:
    """``main``'s status, argparse's refusals (SystemExit) included."""
    try:
        return main(argv)
    except SystemExit as stop:
        return int(stop.code)


def test_grayscale_16_bit_4_channel_small_and_exif_rotated_images_are_predicted_and_a_huge_one_skipped(
        obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = tmp_path / "src"
    src.mkdir()
    big = large(bus_image, 200, 160)
    cv2.imwrite(str(src / "gray.png"), cv2.cvtColor(big, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(src / "deep.png"), big.astype(np.uint16) * 257)
    cv2.imwrite(str(src / "alpha.png"), cv2.cvtColor(big, cv2.COLOR_BGR2BGRA))
    cv2.imwrite(str(src / "small.png"), big[:40, :50])
    (src / "exif.jpg").write_bytes(exif_rotated_jpeg(big))  # stored 200 wide x 160 high, displayed 160 x 200
    (src / "huge.png").write_bytes(huge_png_header())
    code = main(["predict", str(obb_onnx), str(src), "--out", str(tmp_path / "out"), "--slice", "64"])
    captured = capsys.readouterr()
    assert code == 1  # finished, one image skipped
    assert "skipped" in captured.err and "huge.png: too large to decode" in captured.err
    assert "OPENCV_IO_MAX_IMAGE_PIXELS" in captured.err and "Traceback" not in captured.err
    sizes = {p.name[:-5]: json.loads(p.read_text())["image"] for p in (tmp_path / "out").glob("*.json")}
    assert sizes["exif.jpg"] == {"height": 200, "width": 160}  # EXIF orientation applied: predicted upright
    assert sizes["small.png"] == {"height": 40, "width": 50}
    assert sizes["gray.png"] == sizes["deep.png"] == sizes["alpha.png"] == {"height": 160, "width": 200}
    deep = json.loads((tmp_path / "out" / "deep.png.json").read_text())["detections"]
    plain = json.loads((tmp_path / "out" / "alpha.png.json").read_text())["detections"]
    assert [d["class_id"] for d in deep] == [d["class_id"] for d in plain]  # 16-bit / 257 = the same 8-bit pixels


def test_ctrl_c_during_a_sliced_image_keeps_the_images_already_written_and_exits_130(
        obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import admd_edge.slice_policy as policy

    src = tmp_path / "src"
    src.mkdir()
    for name in ("a.png", "b.png"):
        cv2.imwrite(str(src / name), large(bus_image))
    real, calls = policy.predict_sliced, []

    def interrupted(*args: object, **kwargs: object):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(policy, "predict_sliced", interrupted)
    assert main(["predict", str(obb_onnx), str(src), "--out", str(tmp_path / "out")]) == 130
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "a.png.json"]
    assert "interrupted after 1 image(s)" in capsys.readouterr().err
