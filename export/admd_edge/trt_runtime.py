"""TensorRT runner (TensorRT 10 and 11, name-based tensor API).

``Runtime.deserialize_cuda_engine`` -> ``create_execution_context``; I/O tensors by name
(``num_io_tensors``, ``get_tensor_name``, ``get_tensor_mode``); ``set_input_shape`` for the batch, output
shapes from ``context.get_tensor_shape``; ``set_tensor_address`` on device buffers; ``execute_async_v3`` on a
CUDA stream. Buffers come from :mod:`admd_edge.cuda_memory` (cuda-python or torch).

Reads raw plans written by :mod:`admd_edge.engine` (metadata from the ``.json`` sidecar) and Ultralytics
``.engine`` files (a 4-byte little-endian length and a JSON metadata header before the plan).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from admd_edge import _optional
from admd_edge.cuda_memory import cuda_memory
from admd_edge.errors import EdgeError

LOGGER = logging.getLogger(__name__)


def sidecar_path(plan: str | Path) -> Path:
    """The JSON sidecar written next to a plan: ``model.plan`` -> ``model.plan.json``."""
    plan = Path(plan)
    return plan.with_name(plan.name + ".json")


def read_sidecar(plan: str | Path) -> dict[str, Any]:
    """The plan's sidecar as a dict, or ``{}`` when there is none."""
    path = sidecar_path(plan)
    return json.loads(path.read_text()) if path.is_file() else {}


def engine_header(path: str | Path) -> tuple[int, dict[str, Any]]:
    """Offset of the plan bytes and the metadata of an Ultralytics-style header (``(0, {})`` without one)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(4), byteorder="little")
        size = f.seek(0, 2)
        if 0 < n <= size - 4:
            f.seek(4)
            try:
                return 4 + n, json.loads(f.read(n))
            except (ValueError, UnicodeDecodeError):
                pass
    return 0, {}


class TensorRTRunner:
    """A deserialized TensorRT engine behind the runner interface.

    Args:
        path: Raw plan (with an optional ``.json`` sidecar) or an Ultralytics ``.engine``.
        device: CUDA device index.

    Raises:
        MissingDependencyError: If tensorrt (or cuda-python/torch for buffers) is not importable.
        EdgeError: If the plan does not deserialize (built for another TensorRT version or GPU).
    """

    def __init__(self, path: str | Path, *, device: int = 0):
        trt = _optional.tensorrt()
        self.path = Path(path)
        offset, header = engine_header(self.path)
        sidecar = read_sidecar(self.path)
        self._memory = cuda_memory(device)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes()[offset:])
        if self.engine is None:
            built = sidecar.get("tensorrt_version", "?"), sidecar.get("gpu_name", "?")
            raise EdgeError(
                f"TensorRT {trt.__version__} could not deserialize {self.path} (built with TensorRT {built[0]} on "
                f"{built[1]}): an engine only runs on the TensorRT version and GPU it was built for; rebuild it "
                "here with `admd-edge build-engine MODEL.onnx`"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(self.inputs) != 1:
            raise EdgeError(f"expected one input tensor, the engine has {self.inputs}")
        self.input_name = self.inputs[0]
        self.input_shape = tuple(int(d) if d > 0 else None for d in self.engine.get_tensor_shape(self.input_name))
        self._dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n))) for n in names}
        self.input_dtype = self._dtypes[self.input_name]
        self.metadata: dict[str, Any] = {**header, **sidecar.get("model", {})}
        self._bound: tuple[int, ...] | None = None
        self._device: dict[str, int] = {}
        self._host: dict[str, np.ndarray] = {}
        self._capacity: dict[str, int] = {}

    def _bind(self, shape: tuple[int, ...]) -> None:
        if not self.context.set_input_shape(self.input_name, shape):
            raise ValueError(
                f"input shape {shape} is outside the engine's optimisation profile for {self.input_name!r}"
            )
        for name in (self.input_name, *self.outputs):
            tensor_shape = tuple(int(d) for d in self.context.get_tensor_shape(name))
            nbytes = int(np.prod(tensor_shape)) * self._dtypes[name].itemsize
            if self._capacity.get(name, -1) < nbytes:
                self._device[name] = self._memory.device_buffer(nbytes)
                self._capacity[name] = nbytes
            if name != self.input_name:
                self._host[name] = self._memory.host_array(tensor_shape, self._dtypes[name])
            self.context.set_tensor_address(name, self._device[name])
        self._bound = shape

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Copy the batch in, execute on the stream, copy every output back."""
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if batch.shape != self._bound:
            self._bind(batch.shape)
        self._memory.to_device(self._device[self.input_name], batch)
        if not self.context.execute_async_v3(self._memory.stream_handle):
            raise EdgeError("TensorRT execute_async_v3 failed (see the TensorRT log above)")
        for name in self.outputs:
            self._memory.to_host(self._host[name], self._device[name])
        self._memory.synchronize()
        return [self._host[name].astype(np.float32, copy=True) for name in self.outputs]

    def close(self) -> None:
        """Free the CUDA buffers."""
        self._memory.free()
