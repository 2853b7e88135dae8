"""Build a TensorRT engine from an ONNX on the target, TensorRT 10 or 11, with a cache.

Two API generations (see docs/DEPLOY.md):

- **TensorRT 10** (JetPack 6): ``create_network(0)`` (explicit batch), ``set_memory_pool_limit(WORKSPACE)``,
  precision through ``BuilderFlag.FP16`` / ``INT8``; INT8 from an ONNX without Q/DQ needs a calibrator
  (``IInt8EntropyCalibrator2`` over calibration images, deprecated since 10.1 but working), with the head's
  Sigmoid kept in FP32 for calibrated scores; an ONNX with Q/DQ needs no calibrator.
- **TensorRT 11**: no precision flags and no calibrators; the network is strongly typed
  (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, always on in 11), so FP16 must already be in the ONNX (an
  FP16 export or ModelOpt AutoCast) and INT8 must come as Q/DQ nodes (ModelOpt quantization). Anything else is
  refused with what to run instead.

The result is a raw plan (``trtexec --loadEngine`` reads it) plus a JSON sidecar, cached under a key of
(TensorRT version, GPU name, ONNX sha256, precision, input shapes): the same request returns the cached
engine. Which path was used is logged and returned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from admd_edge import __version__, _optional
from admd_edge.errors import EngineBuildError
from admd_edge.metadata import ModelInfo
from admd_edge.onnx_proto import OnnxSummary, sha256_file, summarize_onnx
from admd_edge.trt_runtime import sidecar_path

LOGGER = logging.getLogger(__name__)

PRECISIONS = ("fp32", "fp16", "int8")
SIDECAR_FORMAT = "admd-edge/engine/v1"
TRT10_FLAGS = "trt10-builder-flags"
TRT10_QDQ = "trt10-explicit-qdq"
TRT10_CALIBRATOR = "trt10-int8-calibrator"
TRT11_STRONG = "trt11-strongly-typed"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class EngineBuild:
    """What :func:`engine_from_onnx` produced.

    Attributes:
        plan: Raw serialized engine.
        sidecar: Its JSON description (versions, GPU, hashes, precision, shapes, build path, time).
        path: Build path used (``trt10-builder-flags``, ``trt10-explicit-qdq``, ``trt10-int8-calibrator``,
            ``trt11-strongly-typed``).
        cached: Whether it came from the cache instead of a build.
        info: The sidecar's content.
    """

    plan: Path
    sidecar: Path
    path: str
    cached: bool
    info: dict[str, Any]


def build_path(trt_major: int, precision: str, has_qdq: bool, has_fp16: bool) -> str:
    """Choose the build path for a TensorRT major version and an ONNX, or refuse.

    Raises:
        ValueError: If ``precision`` is not fp32, fp16 or int8.
        EngineBuildError: If TensorRT is older than 10, or TensorRT 11 is asked for a precision the ONNX does
            not carry (it has no precision flags or calibrators).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    if trt_major < 10:
        raise EngineBuildError(f"TensorRT {trt_major}.x is not supported: use TensorRT 10 (JetPack 6) or 11")
    if trt_major >= 11:
        if precision == "int8" and not has_qdq:
            raise EngineBuildError(
                "TensorRT 11 has no INT8 calibrators: int8 needs an ONNX with Q/DQ nodes. Quantize it first "
                "(NVIDIA ModelOpt: `python -m modelopt.onnx.quantization --onnx_path model.onnx "
                "--quantize_mode int8 --calibration_data calib.npy`, it calibrates on CPU), or build with TensorRT 10"
            )
        if precision == "fp16" and not (has_fp16 or has_qdq):
            raise EngineBuildError(
                "TensorRT 11 networks are strongly typed and this ONNX is FP32: build from an FP16 ONNX "
                "(an admd-deploy bundle has one, student.fp16.onnx; or convert with `python -m modelopt.onnx.autocast "
                "--onnx_path model.onnx --output_path model_fp16.onnx`) or build --precision fp32"
            )
        return TRT11_STRONG
    if has_qdq:
        return TRT10_QDQ
    return TRT10_CALIBRATOR if precision == "int8" else TRT10_FLAGS


