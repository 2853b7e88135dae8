"""``admd-deploy bench edge``: admd-edge end to end vs the bare ``InferenceSession.run``, vs Ultralytics predict.

    admd-deploy bench edge --threads 2 --runs 60
    admd-deploy bench edge --obb runs/quickstart/export/student.onnx \\
        --int8 runs/quickstart/export/student.int8.onnx --json edge-bench.json
    python export/benchmarks/edge_bench.py --threads 2 --runs 60          # the same command, kept for the docs

Prints a markdown table for a YOLO11n detector at 640 and a YOLO11n-OBB at 256 (ONNX Runtime CPU) in three
scenarios: a 1080x810 photo at conf 0.25; the same photo with conf set so that 500 candidates enter NMS
(untrained weights give no confident boxes, so this stands in for a busy scene); and a frame already at the
model's resolution (a 640x480 camera frame, a 256x256 OBB tile), which needs no resize. INT8 Q/DQ ONNX files
(``--int8``) run the same scenarios, in rows next to the FP32 ones of their task. Then a memory table: for
each ONNX file, the peak RSS (``VmHWM``) of a fresh interpreter that imports admd_edge, loads the model and
runs a few predictions on a synthetic image, and the same for a fresh interpreter running
``YOLO(onnx).predict``. Then the rotated-NMS time on 10,000 candidate boxes.

Models: ``--detect`` / ``--obb`` ONNX files, or (when Ultralytics is importable) YOLO11n built from YAML with
untrained weights and exported here: speed does not depend on the weights. Ultralytics is used only for
that export and for the ``YOLO(onnx).predict`` comparison column and memory; the admd-edge side never
imports it.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from admd_deploy.errors import AdmdDeployError, MissingFileError, UsageError

if TYPE_CHECKING:
    from admd_edge.bench import BenchResult

PRECISIONS = ("FP32", "INT8")
TASK_ORDER = ("detect", "obb")
MEMORY_PREDICTIONS = 10
_PEAK_MARKER = "ADMD_PEAK_RSS_KIB"
_PEAK_REPORT = f"""
def _admd_peak_rss_kib():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1])
    except OSError:
        pass
    import resource
    import sys
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else float(peak)
print("\\n{_PEAK_MARKER}", _admd_peak_rss_kib(), flush=True)
"""


class MeasurementFailed(AdmdDeployError):
    """A measuring subprocess exited with an error or printed no peak memory."""


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file to benchmark and the precision it is reported under (FP32 or INT8)."""

    path: Path
    precision: str = "FP32"


@dataclass(frozen=True)
class Row:
    """One timing row: a model in one scenario (``result.name`` is the table's model label)."""

    model: ModelFile
    task: str
    scenario: str
    conf: float
    result: BenchResult
    ultralytics_ms: float | None


@dataclass(frozen=True)
class MemoryRow:
    """Peak RSS of fresh interpreters running one model: admd-edge, and Ultralytics where measured."""

    model: ModelFile
    task: str
    file_mib: float
    edge_mib: float
    ultralytics_mib: float | None


@dataclass(frozen=True)
class EdgeBench:
    """Everything ``admd-deploy bench edge`` measured; :func:`markdown` prints it, :meth:`to_dict` is JSON-ready."""

    setup: dict[str, Any]
    rows: list[Row]
    memory: list[MemoryRow]
    baseline_mib: float | None
    nms_ms: float
    nms_kept: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "setup": self.setup,
            "rows": [
                {"model": str(r.model.path), "precision": r.model.precision, "task": r.task, "scenario": r.scenario,
                 "conf": r.conf, **r.result.to_dict(), "ultralytics_ms": r.ultralytics_ms}
                for r in self.rows
            ],
            "memory": [{**dataclasses.asdict(m), "model": str(m.model.path), "precision": m.model.precision}
                       for m in self.memory],
            "baseline_mib": self.baseline_mib,
            "rotated_nms": {"boxes": self.setup.get("nms_boxes"), "median_ms": self.nms_ms, "kept": self.nms_kept},
        }


def ultralytics_available() -> bool:
    """Whether Ultralytics can be imported here (checked without importing it)."""
    return importlib.util.find_spec("ultralytics") is not None


