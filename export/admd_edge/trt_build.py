"""The TensorRT builder calls behind :func:`admd_edge.engine.engine_from_onnx` (TensorRT 10 and 11).

Kept apart from the cache/sidecar logic so that each TensorRT call sits in one short function written against
NVIDIA's documented Python API: ``Builder``, ``create_network``, ``OnnxParser.parse_from_file``,
``create_builder_config``, ``set_memory_pool_limit(MemoryPoolType.WORKSPACE, ...)``,
``create_optimization_profile``/``set_shape``, ``BuilderFlag.FP16``/``INT8`` (TensorRT 10 only),
``int8_calibrator`` (TensorRT 10 only), ``create_timing_cache``/``set_timing_cache`` and
``build_serialized_network``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from admd_edge.cuda_memory import CudaMemory
from admd_edge.errors import EngineBuildError
from admd_edge.preprocess import Preprocessor

LOGGER = logging.getLogger(__name__)


def _network(trt: Any, builder: Any, strongly_typed: bool) -> Any:
    """Explicit-batch network (``create_network(0)``); strongly typed when asked (always so on TensorRT 11)."""
    flags = 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if strongly_typed and flag is not None:
        flags = 1 << int(flag)
    return builder.create_network(flags)


def _parse(trt: Any, network: Any, logger: Any, onnx_path: Path) -> Any:
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineBuildError(f"TensorRT could not parse {onnx_path}: {errors or 'see the TensorRT log'}")
    return parser


def _head_sigmoid_fp32(trt: Any, network: Any) -> int:
    """Keep the detection head's Sigmoid layers in FP32 under INT8 calibration (calibrated scores).

    Returns:
        How many layers were constrained.
    """
    names = [network.get_layer(i).name for i in range(network.num_layers)]
    indices = [int(m.group(1)) for n in names if (m := re.search(r"/model\.(\d+)/", n))]
    head = f"/model.{max(indices)}/" if indices else None
    count = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if head and head in layer.name and layer.type == trt.LayerType.ACTIVATION and "sigmoid" in layer.name.lower():
            layer.precision = trt.float32
            for j in range(layer.num_outputs):
                layer.set_output_type(j, trt.float32)
            count += 1
    return count


def entropy_calibrator(
    trt: Any, files: Sequence[Path], input_shape: Sequence[int], memory: CudaMemory, cache: Path | None
) -> Any:
    """An ``IInt8EntropyCalibrator2`` feeding letterboxed calibration images (the runtime's own preprocessing).

    Args:
        trt: The tensorrt module.
        files: Calibration images.
        input_shape: ``(batch, 3, h, w)`` of the network input (the calibration batch).
        memory: CUDA memory for the device batch.
        cache: Calibration cache file (read when present, written after calibration).
    """
    batch, _, h, w = (int(v) for v in input_shape)

    class _Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self._pre = Preprocessor((h, w), batch=batch)
            self._chunks = iter([list(files[i : i + batch]) for i in range(0, len(files), batch)])
            self._device = memory.device_buffer(batch * 3 * h * w * 4)

        def get_batch_size(self) -> int:
            return batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            chunk = next(self._chunks, None)
            if chunk is None:
                return None
            images = [cv2.imread(str(f)) for f in chunk]
            images = [im for im in images if im is not None] or [np.full((h, w, 3), 114, np.uint8)]
            images += [images[-1]] * (batch - len(images))
            tensor, _ = self._pre(images)
            memory.to_device(self._device, np.ascontiguousarray(tensor))
            memory.synchronize()
            return [self._device]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache is not None and cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            if cache is not None:
                cache.write_bytes(bytes(data))

    return _Calibrator()


def serialize_network(
    trt: Any,
    onnx_path: Path,
    path: str,
    precision: str,
    workspace_gb: float,
    shapes: dict[str, list[int]] | None,
    timing_cache: Path | None,
    memory: CudaMemory,
    *,
    calibrator: Any = None,
    calibration_files: Sequence[Path] = (),
    calibration_cache: Path | None = None,
) -> memoryview:
    """Parse the ONNX and build a serialized plan along ``path`` (see :func:`admd_edge.engine.build_path`).

    Raises:
        EngineBuildError: If parsing or building fails.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = _network(trt, builder, strongly_typed=path == "trt11-strongly-typed")
    parser = _parse(trt, network, logger, onnx_path)  # the parser must outlive the build
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    inp = network.get_input(0)
    if shapes is not None:
        profile = builder.create_optimization_profile()
        profile.set_shape(inp.name, min=shapes["min"], opt=shapes["opt"], max=shapes["max"])
        config.add_optimization_profile(profile)
    if path.startswith("trt10"):
        if precision in ("fp16", "int8") or path == "trt10-explicit-qdq":
            config.set_flag(trt.BuilderFlag.FP16)  # layers left unquantized take the faster of FP16/FP32
        if precision == "int8" or path == "trt10-explicit-qdq":
            config.set_flag(trt.BuilderFlag.INT8)
        if path == "trt10-int8-calibrator":
            calib_shape = shapes["opt"] if shapes is not None else list(inp.shape)
            config.int8_calibrator = calibrator or entropy_calibrator(
                trt, calibration_files, calib_shape, memory, calibration_cache
            )
            if _head_sigmoid_fp32(trt, network):
                config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    cache = None
    if timing_cache is not None:
        cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineBuildError(f"TensorRT failed to build an engine from {onnx_path} via {path}; see its log above")
    if cache is not None:
        timing_cache.write_bytes(memoryview(config.get_timing_cache().serialize()))
    del parser
    return memoryview(serialized)