def resolve_shapes(
    summary: OnnxSummary, shapes: Mapping[str, Sequence[int]] | None, max_batch: int = 1
) -> dict[str, list[int]] | None:
    """Optimisation-profile shapes ``{"min", "opt", "max"}`` for a dynamic input, None for a static one.

    A dynamic batch without explicit ``shapes`` gets ``min = opt = 1`` and ``max = max_batch``; dynamic
    spatial dims take the metadata ``imgsz``.

    Raises:
        ValueError: If the ONNX has not exactly one input, or a dynamic shape cannot be resolved.
    """
    if len(summary.inputs) != 1:
        raise ValueError(f"expected a single-input ONNX; got inputs {[n for n, _ in summary.inputs]}")
    _, dims = summary.inputs[0]
    if shapes is not None:
        missing = {"min", "opt", "max"} - set(shapes)
        if missing:
            raise ValueError(f"shapes needs min, opt and max; missing {sorted(missing)}")
        return {k: [int(v) for v in shapes[k]] for k in ("min", "opt", "max")}
    if all(isinstance(d, int) and d > 0 for d in dims):
        return None
    hw = ModelInfo.from_metadata(summary.metadata).imgsz if "names" in summary.metadata else None
    spatial = [d if isinstance(d, int) and d > 0 else None for d in dims[2:]]
    if None in spatial:
        if hw is None:
            raise ValueError("the ONNX has dynamic height/width and no imgsz metadata: pass shapes={min,opt,max}")
        spatial = list(hw)
    channels = dims[1] if isinstance(dims[1], int) and dims[1] > 0 else 3
    return {
        "min": [1, channels, *spatial],
        "opt": [1, channels, *spatial],
        "max": [max(1, int(max_batch)), channels, *spatial],
    }


