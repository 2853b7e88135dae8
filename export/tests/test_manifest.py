"""Bundles: manifest written by the training side, verified by the device before anything loads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from admd_edge import load_model
from admd_edge.errors import BundleIntegrityError
from admd_edge.manifest import FORMAT, read_manifest, verify_bundle, write_manifest
from admd_edge.onnx_proto import sha256_file

MODEL_INFO = {"task": "detect", "imgsz": 64, "names": {0: "car", 1: "truck"}, "stride": 32, "file": "model.onnx"}


@pytest.fixture
def bundle(tmp_path: Path, detect_onnx: Path) -> Path:
    folder = tmp_path / "bundle"
    (folder / "reports").mkdir(parents=True)
    shutil.copyfile(detect_onnx, folder / "model.onnx")
    (folder / "reports" / "accuracy.json").write_text('{"map50": 0.5}')
    write_manifest(folder, ["model.onnx", folder / "reports" / "accuracy.json"], MODEL_INFO, {"teacher": "yolo11x"})
    return folder


def test_manifest_lists_every_file_with_its_sha256(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["format"] == FORMAT == "admd-deploy/bundle/v1"
    assert manifest["files"] == {
        "model.onnx": sha256_file(bundle / "model.onnx"),
        "reports/accuracy.json": sha256_file(bundle / "reports" / "accuracy.json"),
    }
    assert manifest["model"] == {
        "task": "detect",
        "imgsz": [64, 64],
        "names": {"0": "car", "1": "truck"},
        "stride": 32,
        "file": "model.onnx",
    }
    assert manifest["teacher"] == "yolo11x"


def test_an_intact_bundle_verifies_and_loads_with_the_manifest_names(bundle: Path, bus_image: np.ndarray) -> None:
    assert verify_bundle(bundle)["files"]
    model = load_model(bundle)
    assert model.names == {0: "car", 1: "truck"}
    assert load_model("model.onnx", bundle=bundle).names == {0: "car", 1: "truck"}


def test_a_changed_byte_is_refused_naming_the_file_and_both_hashes(bundle: Path) -> None:
    expected = sha256_file(bundle / "model.onnx")
    data = bytearray((bundle / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (bundle / "model.onnx").write_bytes(bytes(data))
    actual = sha256_file(bundle / "model.onnx")
    for check in (lambda: verify_bundle(bundle), lambda: load_model(bundle)):
        with pytest.raises(BundleIntegrityError) as info:
            check()
        message = str(info.value)
        assert "model.onnx" in message and expected in message and actual in message


def test_a_missing_file_is_refused(bundle: Path) -> None:
    (bundle / "reports" / "accuracy.json").unlink()
    with pytest.raises(BundleIntegrityError, match="reports/accuracy.json.*missing"):
        verify_bundle(bundle)


def test_a_manifest_of_another_format_is_refused(bundle: Path) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["format"] = "something/else"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleIntegrityError, match="admd-deploy/bundle/v1"):
        read_manifest(bundle)


@pytest.mark.parametrize(
    "files, info, extra, error, message",
    [
        (["model.onnx"], {"task": "detect", "imgsz": 64, "names": ["a"]}, None, ValueError, "stride"),
        (["model.onnx"], {**MODEL_INFO, "task": "segment"}, None, ValueError, "task must be one of"),
        (["../outside.txt"], MODEL_INFO, None, ValueError, "inside"),
        (["nope.onnx"], MODEL_INFO, None, FileNotFoundError, "nope.onnx"),
        (["model.onnx"], MODEL_INFO, {"files": {}}, ValueError, "cannot override"),
        (["model.onnx"], {**MODEL_INFO, "file": "other.onnx"}, None, ValueError, "other.onnx"),
    ],
)
def test_write_manifest_refuses_bad_requests(bundle: Path, files, info, extra, error, message) -> None:
    (bundle.parent / "outside.txt").write_text("x")
    with pytest.raises(error, match=message):
        write_manifest(bundle, files, info, extra)


def test_a_bundle_that_failed_its_gates_loads_with_one_warning_line(tmp_path: Path, detect_onnx: Path, caplog) -> None:
    folder = tmp_path / "failed"
    folder.mkdir()
    shutil.copyfile(detect_onnx, folder / "model.onnx")
    write_manifest(folder, ["model.onnx"], MODEL_INFO, {"passed": False, "failed_gates": ["onnx_min_map50_95"]})
    with caplog.at_level("WARNING", logger="admd_edge.model"):
        load_model(folder)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert "FAILED its accuracy gates (onnx_min_map50_95)" in warnings[0]


def test_a_bundle_that_passed_or_says_nothing_loads_without_a_warning(bundle: Path, tmp_path: Path, caplog) -> None:
    with caplog.at_level("WARNING", logger="admd_edge.model"):
        load_model(bundle)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_predict_on_a_failed_bundle_prints_one_warning_line_on_stderr(
    tmp_path: Path, detect_onnx: Path, image_folder: Path
) -> None:
    import os
    import subprocess
    import sys

    folder = tmp_path / "failed"
    folder.mkdir()
    shutil.copyfile(detect_onnx, folder / "student.onnx")
    info = {**MODEL_INFO, "names": {i: f"c{i}" for i in range(80)}, "file": "student.onnx"}
    write_manifest(folder, ["student.onnx"], info, {"passed": False, "failed_gates": ["onnx_map50_drop_vs_student"]})
    run = subprocess.run(
        [sys.executable, "-m", "admd_edge", "predict", str(folder), str(image_folder / "bus.jpg"), "--out",
         str(tmp_path / "out")], capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "accuracy gates" in line]
    assert len(lines) == 1 and "onnx_map50_drop_vs_student" in lines[0]
