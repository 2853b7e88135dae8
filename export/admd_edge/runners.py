"""One inference interface over ONNX Runtime and TensorRT.

A runner has ``input_name``, ``input_shape`` (ints, or None where dynamic), ``input_dtype``, ``metadata``
(the model's own metadata: names, imgsz, stride, task, ...) and ``run(batch) -> list[np.ndarray]``.
:func:`runner_from_path` picks the runner from the file suffix.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from admd_edge import _optional

LOGGER = logging.getLogger(__name__)

ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
_GPU_PROVIDERS = ("CUDAExecutionProvider",)


@runtime_checkable
class Runner(Protocol):
    """What the model wrapper needs from a backend."""

    input_name: str
    input_shape: tuple[int | None, ...]
    input_dtype: np.dtype
    metadata: dict[str, Any]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch ``(N, 3, H, W)`` and return the outputs in model order."""
        ...


def _static(dim: Any) -> int | None:
    return int(dim) if isinstance(dim, (int, np.integer)) and int(dim) > 0 else None


def ort_providers(
    requested: Sequence[str] | None, available: Sequence[str], use_tensorrt_ep: bool = False
) -> list[str]:
    """Execution providers to ask ONNX Runtime for.

    Args:
        requested: Explicit providers, or None for: TensorRT EP (only with ``use_tensorrt_ep``), CUDA EP when
            available, then CPU.
        available: ``onnxruntime.get_available_providers()``.
        use_tensorrt_ep: Put ``TensorrtExecutionProvider`` first when available (it builds engines on load).

    Raises:
        ValueError: If a requested provider is not available.
    """
    if requested:
        missing = [p for p in requested if p not in available]
        if missing:
            raise ValueError(f"execution providers {missing} are not available here; available: {list(available)}")
        return list(requested)
    chosen = ["TensorrtExecutionProvider"] if use_tensorrt_ep and "TensorrtExecutionProvider" in available else []
    chosen += [p for p in _GPU_PROVIDERS if p in available]
    return [*chosen, "CPUExecutionProvider"]


class OnnxRuntimeRunner:
    """ONNX Runtime session behind the runner interface.

    Args:
        path: ``.onnx`` file.
        threads: Intra-op threads (None: ONNX Runtime's default, every physical core).
        providers: Explicit execution providers; None picks CUDA when present, then CPU.
        use_tensorrt_ep: Try ONNX Runtime's TensorRT execution provider first when present.
        spin: Let idle intra-op threads busy-wait between runs (ONNX Runtime's default, the lowest latency on
            an otherwise idle CPU). Turn it off on a CPU shared with other busy processes: there the spinning
            threads fight them for the cores (measured 2x slower inference on a loaded 2-core machine).

    Runs go through an IOBinding on the caller's input buffer and preallocated outputs when the output
    shapes are static, which saves the output allocation and copy of ``session.run``. The returned arrays
    are then reused: they hold the results until the next call.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        threads: int | None = None,
        providers: Sequence[str] | None = None,
        use_tensorrt_ep: bool = False,
        spin: bool = True,
    ):
        ort = _optional.onnxruntime()
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"ONNX model not found: {path}")
        options = ort.SessionOptions()
        if threads is not None:
            if threads < 1:
                raise ValueError(f"threads must be >= 1; got {threads}")
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        # Spin during a run, not after it: post-processing and the next letterbox then get every core.
        options.add_session_config_entry("session.force_spinning_stop", "1")
        chosen = ort_providers(providers, ort.get_available_providers(), use_tensorrt_ep)
        self.path = path
        try:
            self.session = ort.InferenceSession(str(path), sess_options=options, providers=chosen)
        except Exception as err:  # ONNX Runtime raises its own types for unreadable models
            raise ValueError(f"ONNX Runtime could not load {path}: {str(err).splitlines()[0]}") from err
        inp = self.session.get_inputs()[0]
        self.input_name: str = inp.name
        self.input_shape: tuple[int | None, ...] = tuple(_static(d) for d in inp.shape)
        self.input_dtype = np.dtype(np.float16 if inp.type == "tensor(float16)" else np.float32)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.metadata: dict[str, Any] = dict(self.session.get_modelmeta().custom_metadata_map)
        self.providers = self.session.get_providers()
        self._outputs = _static_outputs(self.session.get_outputs())
        self._binding = self.session.io_binding() if self._outputs is not None else None
        self._bound: tuple[int, tuple[int, ...]] | None = None
        self._bound_input: np.ndarray | None = None
        LOGGER.debug("ONNX Runtime session on %s for %s", self.providers, path)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Run one batch; the outputs are reused buffers when the output shapes are static."""
        if self._binding is None or self._outputs is None:
            return self.session.run(self.output_names, {self.input_name: batch})
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        key = (batch.ctypes.data, batch.shape)
        if key != self._bound:
            expected = self._outputs[0].shape[0]
            if batch.shape[0] != expected:
                raise ValueError(f"this model takes batches of {expected}; got {batch.shape[0]}")
            self._binding.bind_input(self.input_name, "cpu", 0, batch.dtype, list(batch.shape), batch.ctypes.data)
            for name, out in zip(self.output_names, self._outputs):
                self._binding.bind_output(name, "cpu", 0, out.dtype, list(out.shape), out.ctypes.data)
            self._bound, self._bound_input = key, batch  # keeps the bound memory alive
        self.session.run_with_iobinding(self._binding)
        return self._outputs


_ORT_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16}


def _static_outputs(outputs: Sequence[Any]) -> list[np.ndarray] | None:
    """Preallocated arrays for outputs of fixed shape and float type, or None when any is dynamic."""
    arrays = []
    for out in outputs:
        dims = [_static(d) for d in out.shape]
        if None in dims or out.type not in _ORT_TYPES:
            return None
        arrays.append(np.empty(dims, dtype=_ORT_TYPES[out.type]))
    return arrays


def runner_from_path(
    path: str | Path,
    *,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    metadata: dict[str, Any] | None = None,
    spin: bool = True,
) -> Runner:
    """Runner for a model file: ONNX Runtime for ``.onnx``, TensorRT for ``.engine``/``.plan``/``.trt``.

    Args:
        path: Model file.
        threads: ONNX Runtime intra-op threads.
        providers: ONNX Runtime execution providers.
        metadata: Metadata overriding what the file carries (e.g. from a bundle manifest).
        spin: ONNX Runtime thread spinning (see :class:`OnnxRuntimeRunner`).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the suffix is not one of those.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        runner: Runner = OnnxRuntimeRunner(path, threads=threads, providers=providers, spin=spin)
    elif suffix in ENGINE_SUFFIXES:
        from admd_edge.trt_runtime import TensorRTRunner

        runner = TensorRTRunner(path)
    else:
        raise ValueError(
            f"unknown model type {path.name!r}: use an .onnx file or a TensorRT plan "
            f"({', '.join(ENGINE_SUFFIXES)}), or a bundle folder with manifest.json"
        )
    if metadata:
        runner.metadata = {**runner.metadata, **metadata}
    return runner
