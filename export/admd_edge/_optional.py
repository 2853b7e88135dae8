"""The one place optional heavy dependencies are imported, on first use.

``import admd_edge`` loads numpy only. ONNX Runtime (a hard dependency, but a slow import), TensorRT and the
CUDA runtime bindings are imported here when a runner or the engine builder first needs them, and a missing
one raises :class:`~admd_edge.errors.MissingDependencyError` that says what to install and keeps the cause.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from admd_edge.errors import MissingDependencyError

_TRT_HINT = (
    "install TensorRT 10 or 11 for your CUDA (`pip install 'admd-edge[trt]'` with NVIDIA's index, the JetPack "
    "system package on a Jetson) or run inside the NVIDIA TensorRT Docker image (nvcr.io/nvidia/tensorrt)"
)


def onnxruntime() -> ModuleType:
    """Import ``onnxruntime``.

    Raises:
        MissingDependencyError: If it is not installed.
    """
    try:
        import onnxruntime as ort
    except ImportError as err:
        raise MissingDependencyError(
            "onnxruntime is not importable: `pip install onnxruntime` (or onnxruntime-gpu on a CUDA machine)"
        ) from err
    return ort


def tensorrt() -> ModuleType:
    """Import ``tensorrt`` (10.x or 11.x).

    Raises:
        MissingDependencyError: If it is not importable.
    """
    try:
        import tensorrt as trt
    except ImportError as err:
        raise MissingDependencyError(f"tensorrt is not importable: {_TRT_HINT}") from err
    return trt


def tensorrt_available() -> bool:
    """Whether ``tensorrt`` imports here (it may still fail to build without a GPU)."""
    try:
        tensorrt()
    except MissingDependencyError:
        return False
    return True


def cuda_memory_backend() -> tuple[str, Any]:
    """Pick a CUDA memory API for TensorRT buffers: cuda-python's runtime bindings, else torch.

    Returns:
        ``("cudart", module)`` or ``("torch", module)``.

    Raises:
        MissingDependencyError: If neither is importable.
    """
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]  # older cuda-python layout
        except ImportError:
            cudart = None
    if cudart is not None:
        return "cudart", cudart
    try:
        import torch
    except ImportError as err:
        raise MissingDependencyError(
            "TensorRT buffers need cuda-python (`pip install cuda-python`) or a CUDA build of torch"
        ) from err
    return "torch", torch
