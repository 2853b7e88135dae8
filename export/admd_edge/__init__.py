"""admd-edge: the torch-free runtime that ships to the drone.

Runs an exported YOLO student (ONNX through ONNX Runtime, or a TensorRT engine) with Ultralytics-identical
letterboxing and decoding, verifies deployment bundles, builds TensorRT engines on the target, benchmarks.

``import admd_edge`` is cheap: submodules (and onnxruntime / tensorrt behind them) load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "EdgeModel": "admd_edge.model",
    "load_model": "admd_edge.model",
    "Detections": "admd_edge.postprocess",
    "decode": "admd_edge.postprocess",
    "non_max_suppression": "admd_edge.postprocess",
    "nms": "admd_edge.nms",
    "rotated_nms": "admd_edge.nms",
    "predict_sliced": "admd_edge.slicing",
    "SliceConfig": "admd_edge.slicing",
    "tile_windows": "admd_edge.slicing",
    "Preprocessor": "admd_edge.preprocess",
    "letterbox_image": "admd_edge.preprocess",
    "ModelInfo": "admd_edge.metadata",
    "runner_from_path": "admd_edge.runners",
    "OnnxRuntimeRunner": "admd_edge.runners",
    "engine_from_onnx": "admd_edge.engine",
    "verify_bundle": "admd_edge.manifest",
    "write_manifest": "admd_edge.manifest",
    "EdgeError": "admd_edge.errors",
    "BundleIntegrityError": "admd_edge.errors",
    "EngineBuildError": "admd_edge.errors",
    "MissingDependencyError": "admd_edge.errors",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'admd_edge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
