"""The ``admd-edge`` command line: outputs it writes, and one-line errors with exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_edge.cli import main
from admd_edge.manifest import write_manifest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "admd_edge", *args], capture_output=True, text=True, timeout=120)


def test_predict_on_a_folder_writes_annotated_images_and_json(
    detect_onnx: Path, image_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out"
    assert main(["predict", str(detect_onnx), str(image_folder), "--out", str(out), "--conf", "0.3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["bus.jpg", "bus.jpg.json", "crop.png", "crop.png.json"]
    annotated = cv2.imread(str(out / "bus.jpg"))
    assert annotated.shape == cv2.imread(str(image_folder / "bus.jpg")).shape
    payload = json.loads((out / "bus.jpg.json").read_text())
    assert payload["task"] == "detect" and payload["source"].endswith("bus.jpg")
    assert payload["detections"] and {"class_id", "name", "score", "box"} <= set(payload["detections"][0])
    assert "2 image(s)" in capsys.readouterr().out


def test_predict_on_a_video_writes_an_annotated_video_and_jsonl(
    obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path
) -> None:
    video = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 160))
    for k in range(4):
        writer.write(cv2.resize(np.roll(bus_image, 40 * k, axis=1), (120, 160)))
    writer.release()
    out = tmp_path / "out"
    assert main(["predict", str(obb_onnx), str(video), "--out", str(out)]) == 0
    lines = (out / "clip.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0, 1, 2, 3]
    assert all("corners" in d for line in lines for d in json.loads(line)["detections"])
    capture = cv2.VideoCapture(str(out / "clip.mp4"))
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 4
    capture.release()


def test_predict_through_a_bundle_uses_its_names(detect_onnx: Path, image_folder: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "student.onnx").write_bytes(detect_onnx.read_bytes())
    names = {i: f"class{i}" for i in range(80)}
    write_manifest(bundle, ["student.onnx"], {"task": "detect", "imgsz": 64, "names": names, "stride": 32})
    out = tmp_path / "out"
    assert (
        main(["predict", "student.onnx", str(image_folder / "bus.jpg"), "--bundle", str(bundle), "--out", str(out)])
        == 0
    )
    names_seen = {d["name"] for d in json.loads((out / "bus.jpg.json").read_text())["detections"]}
    assert names_seen and all(n.startswith("class") for n in names_seen)


def test_bench_prints_a_markdown_table(detect_onnx: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["bench", str(detect_onnx), "--runs", "3", "--warmup", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| model |") and "e2e/raw" in out and detect_onnx.name in out


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_bad_inputs_exit_2_with_one_line_and_no_traceback(
    detect_onnx: Path, image_folder: Path, tmp_path: Path
) -> None:
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    (tmp_path / "notes.txt").write_text("x")
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "m.onnx").write_bytes(detect_onnx.read_bytes())
    write_manifest(bundle, ["m.onnx"], {"task": "detect", "imgsz": 64, "names": ["a"], "stride": 32})
    (bundle / "m.onnx").write_bytes(detect_onnx.read_bytes()[:-10])
    cases = [
        (["predict", str(tmp_path / "missing.onnx"), str(image_folder)], "not found"),
        (["predict", str(detect_onnx), str(tmp_path / "missing")], "not found"),
        (["predict", str(detect_onnx), str(tmp_path / "notes.txt")], "neither an image"),
        (["predict", str(detect_onnx), str(image_folder), "--conf", "2"], "conf must be in [0, 1]"),
        (["predict", str(tmp_path / "broken.onnx"), str(image_folder)], "could not load"),
        (["predict", str(bundle), str(image_folder)], "does not match its manifest"),
        (["bench", str(detect_onnx), "--imgsz", "128"], "fixed at 64x64"),
    ]
    for args, message in cases:
        line = one_line_error(run_cli(*args, "--out", str(tmp_path / "o")) if args[0] == "predict" else run_cli(*args))
        assert message in line, (args, line)


def test_the_command_refuses_to_write_into_the_source_folder_in_one_line(
    detect_onnx: Path, image_folder: Path
) -> None:
    before = {p.name: p.read_bytes() for p in image_folder.iterdir()}
    line = one_line_error(run_cli("predict", str(detect_onnx), str(image_folder), "--out", str(image_folder)))
    assert line.startswith("admd-edge predict: error: --out ") and "inside the source folder" in line
    assert {p.name: p.read_bytes() for p in image_folder.iterdir()} == before


def test_argparse_mistakes_exit_2(tmp_path: Path) -> None:
    result = run_cli("predict", "--max-det", "0", "a.onnx", "b.jpg")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def skip_if_tensorrt() -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return
    pytest.skip("tensorrt is importable here")


def test_build_engine_refuses_a_missing_or_non_onnx_model() -> None:
    line = one_line_error(run_cli("build-engine", str(Path(__file__).parent / "missing.onnx")))
    assert "not found" in line
    line = one_line_error(run_cli("build-engine", __file__))
    assert ".onnx" in line


def test_build_engine_without_tensorrt_says_what_to_install(detect_onnx: Path) -> None:
    skip_if_tensorrt()
    line = one_line_error(run_cli("build-engine", str(detect_onnx), "--precision", "fp16"))
    assert "tensorrt is not importable" in line and "Docker image" in line and "admd-edge[trt]" in line
