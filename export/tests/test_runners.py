"""Runners: ONNX Runtime behind the common interface, provider choice, model-file dispatch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from admd_edge.preprocess import Preprocessor
from admd_edge.runners import OnnxRuntimeRunner, Runner, ort_providers, runner_from_path


def test_onnx_runtime_runner_equals_a_plain_session_run(detect_onnx: Path, bus_image: np.ndarray) -> None:
    runner = OnnxRuntimeRunner(detect_onnx, threads=1)
    assert isinstance(runner, Runner)
    assert (runner.input_name, runner.input_shape, runner.input_dtype) == ("images", (1, 3, 64, 64), np.float32)
    assert runner.metadata["task"] == "detect" and "names" in runner.metadata
    tensor, _ = Preprocessor(64)(bus_image)
    expected = runner.session.run(None, {"images": tensor.copy()})
    got = runner.run(tensor)
    assert len(got) == len(expected) and np.array_equal(got[0], expected[0])
    other = np.zeros_like(tensor)
    assert not np.array_equal(runner.run(other)[0], expected[0])  # a new input buffer is rebound
    assert np.array_equal(runner.run(tensor)[0], expected[0])


def test_a_batch_the_model_cannot_take_is_refused(detect_onnx: Path) -> None:
    with pytest.raises(ValueError, match="batches of 1"):
        OnnxRuntimeRunner(detect_onnx).run(np.zeros((2, 3, 64, 64), np.float32))


@pytest.mark.parametrize(
    "requested, available, trt_ep, expected",
    [
        (None, ["CPUExecutionProvider"], False, ["CPUExecutionProvider"]),
        (
            None,
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            False,
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (
            None,
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
            True,
            ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        ),
        (["CPUExecutionProvider"], ["CUDAExecutionProvider", "CPUExecutionProvider"], False, ["CPUExecutionProvider"]),
    ],
)
def test_providers_prefer_the_gpu_when_present(requested, available, trt_ep, expected) -> None:
    assert ort_providers(requested, available, trt_ep) == expected


def test_an_unavailable_provider_is_refused_listing_the_available_ones() -> None:
    with pytest.raises(ValueError, match="available: \\['CPUExecutionProvider'\\]"):
        ort_providers(["CUDAExecutionProvider"], ["CPUExecutionProvider"])


def test_runner_from_path_refuses_unknown_files(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.onnx"):
        runner_from_path(tmp_path / "model.pt")
    with pytest.raises(FileNotFoundError):
        runner_from_path(tmp_path / "absent.onnx")


def test_bundle_metadata_overrides_what_the_file_says(detect_onnx: Path) -> None:
    runner = runner_from_path(detect_onnx, metadata={"names": "{0: 'car'}"})
    assert runner.metadata["names"] == "{0: 'car'}" and runner.metadata["task"] == "detect"
