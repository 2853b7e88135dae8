"""TensorRT engine building: path choice for TensorRT 10/11, shapes, cache key, and (with a GPU) a real build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from admd_edge.engine import (
    TRT10_CALIBRATOR,
    TRT10_FLAGS,
    TRT10_QDQ,
    TRT11_STRONG,
    build_path,
    cache_key,
    engine_from_onnx,
    resolve_shapes,
)
from admd_edge.errors import EngineBuildError
from admd_edge.onnx_proto import OnnxSummary, summarize_onnx


@pytest.mark.parametrize(
    "major, precision, qdq, fp16, expected",
    [
        (10, "fp16", False, False, TRT10_FLAGS),
        (10, "fp32", False, False, TRT10_FLAGS),
        (10, "int8", False, False, TRT10_CALIBRATOR),
        (10, "int8", True, False, TRT10_QDQ),
        (11, "fp32", False, False, TRT11_STRONG),
        (11, "fp16", False, True, TRT11_STRONG),
        (11, "int8", True, False, TRT11_STRONG),
        (11, "int8", False, False, "no INT8 calibrators"),
        (11, "fp16", False, False, "strongly typed"),
        (8, "fp16", False, False, "not supported"),
    ],
)
def test_build_path_follows_the_tensorrt_generation(major, precision, qdq, fp16, expected) -> None:
    if expected.startswith("trt"):
        assert build_path(major, precision, qdq, fp16) == expected
    else:
        with pytest.raises(EngineBuildError, match=expected):
            build_path(major, precision, qdq, fp16)


def test_an_unknown_precision_is_refused_with_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="fp32, fp16, int8"):
        build_path(10, "int4", False, False)


def tiny_onnx(path: Path, *, qdq: bool = False, fp16: bool = False, batch: int | str = 1) -> Path:
    from onnx import TensorProto, helper, save

    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, 8, 8])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, [batch, 3, 8, 8])
    nodes, inits = [], []
    if qdq:
        inits = [
            helper.make_tensor("s", TensorProto.FLOAT, [], [0.1]),
            helper.make_tensor("z", TensorProto.INT8, [], [0]),
        ]
        nodes = [
            helper.make_node("QuantizeLinear", ["images", "s", "z"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "z"], ["out"]),
        ]
    elif fp16:
        nodes = [
            helper.make_node("Cast", ["images"], ["h"], to=TensorProto.FLOAT16),
            helper.make_node("Cast", ["h"], ["out"], to=TensorProto.FLOAT),
        ]
    else:
        nodes = [helper.make_node("Identity", ["images"], ["out"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits))
    model.metadata_props.add(key="imgsz", value="[8, 8]")
    model.metadata_props.add(key="names", value="{0: 'a'}")
    save(model, path)
    return path


def test_onnx_summary_tells_qdq_and_fp16_models_from_fp32(tmp_path: Path, detect_onnx: Path) -> None:
    plain = summarize_onnx(tiny_onnx(tmp_path / "plain.onnx"))
    qdq = summarize_onnx(tiny_onnx(tmp_path / "qdq.onnx", qdq=True))
    half = summarize_onnx(tiny_onnx(tmp_path / "half.onnx", fp16=True))
    assert (plain.has_qdq, plain.has_fp16) == (False, False)
    assert (qdq.has_qdq, qdq.has_fp16) == (True, False)
    assert (half.has_qdq, half.has_fp16) == (False, True)
    yolo = summarize_onnx(detect_onnx)
    assert yolo.inputs == (("images", (1, 3, 64, 64)),) and not yolo.has_qdq and not yolo.has_fp16
    assert yolo.metadata["task"] == "detect" and yolo.metadata["imgsz"] == "[64, 64]"


def test_shapes_are_none_for_a_static_input_and_a_profile_for_a_dynamic_batch(tmp_path: Path) -> None:
    assert resolve_shapes(summarize_onnx(tiny_onnx(tmp_path / "s.onnx")), None) is None
    dynamic = summarize_onnx(tiny_onnx(tmp_path / "d.onnx", batch="batch"))
    assert resolve_shapes(dynamic, None, max_batch=4) == {"min": [1, 3, 8, 8], "opt": [1, 3, 8, 8], "max": [4, 3, 8, 8]}
    explicit = {"min": (1, 3, 8, 8), "opt": (2, 3, 8, 8), "max": (8, 3, 8, 8)}
    assert resolve_shapes(dynamic, explicit)["opt"] == [2, 3, 8, 8]
    with pytest.raises(ValueError, match="min, opt and max"):
        resolve_shapes(dynamic, {"min": (1, 3, 8, 8)})


def test_shapes_of_a_multi_input_onnx_are_refused() -> None:
    summary = OnnxSummary({}, frozenset(), False, False, (("a", (1,)), ("b", (1,))))
    with pytest.raises(ValueError, match="single-input"):
        resolve_shapes(summary, None)


def test_the_cache_key_changes_with_each_part_it_is_made_of() -> None:
    base = ("10.3.0", "Orin", "ab" * 32, "fp16", None)
    keys = {cache_key(*base)}
    for i, other in enumerate(["11.0.0", "RTX 4090", "cd" * 32, "int8", {"min": [1, 3, 64, 64]}]):
        variant = list(base)
        variant[i] = other
        keys.add(cache_key(*variant))
    assert len(keys) == 6 and cache_key(*base) == cache_key(*base)


@pytest.mark.trt
@pytest.mark.gpu
def test_an_fp16_engine_matches_onnx_runtime_and_is_cached(
    detect_onnx: Path, bus_image: np.ndarray, tmp_path: Path
) -> None:
    import tensorrt as trt

    from admd_edge.preprocess import Preprocessor
    from admd_edge.runners import runner_from_path

    precision = "fp16" if int(trt.__version__.split(".")[0]) < 11 else "fp32"  # TRT 11: FP32 ONNX -> fp32 plan
    build = engine_from_onnx(detect_onnx, precision, out_dir=tmp_path)
    assert not build.cached and build.path in (TRT10_FLAGS, TRT11_STRONG)
    sidecar = json.loads(build.sidecar.read_text())
    assert sidecar["onnx_sha256"] and sidecar["gpu_name"] and sidecar["tensorrt_version"] == trt.__version__
    again = engine_from_onnx(detect_onnx, precision, out_dir=tmp_path)
    assert again.cached and again.plan == build.plan

    tensor = Preprocessor(64)(bus_image)[0].copy()
    engine_runner, ort_runner = runner_from_path(build.plan), runner_from_path(detect_onnx)
    assert engine_runner.metadata["task"] == "detect"
    got, want = engine_runner.run(tensor)[0], ort_runner.run(tensor)[0]
    assert got.shape == want.shape
    assert np.allclose(got[:, :4], want[:, :4], atol=1.0, rtol=0.01)  # box pixels
    assert np.allclose(got[:, 4:], want[:, 4:], atol=0.02)  # class probabilities