def export_yolo(yaml: str, imgsz: int, folder: Path) -> Path:
    """Export an untrained YAML-built YOLO to ONNX the way the pipeline does (Ultralytics needed only here)."""
    from admd_deploy.pipeline.exporting import onnx_from_checkpoint

    return onnx_from_checkpoint(yaml, folder / f"{Path(yaml).stem}-{imgsz}.onnx", imgsz=imgsz, batch=1, dynamic=False,
                                opset=17, simplify=True)


def resolve_models(detect: Path | None, obb: Path | None, int8: Sequence[Path], work: Path) -> list[ModelFile]:
    """The FP32 ``detect`` and ``obb`` files (an untrained YOLO11n exported into ``work`` for each one not
    given) and the ``int8`` files.

    Raises:
        FileNotFoundError: If a given file does not exist.
        ValueError: If a default model is needed and Ultralytics is not importable.
    """
    for flag, path in (("--detect", detect), ("--obb", obb), *(("--int8", p) for p in int8)):
        if path is not None and not Path(path).is_file():
            raise MissingFileError(f"{flag}: ONNX file not found: {path}")
    if (detect is None or obb is None) and not ultralytics_available():
        raise UsageError("Ultralytics is not importable, so no default YOLO11n can be exported: "
                         "pass both --detect and --obb ONNX files")
    detect = Path(detect) if detect else export_yolo("yolo11n.yaml", 640, work)
    obb = Path(obb) if obb else export_yolo("yolo11n-obb.yaml", 256, work)
    return [ModelFile(detect), ModelFile(obb), *(ModelFile(Path(p), "INT8") for p in int8)]


def load_image(path: Path | None) -> np.ndarray:
    """The BGR image to time on: ``path``, else Ultralytics' bus.jpg (1080x810), else a synthetic 1280x720.

    Raises:
        FileNotFoundError: If ``path`` is given and cannot be read as an image.
    """
    import cv2

    from admd_edge.bench import synthetic_image

    if path is not None:
        image = cv2.imread(str(path))
        if image is None:
            raise MissingFileError(f"--image: not a readable image: {path}")
        return image
    spec = importlib.util.find_spec("ultralytics")
    if spec is not None and spec.origin:
        image = cv2.imread(str(Path(spec.origin).parent / "assets" / "bus.jpg"))
        if image is not None:
            return image
    return synthetic_image()


def conf_for_candidates(onnx: Path, image: np.ndarray, threads: int, count: int) -> float:
    """The confidence threshold that lets ``count`` anchors of this image into NMS."""
    from admd_edge.model import load_model

    model = load_model(onnx, threads=threads)
    tensor, _ = model.preprocessor(image)
    raw = model.runner.run(tensor)[0][0]
    scores = np.sort(raw[4 : 4 + len(model.names)].max(0))[::-1]
    return float(scores[min(count, len(scores) - 1)])


def ultralytics_predict_ms(onnx: Path, task: str, image: np.ndarray, imgsz: int, conf: float, runs: int) -> float | None:
    """Median wall time of ``YOLO(onnx).predict`` on one image, or None without Ultralytics."""
    if not ultralytics_available():
        return None
    from admd_deploy.ultra.validate import Predictor

    model = Predictor(onnx, task)
    for _ in range(3):
        model(image, imgsz=imgsz, conf=conf)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model(image, imgsz=imgsz, conf=conf)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def rotated_nms_ms(n: int = 10_000, runs: int = 50, seed: int = 0) -> tuple[float, int]:
    """Median rotated-NMS time on ``n`` boxes: 1024 px image, 15 classes, sides 8-64 px, IoU 0.7."""
    from admd_edge.nms import rotated_nms

    rng = np.random.default_rng(seed)
    xywhr = np.column_stack(
        [rng.uniform(0, 1024, (n, 2)), rng.uniform(8, 64, (n, 2)), rng.uniform(-math.pi / 4, 3 * math.pi / 4, n)]
    ).astype(np.float32)
    xywhr[:, :2] += rng.integers(0, 15, n)[:, None].astype(np.float32) * 7680
    scores = rng.uniform(0.25, 1, n).astype(np.float32)
    kept = rotated_nms(xywhr, scores, 0.7)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rotated_nms(xywhr, scores, 0.7)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), len(kept)


