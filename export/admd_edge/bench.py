"""Per-image timing of the edge pipeline against the bare inference call.

Each iteration times ``pre`` (letterbox into the input tensor), ``infer`` (runner), ``post`` (decode + NMS +
scaling) and their sum ``end_to_end``, then, on the same runner and the same preprocessed input, the
``raw`` call (``InferenceSession.run`` for ONNX Runtime). The two are interleaved, alternating which goes
first, so drift on a shared CPU hits both. Reported: median and IQR in ms, throughput, and
``end_to_end / raw`` (the pipeline's overhead over the model alone).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from admd_edge.model import EdgeModel


@dataclass(frozen=True)
class Stats:
    """Median and interquartile range of a timing, in milliseconds."""

    median: float
    iqr: float

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Stats:
        """Stats of samples given in seconds."""
        ms = np.asarray(seconds, dtype=np.float64) * 1e3
        q1, med, q3 = np.percentile(ms, [25, 50, 75])
        return cls(float(med), float(q3 - q1))

    def __str__(self) -> str:
        return f"{self.median:.2f} ± {self.iqr / 2:.2f}"


@dataclass(frozen=True)
class BenchResult:
    """Timings of one model on one image."""

    name: str
    task: str
    imgsz: tuple[int, int]
    runs: int
    detections: int
    pre: Stats
    infer: Stats
    post: Stats
    end_to_end: Stats
    raw: Stats

    @property
    def ratio(self) -> float:
        """Median end-to-end time over median raw inference time."""
        return self.end_to_end.median / self.raw.median

    @property
    def throughput(self) -> float:
        """Images per second at the median end-to-end time."""
        return 1e3 / self.end_to_end.median

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict including ratio and throughput."""
        return {**asdict(self), "ratio": self.ratio, "throughput": self.throughput}


def raw_call(model: EdgeModel) -> Callable[[np.ndarray], Any]:
    """The bare inference call of the model's runner: ``session.run`` for ONNX Runtime, else ``runner.run``."""
    runner = model.runner
    session = getattr(runner, "session", None)
    if session is not None:
        feed_name = runner.input_name
        return lambda x: session.run(None, {feed_name: x})
    return runner.run


def synthetic_image(height: int = 720, width: int = 1280, seed: int = 0) -> np.ndarray:
    """A deterministic BGR test image (smooth gradients plus noise) when no real image is given."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 255 // max(width, 1), yy * 255 // max(height, 1), (xx + yy) % 256], axis=-1)
    return np.clip(base + rng.integers(-20, 21, base.shape), 0, 255).astype(np.uint8)


def bench_model(model: EdgeModel, image: np.ndarray, runs: int = 50, warmup: int = 5, name: str = "") -> BenchResult:
    """Time the pipeline and the raw inference call on ``image``.

    Args:
        model: The loaded model.
        image: A BGR uint8 image.
        runs: Timed iterations.
        warmup: Untimed iterations first.
        name: Label for the report.

    Raises:
        ValueError: If ``runs`` < 1.
    """
    if runs < 1:
        raise ValueError(f"runs must be >= 1; got {runs}")
    raw = raw_call(model)
    tensor, _ = model.preprocessor(image)
    fixed_input = tensor.copy()
    for _ in range(warmup):
        model.predict_timed(image)
        raw(fixed_input)
    parts: list[tuple[float, float, float]] = []
    totals, raws = [], []
    detections = 0
    for i in range(runs):
        for step in (0, 1) if i % 2 == 0 else (1, 0):
            if step == 0:
                t0 = time.perf_counter()
                results, part = model.predict_timed(image)
                totals.append(time.perf_counter() - t0)
                parts.append(part)
                detections = len(results[0])
            else:
                t0 = time.perf_counter()
                raw(fixed_input)
                raws.append(time.perf_counter() - t0)
    pre, infer, post = zip(*parts)
    return BenchResult(
        name=name or str(getattr(model.runner, "path", "model")),
        task=model.task,
        imgsz=model.imgsz,
        runs=runs,
        detections=detections,
        pre=Stats.of(pre),
        infer=Stats.of(infer),
        post=Stats.of(post),
        end_to_end=Stats.of(totals),
        raw=Stats.of(raws),
    )


def markdown_table(results: Sequence[BenchResult], extra: dict[str, float] | None = None) -> str:
    """A markdown table of results (median ± half-IQR, ms); ``extra`` maps a result name to a comparison time
    (e.g. Ultralytics ``predict``), shown in its own column."""
    head = (
        "| model | task | imgsz | dets | pre ms | infer ms | post ms | end-to-end ms | raw run ms | e2e/raw | img/s |"
    )
    if extra is not None:
        head += " other e2e ms |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        row = (
            f"| {r.name} | {r.task} | {r.imgsz[0]}x{r.imgsz[1]} | {r.detections} | {r.pre} | {r.infer} | {r.post} "
            f"| {r.end_to_end} | {r.raw} | {r.ratio:.3f} | {r.throughput:.1f} |"
        )
        if extra is not None:
            other = extra.get(r.name)
            row += f" {other:.2f} |" if other is not None else " n/a |"
        lines.append(row)
    return "\n".join(lines)
