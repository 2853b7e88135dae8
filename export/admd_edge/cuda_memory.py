"""CUDA buffers and streams for TensorRT, through cuda-python's runtime bindings or, failing that, torch.

Follows NVIDIA's ``samples/python/common_runtime.py``: ``cudaMalloc`` device buffers, ``cudaMallocHost``
pinned host arrays, ``cudaMemcpyAsync`` on one stream, ``cudaStreamSynchronize``. The torch backend does the
same with CUDA tensors (``data_ptr()``), a pinned CPU tensor and ``torch.cuda.Stream``.
"""

from __future__ import annotations

import ctypes
from typing import Any

import numpy as np

from admd_edge import _optional
from admd_edge.errors import EdgeError


class CudaMemory:
    """Common face of the two backends; :func:`cuda_memory` picks one."""

    stream_handle: int

    def device_buffer(self, nbytes: int) -> int:
        """Allocate ``nbytes`` on the GPU and return the device pointer."""
        raise NotImplementedError

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A pinned host array (page-locked, for asynchronous copies)."""
        raise NotImplementedError

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        """Queue a host-to-device copy of ``array`` to ``ptr`` on the stream."""
        raise NotImplementedError

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        """Queue a device-to-host copy from ``ptr`` into ``array`` on the stream."""
        raise NotImplementedError

    def synchronize(self) -> None:
        """Wait for everything queued on the stream."""
        raise NotImplementedError

    def device_name(self) -> tuple[str, str]:
        """GPU name and compute capability ``"major.minor"``."""
        raise NotImplementedError

    def free(self) -> None:
        """Release every buffer and the stream."""


class _CudartMemory(CudaMemory):
    def __init__(self, cudart: Any, device: int):
        self._rt = cudart
        self._device = device
        self._check(cudart.cudaSetDevice(device))
        self._stream = self._check(cudart.cudaStreamCreate())
        self.stream_handle = int(self._stream)
        self._device_ptrs: list[int] = []
        self._host_ptrs: list[int] = []

    def _check(self, result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if err != self._rt.cudaError_t.cudaSuccess:
            _, text = self._rt.cudaGetErrorString(err)
            raise EdgeError(f"CUDA runtime error {err}: {text.decode(errors='replace')}")
        return rest[0] if len(rest) == 1 else rest

    def device_buffer(self, nbytes: int) -> int:
        ptr = int(self._check(self._rt.cudaMalloc(max(int(nbytes), 1))))
        self._device_ptrs.append(ptr)
        return ptr

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        ptr = int(self._check(self._rt.cudaMallocHost(max(count * dtype.itemsize, 1))))
        self._host_ptrs.append(ptr)
        raw = (ctypes.c_byte * max(count * dtype.itemsize, 1)).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape)

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        self._check(self._rt.cudaMemcpyAsync(ptr, array.ctypes.data, array.nbytes, kind, self._stream))

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        kind = self._rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        self._check(self._rt.cudaMemcpyAsync(array.ctypes.data, ptr, array.nbytes, kind, self._stream))

    def synchronize(self) -> None:
        self._check(self._rt.cudaStreamSynchronize(self._stream))

    def device_name(self) -> tuple[str, str]:
        prop = self._check(self._rt.cudaGetDeviceProperties(self._device))
        name = prop.name.decode(errors="replace") if isinstance(prop.name, bytes) else str(prop.name)
        return name.rstrip("\x00"), f"{prop.major}.{prop.minor}"

    def free(self) -> None:
        for ptr in self._device_ptrs:
            self._rt.cudaFree(ptr)
        for ptr in self._host_ptrs:
            self._rt.cudaFreeHost(ptr)
        self._device_ptrs, self._host_ptrs = [], []


class _TorchMemory(CudaMemory):
    def __init__(self, torch: Any, device: int):
        if not torch.cuda.is_available():
            raise EdgeError("no CUDA GPU visible to torch: TensorRT needs one")
        self._torch = torch
        self._device = torch.device("cuda", device)
        self._stream = torch.cuda.Stream(device=self._device)
        self.stream_handle = int(self._stream.cuda_stream)
        self._tensors: dict[int, Any] = {}
        self._hosts: list[Any] = []

    def device_buffer(self, nbytes: int) -> int:
        t = self._torch.empty(max(int(nbytes), 1), dtype=self._torch.uint8, device=self._device)
        self._tensors[t.data_ptr()] = t
        return t.data_ptr()

    def host_array(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        dtype = np.dtype(dtype)
        t = self._torch.empty(max(int(np.prod(shape)) * dtype.itemsize, 1), dtype=self._torch.uint8, pin_memory=True)
        self._hosts.append(t)
        return t.numpy()[: int(np.prod(shape)) * dtype.itemsize].view(dtype).reshape(shape)

    def to_device(self, ptr: int, array: np.ndarray) -> None:
        src = self._torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8))
        with self._torch.cuda.stream(self._stream):
            self._tensors[ptr][: src.numel()].copy_(src, non_blocking=True)

    def to_host(self, array: np.ndarray, ptr: int) -> None:
        dst = self._torch.from_numpy(array.reshape(-1).view(np.uint8))
        with self._torch.cuda.stream(self._stream):
            dst.copy_(self._tensors[ptr][: dst.numel()], non_blocking=True)

    def synchronize(self) -> None:
        self._stream.synchronize()

    def device_name(self) -> tuple[str, str]:
        major, minor = self._torch.cuda.get_device_capability(self._device)
        return self._torch.cuda.get_device_name(self._device), f"{major}.{minor}"

    def free(self) -> None:
        self._tensors.clear()
        self._hosts.clear()


def cuda_memory(device: int = 0) -> CudaMemory:
    """CUDA buffers/stream on ``device`` through cuda-python, else torch.

    Raises:
        MissingDependencyError: If neither cuda-python nor torch is importable.
        EdgeError: If no GPU is usable.
    """
    kind, module = _optional.cuda_memory_backend()
    return _CudartMemory(module, device) if kind == "cudart" else _TorchMemory(module, device)
