"""The export stage: ONNX (FP32, and FP16 for TensorRT), INT8 ONNX with Q/DQ nodes, and a TensorRT engine
where possible.

Two INT8 ONNX flavours, because the fast formats differ by runtime:

- ``onnx_int8`` (``student.int8.onnx``): symmetric S8S8 Q/DQ on Conv/MatMul outside the head's decode,
  TensorRT's explicit-quantisation format. ONNX Runtime's x86 CPU kernels run it *slower* than FP32.
- ``onnx_int8_cpu`` (``student.int8-cpu.onnx``): U8S8 Q/DQ on every op (activations too, so ONNX
  Runtime fuses whole Conv-SiLU chains into QLinear kernels), except the head's decode (DFL
  softmax, box/angle decode, class sigmoid, the output concat), which stays in float: quantising
  the concatenated pixel boxes and 0-1 class scores with one scale destroys the scores.

Every artifact is checked the moment it is written: ``onnx.checker`` full check, then raw-output
parity against the PyTorch student on validation images.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.ledger import file_sha256

LOGGER = logging.getLogger(__name__)

LETTERBOX = {"auto": False, "center": True, "scaleup": True, "fill": 114, "channels": "RGB", "scale": 1 / 255}


def onnx_from_checkpoint(weights: str | Path, out: Path, *, imgsz: int, batch: int, dynamic: bool, opset: int,
                         simplify: bool, fast_dfl: bool = True) -> Path:
    """Export with Ultralytics' exporter (:func:`admd_deploy.ultra.export.export_onnx`), rewrite the DFL decode
    (:func:`onnx_passes.fast_dfl`, unless ``fast_dfl`` is False), then add our letterbox metadata; returns ``out``."""
    import onnx

    from admd_deploy.pipeline import onnx_passes
    from admd_deploy.ultra.export import export_onnx

    export_onnx(weights, out, imgsz=imgsz, batch=batch, dynamic=dynamic, opset=opset, simplify=simplify)
    model = onnx.load(str(out))
    passes = {"fast_dfl": onnx_passes.fast_dfl(model)} if fast_dfl else {}
    for key, value in (("letterbox", json.dumps(LETTERBOX)), ("admd_passes", json.dumps(passes))):
        meta = model.metadata_props.add()
        meta.key, meta.value = key, value
    onnx.save(model, str(out))
    return out


def applied_passes(path: Path) -> dict[str, int]:
    """The graph rewrites applied to an exported ONNX (its ``admd_passes`` metadata), e.g. ``{"fast_dfl": 1}``."""
    import onnx

    props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
    return json.loads(props.get("admd_passes", "{}"))


def check_onnx(path: Path) -> dict[str, Any]:
    """``onnx.checker`` full check (raises ``onnx.checker.ValidationError`` on an invalid model)."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    return {"name": "checker", "value": 1.0, "limit": None, "passed": True}


def letterboxed(images: list[Path], imgsz: int) -> np.ndarray:
    """(N, 3, imgsz, imgsz) float32 inputs, preprocessed exactly like Ultralytics' val (rect=False).

    The edge package's letterbox, pixel-identical to Ultralytics' ``LetterBox(auto=False, center=True,
    scaleup=True)`` (``tests/ultra/test_letterbox.py``, ``export/tests/test_preprocess.py``)."""
    import cv2
    from admd_edge.preprocess import letterbox_image, tensor_from_letterboxed

    return tensor_from_letterboxed([letterbox_image(cv2.imread(str(p)), imgsz)[0] for p in images])


def torch_outputs(weights: str | Path, x: np.ndarray) -> np.ndarray:
    import torch

    from admd_deploy.ultra.checkpoints import load_checkpoint

    model, _ = load_checkpoint(weights)
    model = model.fuse(verbose=False).eval()
    with torch.inference_mode():
        y = model(torch.from_numpy(x))
    return (y[0] if isinstance(y, (tuple, list)) else y).numpy()