def peak_rss_mib(code: str, timeout: float = 600.0) -> float:
    """Peak resident memory (MiB) of a fresh ``sys.executable`` that runs ``code``.

    The peak is the kernel's high-water mark ``VmHWM`` from ``/proc/self/status`` (``ru_maxrss`` where there
    is no /proc), read by the interpreter itself after ``code`` finished, so it covers the interpreter, every
    import and everything ``code`` allocated.

    Raises:
        MeasurementFailed: If the interpreter exits with an error, or times out.
    """
    program = textwrap.dedent(code) + "\n" + _PEAK_REPORT
    try:
        proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as err:
        raise MeasurementFailed(f"peak memory: the measured interpreter ran over {timeout:.0f} s") from err
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(_PEAK_MARKER)]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise MeasurementFailed(f"peak memory: the measured interpreter failed (exit {proc.returncode}): {tail}")
    return float(lines[-1].split()[1]) / 1024


def edge_memory_code(onnx: Path, threads: int, predictions: int, hw: tuple[int, int]) -> str:
    """Code for :func:`peak_rss_mib`: admd_edge loads ``onnx`` and predicts ``predictions`` times."""
    return f"""
from admd_edge.bench import synthetic_image
from admd_edge.model import load_model

model = load_model({str(onnx)!r}, threads={int(threads)})
image = synthetic_image({int(hw[0])}, {int(hw[1])})
for _ in range({int(predictions)}):
    model.predict(image)
"""


def ultralytics_memory_code(onnx: Path, task: str, imgsz: int, predictions: int, hw: tuple[int, int]) -> str:
    """Code for :func:`peak_rss_mib`: Ultralytics' ``YOLO(onnx).predict``, ``predictions`` times."""
    return f"""
from admd_deploy.ultra.validate import Predictor
from admd_edge.bench import synthetic_image

model = Predictor({str(onnx)!r}, task={task!r})
image = synthetic_image({int(hw[0])}, {int(hw[1])})
for _ in range({int(predictions)}):
    model(image, imgsz={int(imgsz)}, conf=0.25)
"""


BASELINE_CODE = """
import numpy
import onnxruntime

import admd_edge.model
"""


