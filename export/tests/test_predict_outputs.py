"""``admd-edge predict`` never loses what the user owns: output folder rules, unique names, unreadable images
skipped and reported, and no half-made output left by a failed run."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_edge.cli import main
from admd_edge.outputs import OutputFolder, choose_output_folder, next_run_folder
from admd_edge.sources import ImageReadError, decode_image, read_image


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (relative path) and its sha256: to prove nothing was changed or added."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def jpeg_bytes(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image)[1].tobytes()


@pytest.fixture
def photo(bus_image: np.ndarray) -> np.ndarray:
    return cv2.resize(bus_image, (120, 160))


# --- the output folder never is, or is inside, the source --------------------------------------------------


def test_an_output_folder_that_is_the_source_folder_is_refused_and_the_images_stay_untouched(
    detect_onnx: Path, image_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(image_folder)
    for extra in ([], ["--exist-ok"]):  # said first: the fix is another folder, never --exist-ok
        assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(image_folder), *extra]) == 2
        line = one_line(capsys.readouterr().err)
        assert "inside the source folder" in line and "choose an --out outside" in line and "exist-ok" not in line
    assert snapshot(image_folder) == before


def test_an_output_folder_inside_the_source_folder_is_refused_and_not_made(
    detect_onnx: Path, image_folder: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(image_folder)
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(image_folder / "pred")]) == 2
    assert "inside the source folder" in one_line(capsys.readouterr().err)
    assert not (image_folder / "pred").exists() and snapshot(image_folder) == before


def test_an_output_folder_reached_through_a_symlink_into_the_source_is_refused(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    link = tmp_path / "looks-elsewhere"
    link.symlink_to(image_folder, target_is_directory=True)
    before = snapshot(image_folder)
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(link), "--exist-ok"]) == 2
    assert "inside the source folder" in one_line(capsys.readouterr().err)
    assert snapshot(image_folder) == before


@pytest.mark.parametrize("kind", ["image", "video"])
def test_a_single_file_source_is_refused_when_its_output_would_land_on_it(
    kind: str, detect_onnx: Path, photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    if kind == "image":
        source = folder / "shot.jpg"
        cv2.imwrite(str(source), photo)
    else:
        source = folder / "clip.mp4"
        writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), 10, (120, 160))
        for k in range(3):
            writer.write(np.roll(photo, 20 * k, axis=1))
        writer.release()
    before = snapshot(folder)
    assert main(["predict", str(detect_onnx), str(source), "--out", str(folder), "--exist-ok"]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"would overwrite the source {source}" in line and "choose another --out" in line
    assert snapshot(folder) == before


def test_a_single_image_may_write_next_to_itself_in_a_subfolder(
    detect_onnx: Path, image_folder: Path
) -> None:
    source = image_folder / "bus.jpg"
    before = source.read_bytes()
    assert main(["predict", str(detect_onnx), str(source), "--out", str(image_folder / "pred")]) == 0
    assert sorted(p.name for p in (image_folder / "pred").iterdir()) == ["bus.jpg", "bus.jpg.json"]
    assert source.read_bytes() == before


def test_a_symlink_in_the_output_folder_is_replaced_not_written_through(
    detect_onnx: Path, image_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "bus.jpg").symlink_to(image_folder / "bus.jpg")  # left there by someone, pointing at the original
    before = snapshot(image_folder)
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(out), "--exist-ok"]) == 0
    assert snapshot(image_folder) == before
    assert not (out / "bus.jpg").is_symlink() and cv2.imread(str(out / "bus.jpg")) is not None


# --- unique names and new run folders -------------------------------------------------------------------


def test_images_sharing_a_stem_get_one_json_each_named_after_the_whole_file_name(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "a.jpg"), photo)
    cv2.imwrite(str(src / "a.png"), photo[::-1])
    out = tmp_path / "out"
    assert main(["predict", str(detect_onnx), str(src), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "a.jpg.json", "a.png", "a.png.json"]
    assert json.loads((out / "a.jpg.json").read_text())["source"] == str(src / "a.jpg")
    assert json.loads((out / "a.png.json").read_text())["source"] == str(src / "a.png")


def test_runs_into_the_default_folder_get_new_numbered_folders_unless_exist_ok(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    runs = work / "runs" / "admd-edge"
    assert main(["predict", str(detect_onnx), str(image_folder)]) == 0
    first = snapshot(runs / "predict")
    assert sorted(first) == ["bus.jpg", "bus.jpg.json", "crop.png", "crop.png.json"]
    assert main(["predict", str(detect_onnx), str(image_folder), "--conf", "0.9"]) == 0
    assert main(["predict", str(detect_onnx), str(image_folder), "--conf", "0.9"]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["predict", "predict2", "predict3"]
    assert snapshot(runs / "predict") == first
    assert f"-> {Path('runs/admd-edge/predict3')}" in capsys.readouterr().out
    assert main(["predict", str(detect_onnx), str(image_folder), "--conf", "0.9", "--exist-ok"]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["predict", "predict2", "predict3"]
    assert snapshot(runs / "predict") != first and snapshot(runs / "predict") == snapshot(runs / "predict2")


def test_an_explicit_output_folder_holding_files_is_refused_unless_exist_ok(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "bus.jpg.json").write_text("my notes")
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(out)]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"--out {out} already holds files" in line and "--exist-ok" in line
    assert sorted(p.name for p in out.iterdir()) == ["bus.jpg.json"]
    assert (out / "bus.jpg.json").read_text() == "my notes"
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(out), "--exist-ok"]) == 0
    assert json.loads((out / "bus.jpg.json").read_text())["source"].endswith("bus.jpg")


def test_an_output_path_that_is_a_file_is_refused(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "out").write_text("keep me")
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(tmp_path / "out"), "--exist-ok"]) == 2
    assert "is a file, not a folder" in one_line(capsys.readouterr().err)
    assert (tmp_path / "out").read_text() == "keep me"


def test_run_folders_are_numbered_like_ultralytics(tmp_path: Path) -> None:
    base = tmp_path / "predict"
    assert next_run_folder(base) == base
    base.mkdir()
    (base / "x.json").write_text("{}")
    assert next_run_folder(base) == tmp_path / "predict2"
    (tmp_path / "predict2").mkdir()
    assert next_run_folder(base) == tmp_path / "predict3"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert choose_output_folder(empty, exist_ok=False, source=tmp_path / "src") == empty  # empty: not refused


# --- unreadable images: skipped, reported, the rest finished, exit 1 ------------------------------------------


def test_unreadable_images_in_a_folder_are_skipped_with_a_warning_each_and_exit_1(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "good.jpg"), photo)
    cv2.imwrite(str(src / "fine.png"), photo)
    (src / "cut.jpg").write_bytes(jpeg_bytes(photo)[:900])  # truncated: OpenCV 4 would decode it half grey
    (src / "cut.png").write_bytes(cv2.imencode(".png", photo)[1].tobytes()[:500])
    (src / "empty.jpg").write_bytes(b"")
    (src / "text.png").write_bytes(b"not an image at all")
    before = snapshot(src)
    out = tmp_path / "out"
    assert main(["predict", str(detect_onnx), str(src), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("warning: skipped")]
    assert warnings == [
        f"warning: skipped {src / 'cut.jpg'}: truncated JPEG (no end-of-image marker after its image data)",
        f"warning: skipped {src / 'cut.png'}: truncated PNG (no IEND chunk)",
        f"warning: skipped {src / 'empty.jpg'}: the file is empty (0 bytes)",
        f"warning: skipped {src / 'text.png'}: "
        "OpenCV cannot decode it (corrupt, or an unsupported format or bit depth)",
    ]
    assert captured.err.strip().splitlines()[-1] == (
        "4 of 6 image(s) skipped as unreadable (see the warnings above): cut.jpg, cut.png, empty.jpg, text.png"
    )
    assert "2 image(s) -> " in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["fine.png", "fine.png.json", "good.jpg", "good.jpg.json"]
    assert snapshot(src) == before


def test_a_folder_of_only_unreadable_images_exits_1_and_leaves_no_output_folder(
    detect_onnx: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.jpg").write_bytes(b"\xff\xd8\xff\xe0 broken")
    out = tmp_path / "runs" / "out"
    assert main(["predict", str(detect_onnx), str(src), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "1 of 1 image(s) skipped as unreadable" in captured.err
    assert "nothing was written" in captured.out
    assert not (tmp_path / "runs").exists()


def test_a_single_unreadable_image_is_refused_with_exit_2_before_anything_is_made(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    source = tmp_path / "cut.jpg"
    source.write_bytes(jpeg_bytes(photo)[:700])
    assert main(["predict", str(detect_onnx), str(source), "--out", str(tmp_path / "out")]) == 2
    line = one_line(capsys.readouterr().err)
    assert f"could not read image {source}: truncated JPEG" in line and "replace or remove the file" in line
    assert not (tmp_path / "out").exists()


def test_a_truncated_jpeg_is_detected_whatever_the_opencv_version_and_a_trailer_is_not(
    photo: np.ndarray,
) -> None:
    data = jpeg_bytes(photo)
    with pytest.raises(ImageReadError, match="truncated JPEG"):
        decode_image(np.frombuffer(data[: len(data) - 40], np.uint8), Path("x.jpg"))
    padded = data + b"\x00" * 16 + b"camera trailer"  # bytes after the end marker: a whole image
    decoded = decode_image(np.frombuffer(padded, np.uint8), Path("x.jpg"))
    np.testing.assert_array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


@pytest.mark.parametrize(
    ("name", "pixels"),
    [
        ("gray.png", lambda p: cv2.cvtColor(p, cv2.COLOR_BGR2GRAY)),
        ("alpha.png", lambda p: np.dstack([p, np.full(p.shape[:2], 7, np.uint8)])),
        ("deep.png", lambda p: p.astype(np.uint16) * 257 + 100),
        ("deep-gray.tif", lambda p: cv2.cvtColor(p, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 256),
    ],
)
def test_grayscale_alpha_and_16_bit_images_are_read_as_ultralytics_reads_them(
    name: str, pixels, photo: np.ndarray, tmp_path: Path
) -> None:
    path = tmp_path / name
    assert cv2.imwrite(str(path), pixels(photo))
    image = read_image(path)
    assert image.shape == (*photo.shape[:2], 3) and image.dtype == np.uint8
    # Ultralytics' own reader: cv2.imdecode(np.fromfile(path), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(image, cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR))
    if name == "deep.png":
        np.testing.assert_array_equal(image, ((photo.astype(np.uint16) * 257 + 100) >> 8).astype(np.uint8))


def test_a_folder_of_grayscale_alpha_and_16_bit_images_is_predicted_without_a_crash(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "gray.png"), cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))
    cv2.imwrite(str(src / "alpha.png"), np.dstack([photo, np.full(photo.shape[:2], 255, np.uint8)]))
    cv2.imwrite(str(src / "deep.tif"), photo.astype(np.uint16) * 257)
    out = tmp_path / "out"
    assert main(["predict", str(detect_onnx), str(src), "--out", str(out)]) == 0
    assert "3 image(s) -> " in capsys.readouterr().out
    assert cv2.imread(str(out / "deep.tif"), cv2.IMREAD_UNCHANGED).dtype == np.uint8  # annotated copies: 8-bit BGR
    assert cv2.imread(str(out / "gray.png"), cv2.IMREAD_UNCHANGED).shape == (*photo.shape[:2], 3)


# --- failed or interrupted runs leave nothing half-made ----------------------------------------------------------


def test_commands_failing_before_any_write_leave_no_output_folder(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    (tmp_path / "no-images").mkdir()
    cases = [
        ([str(tmp_path / "broken.onnx"), str(image_folder)], "could not load"),
        ([str(detect_onnx), str(image_folder), "--conf", "2"], "conf must be in [0, 1]"),
        ([str(detect_onnx), str(tmp_path / "bad.mp4")], "could not read a frame of video"),
        ([str(detect_onnx), str(tmp_path / "no-images")], "no images"),
    ]
    for args, message in cases:
        out = tmp_path / "runs" / "out"
        assert main(["predict", *args, "--out", str(out)]) == 2, args
        assert message in one_line(capsys.readouterr().err), args
        assert not (tmp_path / "runs").exists(), args


@pytest.mark.parametrize("source", ["folder", "video"])
def test_a_run_interrupted_before_its_first_result_leaves_no_folder_or_empty_jsonl(
    source: str, detect_onnx: Path, image_folder: Path, photo: np.ndarray, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from admd_edge.model import EdgeModel

    if source == "video":
        path = tmp_path / "clip.avi"
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 160))
        for k in range(3):
            writer.write(np.roll(photo, 20 * k, axis=1))
        writer.release()
    else:
        path = image_folder

    def predict(self, images):
        raise KeyboardInterrupt

    monkeypatch.setattr(EdgeModel, "predict", predict)
    out = tmp_path / "runs" / "out"
    # --slice off: the 64 px test model would slice these frames, which does not go through EdgeModel.predict
    assert main(["predict", str(detect_onnx), str(path), "--out", str(out), "--slice", "off"]) == 130
    assert "nothing was written" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_an_output_folder_removes_only_the_folders_it_made_and_only_when_empty(tmp_path: Path) -> None:
    (tmp_path / "keep").mkdir()
    folder = OutputFolder(tmp_path / "keep" / "a" / "b")
    folder.path_for("x")  # makes keep/a/b, counted as a write
    assert (tmp_path / "keep" / "a" / "b").is_dir() and not folder.discard_if_empty()
    unused = OutputFolder(tmp_path / "keep" / "c" / "d")
    unused._target("x")  # made, then nothing written
    assert unused.discard_if_empty()
    assert sorted(p.name for p in (tmp_path / "keep").iterdir()) == ["a"]
    written = OutputFolder(tmp_path / "w")
    written.write_text("r.json", "{}")
    assert os.listdir(tmp_path / "w") == ["r.json"]  # no .partial file left


def test_a_video_ending_before_its_announced_frame_count_is_predicted_with_a_warning(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    whole = tmp_path / "whole.avi"
    writer = cv2.VideoWriter(str(whole), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 160))
    for k in range(10):
        writer.write(np.roll(photo, 12 * k, axis=1))
    writer.release()
    cut = tmp_path / "cut.avi"  # the header still says 10 frames; the last ones are gone
    cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * 0.6)])
    out = tmp_path / "out"
    assert main(["predict", str(detect_onnx), str(cut), "--out", str(out)]) == 0  # counts are estimates: no failure
    frames = len((out / "cut.jsonl").read_text().splitlines())
    assert 0 < frames < 10
    err = capsys.readouterr().err
    assert f"warning: cut.avi: the video ended after {frames} of the 10 frames its container announces" in err


def test_the_installed_command_reports_a_corrupt_image_in_two_stderr_lines_without_opencv_noise(
    detect_onnx: Path, photo: np.ndarray, tmp_path: Path
) -> None:
    import subprocess
    import sys

    src = tmp_path / "src"
    src.mkdir()
    cv2.imwrite(str(src / "good.jpg"), photo)
    png = cv2.imencode(".png", photo)[1].tobytes()
    (src / "bad.png").write_bytes(png[:100] + bytes(300) + png[-12:])  # whole-looking, corrupt inside
    result = subprocess.run([sys.executable, "-m", "admd_edge", "predict", str(detect_onnx), str(src), "--out",
                             str(tmp_path / "out"), "--slice", "off"],  # no slicing notice for the 64 px model
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"warning: skipped {src / 'bad.png'}: OpenCV cannot decode it (corrupt, or an unsupported format or bit depth)",
        "1 of 2 image(s) skipped as unreadable (see the warnings above): bad.png",
    ]
    assert result.stdout.splitlines()[-1] == f"1 image(s) -> {tmp_path / 'out'}"