def ort_outputs(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    fixed = sess.get_inputs()[0].shape[0]
    if isinstance(fixed, int) and fixed != x.shape[0]:  # static batch: run image by image
        return np.concatenate([sess.run(None, {name: x[i : i + fixed]})[0] for i in range(0, len(x), fixed)])
    return sess.run(None, {name: x})[0]


def parity(reference: np.ndarray, onnx_path: Path, x: np.ndarray, atol: float | None) -> dict[str, Any]:
    """Max absolute difference of the raw outputs (boxes in pixels, class probabilities) vs the PyTorch
    ``reference`` outputs on the same inputs ``x``."""
    diff = float(np.abs(reference - ort_outputs(onnx_path, x)).max())
    return {"name": "parity_max_abs", "value": diff, "limit": atol, "passed": None if atol is None else diff <= atol}


class _Calibration:
    """ONNX Runtime calibration reader over letterboxed validation images (one image per call)."""

    def __init__(self, input_name: str, x: np.ndarray) -> None:
        self._it = iter([{input_name: x[i : i + 1]} for i in range(len(x))])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def _quantize(src: Path, out: Path, calib: np.ndarray, *, cpu: bool) -> Path:
    """Static Q/DQ quantisation of ``src`` into ``out``, MinMax-calibrated on ``calib``, per-channel weights."""
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepped = out.with_name(out.stem + ".prep.onnx")
    quant_pre_process(str(src), str(prepped), skip_symbolic_shape=True)
    decode = head_decode_nodes(prepped)  # float in both flavours
    if cpu:  # U8S8 everywhere but the decode
        options = {"activation_type": QuantType.QUInt8, "nodes_to_exclude": decode}
    else:  # symmetric S8S8 on Conv/MatMul outside the decode: TensorRT's explicit quantisation
        options = {"activation_type": QuantType.QInt8, "op_types_to_quantize": ["Conv", "MatMul"],
                   "nodes_to_exclude": decode, "extra_options": {"ActivationSymmetric": True, "WeightSymmetric": True}}
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    try:
        quantize_static(str(prepped), str(out), _Calibration(name, calib), quant_format=QuantFormat.QDQ,
                        weight_type=QuantType.QInt8, per_channel=True, calibrate_method=CalibrationMethod.MinMax,
                        **options)
    finally:
        prepped.unlink(missing_ok=True)
    return out


def int8_onnx_from_onnx(src: Path, out: Path, calib: np.ndarray) -> Path:
    """Static INT8 quantisation with Q/DQ nodes (symmetric, per-channel weights): runs on ONNX Runtime's CPU
    kernels and is TensorRT's explicit-quantisation format. Only Conv/MatMul are quantised, and not those of
    the head's decode (:func:`head_decode_nodes`): the DFL expectation, sigmoid and box decoding stay in
    float (they matter most for accuracy)."""
    return _quantize(src, out, calib, cpu=False)


def head_decode_nodes(model_path: Path) -> list[str]:
    """Names of the head's decode nodes: the last module's nodes outside its conv branches ``cv2``/``cv3``/``cv4``.

    Ultralytics names exported nodes after module paths (``/model.23/cv3.0/cv3.0.2/Conv``); the
    branches' convolutions are kept for quantisation, everything after them (DFL, decode, sigmoid,
    concat) is returned (:func:`admd_deploy.ultra.export.head_decode_nodes`, a contract).

    Raises:
        ValueError: The graph has no Ultralytics module names (not an Ultralytics export).
    """
    import onnx

    from admd_deploy.ultra import export

    names = [n.name for n in onnx.load(str(model_path), load_external_data=False).graph.node]
    try:
        return export.head_decode_nodes(names)
    except ValueError as err:
        raise ValueError(f"{model_path}: {err}; onnx_int8_cpu needs an Ultralytics ONNX export") from err


def int8_quantizer(choice: str) -> str:
    """Who quantises ``onnx_int8``: ``"modelopt"`` (NVIDIA ModelOpt, TensorRT's recommended Q/DQ placement) when
    asked for or, for ``"auto"``, when it is installed; else ``"onnxruntime"``.

    Raises:
        ValueError: ``"modelopt"`` was asked for and ``modelopt`` is not importable.
    """
    import importlib.util

    if choice == "onnxruntime":
        return choice
    available = importlib.util.find_spec("modelopt") is not None
    if choice == "modelopt" and not available:
        raise ValueError("export.int8_quantizer is modelopt, but NVIDIA ModelOpt is not installed here: "
                           "pip install 'nvidia-modelopt[onnx]', or set export.int8_quantizer=auto (ONNX Runtime "
                           "where ModelOpt is missing)")
    return "modelopt" if available else "onnxruntime"


def quantizer_version(quantizer: str) -> str:
    from importlib import metadata

    package = {"modelopt": "nvidia-modelopt", "onnxruntime": "onnxruntime"}[quantizer]
    try:
        return f"{quantizer} {metadata.version(package)}"
    except metadata.PackageNotFoundError:
        return quantizer


_MODELOPT_SCRIPT = """
import json, sys
import numpy as np
from modelopt.onnx.quantization import quantize
spec = json.load(open(sys.argv[1]))
quantize(onnx_path=spec["src"], quantize_mode="int8", calibration_data=np.load(spec["calib"]),
         calibration_method="max", calibration_eps=["cpu"], nodes_to_exclude=spec["exclude"],
         output_path=spec["out"], log_level="WARNING")
"""


def modelopt_int8_from_onnx(src: Path, out: Path, calib: np.ndarray) -> Path:
    """TensorRT-format INT8 Q/DQ by NVIDIA ModelOpt (``modelopt.onnx.quantization.quantize``), max-calibrated on
    ``calib`` on the CPU, with the head's decode (:func:`head_decode_nodes`) left unquantised. ModelOpt puts
    every unquantised op in FP16 (its default, for TensorRT), the decode included, so box coordinates are
    FP16 pixels there; the mAP gate is what watches that. Our metadata (names, letterbox) is copied over,
    since ModelOpt does not keep it.

    ModelOpt runs in a child process: importing it patches ONNX Runtime's quantisation tools, after which
    ``quantize_static`` (the ``onnx_int8_cpu`` export) fails in the same process.

    Raises:
        RuntimeError: ModelOpt failed; its output is in the message.
    """
    import re
    import subprocess
    import sys
    import tempfile

    import onnx

    with tempfile.TemporaryDirectory(prefix="admd-modelopt-") as tmp:
        np.save(Path(tmp) / "calib.npy", calib)
        spec = {"src": str(src), "calib": str(Path(tmp) / "calib.npy"), "out": str(out),
                "exclude": [re.escape(n) + "$" for n in head_decode_nodes(src)]}  # ModelOpt reads regexes
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        done = subprocess.run([sys.executable, "-c", _MODELOPT_SCRIPT, str(Path(tmp) / "spec.json")],
                              capture_output=True, text=True)
    if done.returncode != 0 or not out.is_file():
        raise RuntimeError(f"NVIDIA ModelOpt could not quantise {src} (exit {done.returncode}):\n"
                           f"{(done.stderr or done.stdout)[-3000:]}")
    model = onnx.load(str(out))
    del model.metadata_props[:]
    model.metadata_props.extend(onnx.load(str(src), load_external_data=False).metadata_props)
    onnx.save(model, str(out))
    return out


def int8_cpu_onnx_from_onnx(src: Path, out: Path, calib: np.ndarray) -> Path:
    """INT8 for ONNX Runtime on CPU: U8S8 Q/DQ (asymmetric uint8 activations, per-channel int8 weights) on
    every op but the head's decode (:func:`head_decode_nodes`), calibrated MinMax on ``calib``. Not for
    TensorRT (which needs the symmetric ``onnx_int8``)."""
    return _quantize(src, out, calib, cpu=True)


def fp16_onnx_from_onnx(src: Path, out: Path) -> Path:
    """FP16 weights and activations with float32 input and output, the head's decode (:func:`head_decode_nodes`)
    kept in float32: the ONNX a TensorRT 11 (strongly typed) FP16 engine is built from; TensorRT 10 takes it
    too. Converted with ``onnxruntime.transformers.float16``, then its float32 -> float16 -> float32 round
    trips between decode nodes are removed and the graph is put back in topological order."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    from admd_deploy.pipeline import onnx_passes

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, node_block_list=head_decode_nodes(src))
    onnx_passes.drop_cast_round_trips(model)
    onnx_passes.toposort(model.graph)
    onnx.save(model, str(out))
    return out


def engine_status() -> str | None:
    """None when a TensorRT engine can be built here, else the reason it cannot."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return "tensorrt is not installed on this machine"
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA GPU on this machine"
    except ImportError:
        return "no CUDA runtime to check for a GPU"
    return None


ENGINE_SOURCE = {"fp16": "onnx_fp16", "int8": "onnx_int8", "fp32": "onnx"}  # the ONNX each engine precision builds from


def engine_source(precision: str, formats: list[str]) -> str:
    """The export an engine of ``precision`` is built from: the FP16 ONNX for fp16 and the Q/DQ ONNX for int8
    (what TensorRT 11's strongly typed networks need, and TensorRT 10 takes as well), when they are exported;
    else the FP32 ONNX (TensorRT 10 only, with a precision flag, and a calibrator for int8)."""
    fmt = ENGINE_SOURCE[precision]
    if fmt in formats:
        return fmt
    if precision != "fp32":
        LOGGER.warning("export: the %s engine will be built from the FP32 ONNX, which only TensorRT 10 accepts "
                       "(TensorRT 11 is strongly typed): add %s to export.formats for TensorRT 11", precision, fmt)
    return "onnx"


def engine_command(onnx_name: str, precision: str) -> str:
    return f"admd-edge build-engine {onnx_name} --precision {precision}"


ENGINE_FACTS = ("tensorrt_version", "gpu_name", "compute_capability", "onnx", "onnx_sha256", "shapes", "build_seconds",
                "built_at")  # sidecar keys the artifact repeats


def engine_artifact(built: Any, source: str, precision: str, command: str) -> dict[str, Any]:
    """The export stage's record of an :class:`admd_edge.engine.EngineBuild` (a frozen dataclass): the plan,
    its sidecar and what the sidecar says about the build; no accuracy checks (verify does not run engines)."""
    return {"path": str(built.plan), "sha256": file_sha256(Path(built.plan)), "sidecar": str(built.sidecar),
            "precision": precision, "source": source, "build_path": built.path, "cached": bool(built.cached),
            **{k: built.info[k] for k in ENGINE_FACTS if k in built.info}, "checks": [], "command": command}


def inputs(ctx: Context) -> dict[str, Any]:
    e = ctx.recipe.export
    quantizer = quantizer_version(int8_quantizer(e.int8_quantizer)) if "onnx_int8" in e.formats else None
    return {"student": ctx.out("student").get("sha256"), "export": ctx.recipe.to_dict()["export"], "int8": quantizer,
            "atol": ctx.recipe.gates.parity_atol, "data": ctx.out("data").get("fingerprint")}


def run(ctx: Context, out: Path) -> dict[str, Any]:
    from admd_deploy.pipeline.evaluate import val_images

    r, e = ctx.recipe, ctx.recipe.export
    weights = ctx.out("student")["weights"]
    imgsz = r.export_imgsz
    x = letterboxed(val_images(ctx.out("data")["data_yaml"], max(e.calib_images, 8)), imgsz)
    artifacts: dict[str, Any] = {}

    onnx_path = onnx_from_checkpoint(weights, out / "student.onnx", imgsz=imgsz, batch=e.batch, dynamic=e.dynamic,
                                     opset=e.opset, simplify=e.simplify, fast_dfl=e.fast_dfl)
    reference = torch_outputs(weights, x[:8])
    checks = [check_onnx(onnx_path), parity(reference, onnx_path, x[:8], r.gates.parity_atol)]
    artifacts["onnx"] = {"path": str(onnx_path), "sha256": file_sha256(onnx_path), "precision": "fp32",
                         "passes": applied_passes(onnx_path), "checks": checks}

    # The two INT8 flavours (see the module docstring): parity is reported, accuracy is gated on mAP in verify.
    trt_quantizer = int8_quantizer(e.int8_quantizer) if "onnx_int8" in e.formats else "onnxruntime"
    for fmt, filename, quantize, extra in (
        ("onnx_int8", "student.int8.onnx",
         modelopt_int8_from_onnx if trt_quantizer == "modelopt" else int8_onnx_from_onnx,
         {"quantizer": quantizer_version(trt_quantizer)}),
        ("onnx_int8_cpu", "student.int8-cpu.onnx", int8_cpu_onnx_from_onnx,
         {"runtime": "onnxruntime-cpu", "quantizer": quantizer_version("onnxruntime")}),
    ):
        if fmt in e.formats:
            path = quantize(onnx_path, out / filename, x[: e.calib_images])
            checks = [check_onnx(path), parity(reference, path, x[:8], None)]
            artifacts[fmt] = {"path": str(path), "sha256": file_sha256(path), "precision": "int8", **extra,
                              "calibration_images": int(min(len(x), e.calib_images)), "checks": checks}

    if "onnx_fp16" in e.formats:
        path = fp16_onnx_from_onnx(onnx_path, out / "student.fp16.onnx")
        checks = [check_onnx(path), parity(reference, path, x[:8], None)]
        artifacts["onnx_fp16"] = {"path": str(path), "sha256": file_sha256(path), "precision": "fp16", "checks": checks}

    if "engine" in e.formats:
        reason = engine_status()
        source_fmt = engine_source(e.engine_precision, e.formats)
        source = Path(artifacts[source_fmt]["path"])
        cmd = engine_command(source.name, e.engine_precision)
        if reason is None:
            from admd_edge import engine  # the edge package builds engines

            built = engine.engine_from_onnx(source, precision=e.engine_precision, out_dir=out)
            artifacts["engine"] = engine_artifact(built, source_fmt, e.engine_precision, cmd)
        else:
            LOGGER.warning("export: TensorRT engine skipped: %s", reason)
            artifacts["engine"] = {"skipped": reason, "command": cmd}
    return {"artifacts": artifacts, "imgsz": imgsz}