def cache_key(
    trt_version: str, gpu_name: str, onnx_sha256: str, precision: str, shapes: Any, calibration: str | None = None
) -> str:
    """Short hex key of everything an engine depends on."""
    blob = json.dumps(
        {
            "trt": trt_version,
            "gpu": gpu_name,
            "onnx": onnx_sha256,
            "precision": precision,
            "shapes": shapes,
            "calibration": calibration,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$ADMD_EDGE_CACHE`` or ``~/.cache/admd-edge/engines``."""
    return Path(os.environ.get("ADMD_EDGE_CACHE", Path.home() / ".cache" / "admd-edge" / "engines")).expanduser()


def calibration_files(calibration: str | Path | Sequence[str | Path]) -> list[Path]:
    """Image files for INT8 calibration from a folder or a list.

    Raises:
        ValueError: If there are no images.
    """
    if isinstance(calibration, (str, Path)) and Path(calibration).is_dir():
        files = sorted(p for p in Path(calibration).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        files = [Path(p) for p in ([calibration] if isinstance(calibration, (str, Path)) else calibration)]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"calibration images not found: {missing[:3]}")
    if not files:
        raise ValueError(f"no calibration images found in {calibration} ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _digest_files(files: Sequence[Path]) -> str:
    digest = hashlib.sha256()
    for f in files:
        digest.update(sha256_file(f).encode())
    return digest.hexdigest()[:16]


def engine_from_onnx(
    onnx_path: str | Path,
    precision: str = "fp16",
    *,
    out_dir: str | Path | None = None,
    calibration: str | Path | Sequence[str | Path] | None = None,
    calibrator: Any = None,
    workspace_gb: float = 4.0,
    shapes: Mapping[str, Sequence[int]] | None = None,
    max_batch: int = 1,
    timing_cache: str | Path | None = None,
    device: int = 0,
    force: bool = False,
) -> EngineBuild:
    """Build (or fetch from the cache) a TensorRT plan for an ONNX on this GPU.

    Args:
        onnx_path: The ONNX (the portable artifact of a bundle).
        precision: ``fp16``, ``fp32`` or ``int8``.
        out_dir: Where plans, sidecars and the timing cache go (default :func:`default_cache_dir`).
        calibration: Calibration images (a folder or files) for TensorRT 10 INT8 without Q/DQ.
        calibrator: A ready ``trt.IInt8Calibrator`` instead of ``calibration``.
        workspace_gb: Builder workspace memory pool limit in GiB.
        shapes: ``{"min", "opt", "max"}`` input shapes for a dynamic-shape ONNX.
        max_batch: Largest batch of the default profile for a dynamic batch.
        timing_cache: Timing cache file (read if present, written after the build); default in ``out_dir``.
        device: CUDA device index.
        force: Rebuild even if the cache holds the engine.

    Raises:
        MissingDependencyError: If tensorrt (or cuda-python/torch, to name the GPU) is not importable.
        EngineBuildError: If the ONNX does not parse, the precision is refused, or the build fails.
        ValueError: For bad arguments.
    """
    onnx_path = Path(onnx_path)
    summary = summarize_onnx(onnx_path)
    if workspace_gb <= 0:
        raise ValueError(f"workspace_gb must be > 0; got {workspace_gb}")
    trt = _optional.tensorrt()
    path = build_path(int(trt.__version__.split(".")[0]), precision, summary.has_qdq, summary.has_fp16)
    if path == TRT10_CALIBRATOR and calibrator is None and calibration is None:
        raise ValueError("int8 on TensorRT 10 without Q/DQ needs calibration images (--calib DIR) or a calibrator")
    calib_files = calibration_files(calibration) if path == TRT10_CALIBRATOR and calibrator is None else []
    profile = resolve_shapes(summary, shapes, max_batch)
    from admd_edge.cuda_memory import cuda_memory

    memory = cuda_memory(device)
    gpu_name, capability = memory.device_name()
    onnx_sha = sha256_file(onnx_path)
    calib_id = _digest_files(calib_files) if calib_files else ("custom" if path == TRT10_CALIBRATOR else None)
    key = cache_key(trt.__version__, gpu_name, onnx_sha, precision, profile, calib_id)
    out = Path(out_dir) if out_dir is not None else default_cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    plan = out / f"{onnx_path.stem}-{precision}-{key}.plan"
    side = sidecar_path(plan)
    if not force and plan.is_file() and side.is_file():
        info = json.loads(side.read_text())
        if info.get("cache_key") == key:
            LOGGER.info("engine cache hit %s (key %s, built via %s)", plan, key, info.get("build_path"))
            return EngineBuild(plan, side, info.get("build_path", path), True, info)
    LOGGER.info(
        "building %s engine from %s with TensorRT %s via %s on %s",
        precision,
        onnx_path,
        trt.__version__,
        path,
        gpu_name,
    )
    timing = Path(timing_cache) if timing_cache else out / f"timing-trt{trt.__version__}-{_slug(gpu_name)}.cache"
    t0 = time.perf_counter()
    from admd_edge.trt_build import serialize_network

    serialized = serialize_network(
        trt,
        onnx_path,
        path,
        precision,
        workspace_gb,
        profile,
        timing,
        memory,
        calibrator=calibrator,
        calibration_files=calib_files,
        calibration_cache=plan.with_suffix(".calib"),
    )
    seconds = time.perf_counter() - t0
    info = {
        "format": SIDECAR_FORMAT,
        "cache_key": key,
        "tensorrt_version": trt.__version__,
        "gpu_name": gpu_name,
        "compute_capability": capability,
        "onnx": onnx_path.name,
        "onnx_sha256": onnx_sha,
        "precision": precision,
        "shapes": profile,
        "build_path": path,
        "build_seconds": round(seconds, 2),
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "admd_edge": __version__,
        "model": summary.metadata,
    }
    _write_atomic(plan, serialized)
    _write_atomic(side, (json.dumps(info, indent=2) + "\n").encode())
    LOGGER.info("built %s via %s in %.1f s", plan, path, seconds)
    return EngineBuild(plan, side, path, False, info)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text).strip("-").lower() or "gpu"


def _write_atomic(path: Path, data: bytes | memoryview) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