def bench_models(
    models: Sequence[ModelFile],
    image: np.ndarray,
    *,
    threads: int = 2,
    runs: int = 60,
    ultralytics: bool = True,
    memory_predictions: int = MEMORY_PREDICTIONS,
    nms_boxes: int = 10_000,
    nms_runs: int = 50,
) -> EdgeBench:
    """Time every model in the three scenarios, measure its peak memory, then time rotated NMS.

    Rows are ordered by task (detect, obb), FP32 before INT8 of a task, otherwise as given.

    Args:
        models: ONNX files (their task and input size are read from their metadata).
        image: The BGR photo; the memory runs use a synthetic image of the same size.
        threads: ONNX Runtime intra-op threads of the admd-edge side.
        runs: Timed iterations per row (Ultralytics: half as many, at least 10).
        ultralytics: Also time and measure ``YOLO(onnx).predict`` (where Ultralytics is importable).
        memory_predictions: Predictions each memory-measuring interpreter runs.
        nms_boxes: Candidates of the rotated-NMS timing.
        nms_runs: Timed iterations of the rotated NMS.

    Raises:
        ValueError: If ``threads``, ``runs`` or ``memory_predictions`` is < 1, or a precision is unknown.
    """
    import cv2

    from admd_edge.bench import bench_model
    from admd_edge.model import load_model

    for name, value in (("--threads", threads), ("--runs", runs), ("memory_predictions", memory_predictions)):
        if value < 1:
            raise UsageError(f"{name} must be >= 1; got {value}")
    for m in models:
        if m.precision not in PRECISIONS:
            raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}; got {m.precision!r} for {m.path}")
    ultralytics = ultralytics and ultralytics_available()
    facts = []  # (task, imgsz) of each model, from its metadata; the session is dropped again
    for m in models:
        model = load_model(m.path, threads=1)
        facts.append((model.task, model.imgsz[0]))
        del model
    order = sorted(range(len(models)), key=lambda i: (
        TASK_ORDER.index(facts[i][0]), PRECISIONS.index(models[i].precision), i))
    photo = f"{image.shape[1]}x{image.shape[0]}"
    hw = (int(image.shape[0]), int(image.shape[1]))
    rows: list[Row] = []
    memory: list[MemoryRow] = []
    for i in order:
        m, (task, imgsz) = models[i], facts[i]
        native = cv2.resize(image, (imgsz, imgsz * 3 // 4) if task == "detect" else (imgsz, imgsz))
        scenarios = [
            (f"{photo}, conf 0.25", image, 0.25),
            (f"{photo}, 500 candidates", image, conf_for_candidates(m.path, image, threads, 500)),
            (f"{native.shape[1]}x{native.shape[0]} frame, conf 0.25", native, 0.25),
        ]
        for label, frame, conf in scenarios:
            model = load_model(m.path, threads=threads, conf=conf)
            result = bench_model(model, frame, runs=runs, warmup=5, name=f"{m.path.stem} {m.precision} ({label})")
            other = ultralytics_predict_ms(m.path, task, frame, imgsz, conf, max(10, runs // 2)) if ultralytics else None
            rows.append(Row(m, task, label, conf, result, other))
        edge_mib = peak_rss_mib(edge_memory_code(m.path, threads, memory_predictions, hw))
        ultra_mib = (peak_rss_mib(ultralytics_memory_code(m.path, task, imgsz, memory_predictions, hw))
                     if ultralytics else None)
        memory.append(MemoryRow(m, task, m.path.stat().st_size / 2**20, edge_mib, ultra_mib))
    baseline = peak_rss_mib(BASELINE_CODE) if models else None
    nms_ms, kept = rotated_nms_ms(nms_boxes, nms_runs)
    import onnxruntime

    setup = {
        "onnxruntime": onnxruntime.__version__, "threads": threads, "runs": runs, "image": photo,
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "ultralytics": ultralytics, "memory_predictions": memory_predictions, "memory_image": f"{hw[1]}x{hw[0]}",
        "nms_boxes": nms_boxes,
    }
    return EdgeBench(setup, rows, memory, baseline, nms_ms, kept)


def run_edge_bench(
    detect: Path | None = None,
    obb: Path | None = None,
    int8: Sequence[Path] = (),
    image: Path | None = None,
    threads: int = 2,
    runs: int = 60,
    ultralytics: bool = True,
) -> EdgeBench:
    """The whole benchmark: :func:`load_image`, :func:`resolve_models` (exports in a temporary folder),
    :func:`bench_models`. Raises what those raise."""
    photo = load_image(image)
    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    try:
        models = resolve_models(detect, obb, int8, work)
        return bench_models(models, photo, threads=threads, runs=runs, ultralytics=ultralytics)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def memory_table(rows: Sequence[MemoryRow]) -> str:
    """A markdown table of the peak RSS per model (MiB); n/a where Ultralytics was not measured."""
    lines = ["| model | task | precision | file MiB | admd-edge peak RSS MiB | Ultralytics peak RSS MiB |",
             "|---|---|---|---|---|---|"]
    for m in rows:
        ultra = "n/a" if m.ultralytics_mib is None else f"{m.ultralytics_mib:.1f}"
        lines.append(f"| {m.model.path.stem} | {m.task} | {m.model.precision} | {m.file_mib:.1f} | "
                     f"{m.edge_mib:.1f} | {ultra} |")
    return "\n".join(lines)


def markdown(result: EdgeBench) -> str:
    """The setup line, the timing table, the memory table and the rotated-NMS line."""
    from admd_edge.bench import markdown_table

    s = result.setup
    other = {r.result.name: r.ultralytics_ms for r in result.rows if r.ultralytics_ms is not None}
    load = "n/a" if s["load_average"] is None else f"{s['load_average']:.2f}"
    lines = [
        f"ONNX Runtime {s['onnxruntime']} CPU, {s['threads']} intra-op threads, {s['runs']} runs, "
        f"{s['cpu']} x{s['cpu_count']}, load average {load}; times: median ± half-IQR ms",
        "",
        markdown_table([r.result for r in result.rows], extra=other if other else None),
        "",
        memory_table(result.memory),
        "",
        f"peak RSS (VmHWM) of a fresh interpreter that loads the model and runs {s['memory_predictions']} predictions "
        f"on a synthetic {s['memory_image']} image: admd-edge `load_model(threads={s['threads']})`"
        + (", Ultralytics `YOLO(onnx).predict` (its default session options)" if s["ultralytics"] else "")
        + (f"; a fresh interpreter with admd_edge and onnxruntime imported, no model: {result.baseline_mib:.1f} MiB"
           if result.baseline_mib is not None else ""),
        "",
        f"rotated NMS, {s['nms_boxes']:,} boxes (1024 px, 15 classes, IoU 0.7, {result.nms_kept} kept): "
        f"{result.nms_ms:.2f} ms median",
    ]
    if other:
        lines.append("other e2e = Ultralytics YOLO(onnx).predict on the same image and conf (its default session options)")
    return "\n".join(lines)
