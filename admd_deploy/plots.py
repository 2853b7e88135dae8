"""Figures for the distillation report: training curves, mAP bars, per-class AP, predictions, gates.

Every ``plot_*`` function validates its input, draws one figure and writes it atomically to
``out`` (parent folders created; the format follows the suffix, normally ``.png``) and returns
that path. Each has a ``*_figure`` twin that returns the :class:`~matplotlib.figure.Figure`
without saving it, so tests (and notebooks) can inspect what was drawn.

Figures are built with :class:`matplotlib.figure.Figure` and rendered with the Agg canvas, so
no global backend is selected and ``matplotlib.pyplot`` is never imported. Colours are fixed per
model role (teacher, baseline, distilled student, exported formats) so the same model has the
same colour in every figure of a report; see :func:`model_colors`.
"""

from __future__ import annotations

import contextlib
import csv
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Polygon, Rectangle
from matplotlib.ticker import MaxNLocator

__all__ = [
    "DPI",
    "RunCurves",
    "gate_status",
    "gates_figure",
    "map_bars_figure",
    "model_colors",
    "per_class_ap_figure",
    "plot_gates",
    "plot_map_bars",
    "plot_per_class_ap",
    "plot_prediction_grid",
    "plot_training_curves",
    "prediction_grid_figure",
    "read_results_csv",
    "run_curves",
    "training_curves_figure",
]

DPI = 120
TASKS = ("detect", "obb")
NO_KD_TEXT = "no distilled run"

# Okabe-Ito colours (colour-blind safe), one per model role.
ROLE_COLORS: dict[str, str] = {
    "teacher": "#0072B2",  # blue
    "baseline": "#E69F00",  # orange
    "student": "#009E73",  # bluish green
    "onnx": "#CC79A7",  # reddish purple
    "int8": "#D55E00",  # vermillion
    "engine": "#56B4E9",  # sky blue
}
_FALLBACK_COLORS = ("#7F7F7F", "#8C564B", "#9467BD", "#17BECF", "#BCBD22", "#A50F15", "#222222", "#6B8E23")
# (role, pattern) in priority order: an exported student ("student_onnx") takes its format's colour.
_ROLE_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("int8", re.compile(r"int8")),
    ("engine", re.compile(r"engine|tensorrt|(?<![a-z])trt(?![a-z])")),
    ("onnx", re.compile(r"onnx")),
    ("teacher", re.compile(r"teacher")),
    ("baseline", re.compile(r"baseline|scratch|alone|no[ _-]?kd")),
    ("student", re.compile(r"student|distil|(?<![a-z])kd(?![a-z])|admd")),
)
_STATUS_STYLE = {  # gate status -> (label, cell colour, text colour)
    "pass": ("\u2713 PASS", "#D4EDDA", "#155724"),
    "fail": ("\u2717 FAIL", "#F8D7DA", "#721C24"),
    "skipped": ("\u2013 SKIPPED", "#E2E3E5", "#383D41"),
}
_RC = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "grid.linewidth": 0.6,
    "legend.fontsize": 8,
    "legend.framealpha": 0.85,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}

F = TypeVar("F", bound=Callable[..., Any])


def _styled(fn: F) -> F:
    """Run ``fn`` under the report's rcParams (scoped: global matplotlib settings are left alone)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------------------
def model_colors(names: Iterable[str]) -> dict[str, str]:
    """Map model names to colours, fixed per role so a model looks the same in every figure.

    Roles are recognised from the name (case-insensitive): ``teacher``, ``baseline`` (also
    ``scratch``, ``no_kd``), ``student`` (also ``distilled``, ``kd``, ``admd``) and the exported
    formats ``onnx``, ``int8`` and ``engine`` (also ``tensorrt``, ``trt``); an export's format wins
    over its role (``student_onnx`` is drawn as onnx). Other names, and a second name of an
    already used role, get distinct fallback colours.

    Args:
        names: Model names, in drawing order.

    Returns:
        Name -> hex colour; colours are distinct within one call.
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    pending: list[str] = []
    for name in dict.fromkeys(names):
        low = name.lower()
        role = next((r for r, pat in _ROLE_PATTERNS if pat.search(low)), None)
        color = ROLE_COLORS.get(role or "")
        if color is None or color in used:
            pending.append(name)
            continue
        out[name] = color
        used.add(color)
    for name in pending:  # stable per name (crc32), then the next free one
        palette = [c for c in _FALLBACK_COLORS if c not in used] or list(_FALLBACK_COLORS)
        color = palette[zlib.crc32(name.encode()) % len(palette)]
        out[name] = color
        used.add(color)
    return {name: out[name] for name in dict.fromkeys(out)}


def _save(fig: Figure, out: str | Path) -> Path:
    """Render ``fig`` with the Agg canvas and write it atomically to ``out``; return ``out``."""
    out = Path(out)
    fmt = out.suffix.lstrip(".").lower()
    supported = FigureCanvasAgg.get_supported_filetypes()
    if fmt not in supported:
        raise ValueError(
            f"out must end with an image suffix matplotlib can write; got {str(out)!r}. "
            f"Valid: {', '.join('.' + s for s in sorted(supported))}. Fix: use e.g. {out.with_suffix('.png').name!r}."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    FigureCanvasAgg(fig)
    try:
        with matplotlib.rc_context(_RC):
            fig.savefig(tmp, format=fmt, dpi=DPI, facecolor="white", bbox_inches="tight", pad_inches=0.12)
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return out


def _no_data(ax: Axes, text: str) -> None:
    """Mark a panel as empty with a centred grey note."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=11, color="#6C757D", style="italic")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)
    ax.set_facecolor("#F8F9FA")
    for side in ax.spines.values():
        side.set_visible(False)


def _fraction(value: Any, what: str) -> float | None:
    """Validate a metric in [0, 1]; None/NaN -> None (drawn as n/a)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise ValueError(f"{what} must be a number in [0, 1] or None; got {value!r}. Fix: pass the metric as a float fraction.")
    v = float(value)
    if math.isnan(v):
        return None
    if not 0.0 <= v <= 1.0:
        raise ValueError(
            f"{what} must be a fraction in [0, 1]; got {v}. Fix: divide percentages by 100 (the plot shows points itself)."
        )
    return v


def _plot_line(ax: Axes, x: np.ndarray, y: np.ndarray, **kwargs: Any) -> list[Line2D]:
    """Plot a curve, with markers when there are few points (a single epoch still shows)."""
    if len(x) <= 15:
        kwargs.setdefault("marker", "o")
        kwargs.setdefault("markersize", 3)
    return ax.plot(x, y, **kwargs)


def _maybe_log(ax: Axes, arrays: Iterable[np.ndarray], decades: float = 1.5) -> None:
    """Use a log y axis when the positive values span more than ``decades`` orders of magnitude."""
    vals = np.concatenate([a[np.isfinite(a)] for a in arrays] or [np.array([])])
    if vals.size and (vals > 0).all() and math.log10(vals.max() / vals.min()) > decades:
        ax.set_yscale("log")


# --------------------------------------------------------------------------------------------------
# training curves
# --------------------------------------------------------------------------------------------------
def read_results_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read an Ultralytics ``results.csv`` into float columns.

    Args:
        path: The CSV file. Header names are stripped of surrounding spaces; empty or
            non-numeric cells become NaN.

    Returns:
        Column name -> 1-D float array, in file order.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: The file has no header or no data rows.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"results.csv not found: {path}. Fix: pass the results.csv of a finished or running Ultralytics run.")
    with path.open(newline="") as fh:
        rows = [r for r in csv.reader(fh) if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise ValueError(
            f"{path} has no data rows (a header and at least one epoch are needed). "
            "Fix: plot after the run has finished at least one epoch."
        )
    header = [h.strip() for h in rows[0]]

    def num(cell: str) -> float:
        try:
            return float(cell)
        except ValueError:
            return math.nan

    cols: dict[str, np.ndarray] = {}
    for j, name in enumerate(header):
        if name:
            cols[name] = np.array([num(r[j].strip()) if j < len(r) else math.nan for r in rows[1:]], dtype=float)
    return cols


def _level_key(name: str) -> tuple[int, str]:
    m = re.search(r"\d+", name)
    return (int(m.group()) if m else 1 << 30, name)


@dataclass(frozen=True)
class RunCurves:
    """The per-epoch series of one run that the training-curve figure draws.

    Attributes:
        name: Model name (legend label).
        epoch: Epoch numbers (Ultralytics counts from 1).
        det_loss: Training detection loss, the sum of the ``train/*_loss`` columns (box, cls,
            dfl, and angle for OBB), or None when the CSV has none.
        map50_95: Validation mAP50-95 (fraction), or None.
        kd_raw: Raw (unweighted) KD loss ``train/kd``, or None for runs without distillation.
        kd_weight: KD weight ``train/kd_w``, or None.
        discrepancy: Level name (``P3``...) -> mean feature discrepancy ``train/d_P*``, by level.
    """

    name: str
    epoch: np.ndarray
    det_loss: np.ndarray | None = None
    map50_95: np.ndarray | None = None
    kd_raw: np.ndarray | None = None
    kd_weight: np.ndarray | None = None
    discrepancy: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def has_kd(self) -> bool:
        """True when the run logged a KD loss (a distilled run)."""
        return self.kd_raw is not None


def run_curves(name: str, columns: Mapping[str, np.ndarray]) -> RunCurves:
    """Pick the series the training-curve figure needs out of ``read_results_csv`` columns.

    Args:
        name: Model name.
        columns: Column name -> values; names are stripped of spaces again here.

    Returns:
        The run's :class:`RunCurves`; KD fields are None/empty when the KD columns are absent
        or entirely empty.
    """
    cols = {k.strip(): np.asarray(v, dtype=float) for k, v in columns.items()}
    n = max((len(v) for v in cols.values()), default=0)

    def col(key: str) -> np.ndarray | None:
        v = cols.get(key)
        return v if v is not None and np.isfinite(v).any() else None

    epoch = col("epoch")
    if epoch is None:
        epoch = np.arange(1, n + 1, dtype=float)
    loss_cols = [v for k, v in cols.items() if k.startswith("train/") and k.endswith("_loss")]
    det = np.sum(loss_cols, axis=0) if loss_cols else None
    disc = {k.split("/d_", 1)[1]: v for k, v in cols.items() if k.startswith("train/d_") and np.isfinite(v).any()}
    return RunCurves(
        name=name,
        epoch=epoch,
        det_loss=det if det is not None and np.isfinite(det).any() else None,
        map50_95=col("metrics/mAP50-95(B)"),
        kd_raw=col("train/kd"),
        kd_weight=col("train/kd_w"),
        discrepancy={k: disc[k] for k in sorted(disc, key=_level_key)},
    )


@_styled
def training_curves_figure(runs: Sequence[RunCurves]) -> Figure:
    """Draw the 2x2 training-curve figure (see :func:`plot_training_curves`).

    Axes carry labels for inspection: ``det_loss``, ``map``, ``kd``, ``kd_weight`` (the twin
    y-axis, only with a distilled run) and ``discrepancy``.

    Args:
        runs: One :class:`RunCurves` per model.

    Returns:
        The figure.

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError("runs is empty; pass at least one RunCurves. Fix: give plot_training_curves one results.csv per model.")
    colors = model_colors(r.name for r in runs)
    fig = Figure(figsize=(12.5, 8.2), layout="constrained")
    (ax_loss, ax_map), (ax_kd, ax_disc) = fig.subplots(2, 2)
    for ax, label in ((ax_loss, "det_loss"), (ax_map, "map"), (ax_kd, "kd"), (ax_disc, "discrepancy")):
        ax.set_label(label)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))

    # detection loss
    ax_loss.set_title("Detection loss (train: box + cls + dfl)")
    drawn = [r for r in runs if r.det_loss is not None]
    for r in drawn:
        _plot_line(ax_loss, r.epoch, r.det_loss, color=colors[r.name], lw=1.8, label=r.name)
    if drawn:
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        ax_loss.legend(loc="upper right")
    else:
        _no_data(ax_loss, "no train/*_loss columns")

    # mAP50-95
    ax_map.set_title("Validation mAP50-95")
    drawn = [r for r in runs if r.map50_95 is not None]
    for r in drawn:
        best = np.nanmax(r.map50_95) * 100
        _plot_line(ax_map, r.epoch, r.map50_95 * 100, color=colors[r.name], lw=1.8, label=f"{r.name} (best {best:.1f})")
    if drawn:
        ax_map.set_xlabel("epoch")
        ax_map.set_ylabel("mAP50-95 (%)")
        ax_map.set_ylim(bottom=0)
        ax_map.legend(loc="lower right")
    else:
        _no_data(ax_map, "no metrics/mAP50-95(B) column")

    # KD loss vs KD weight
    kd_runs = [r for r in runs if r.has_kd]
    ax_kd.set_title("KD: raw loss falls, weight compensates")
    if not kd_runs:
        _no_data(ax_kd, NO_KD_TEXT)
    else:
        ax_w = ax_kd.twinx()
        ax_w.set_label("kd_weight")
        ax_w.spines["right"].set_visible(True)
        ax_w.grid(False)
        left: list[np.ndarray] = []
        for r in kd_runs:
            c = colors[r.name]
            _plot_line(ax_kd, r.epoch, r.kd_raw, color=c, lw=1.8, label=f"{r.name}: raw KD loss")
            left.append(r.kd_raw)
            if r.kd_weight is not None:
                _plot_line(ax_w, r.epoch, r.kd_weight, color=c, lw=1.8, ls="--", label=f"{r.name}: KD weight")
                eff = r.kd_raw * r.kd_weight
                _plot_line(ax_kd, r.epoch, eff, color=c, lw=1.2, ls=":", alpha=0.9, label=f"{r.name}: raw \u00d7 weight")
                left.append(eff)
        _maybe_log(ax_kd, left)
        ax_kd.set_xlabel("epoch")
        ax_kd.set_ylabel("KD loss (solid: raw, dotted: raw \u00d7 weight)")
        ax_w.set_ylabel("KD weight (dashed)")
        handles = ax_kd.get_legend_handles_labels()
        handles_w = ax_w.get_legend_handles_labels()
        ax_kd.legend(handles[0] + handles_w[0], handles[1] + handles_w[1], loc="upper center", bbox_to_anchor=(0.5, -0.14),
                     ncol=3, fontsize=7, frameon=False)

    # discrepancy per level
    ax_disc.set_title("Teacher-student feature discrepancy per level")
    disc_runs = [r for r in kd_runs if r.discrepancy]
    if not kd_runs:
        _no_data(ax_disc, NO_KD_TEXT)
    elif not disc_runs:
        _no_data(ax_disc, "no train/d_P* columns")
    else:
        styles = ("-", "--", "-.", ":")
        arrays = []
        for i, r in enumerate(disc_runs):
            n_lv = len(r.discrepancy)
            for j, (level, vals) in enumerate(r.discrepancy.items()):
                if len(disc_runs) == 1:  # one run: colour by level
                    c, ls, label = matplotlib.colormaps["viridis"](0.15 + 0.7 * j / max(n_lv - 1, 1)), "-", level
                else:  # several: colour by model, line style by level
                    c, ls, label = colors[r.name], styles[j % len(styles)], f"{r.name} {level}"
                _plot_line(ax_disc, r.epoch, vals, color=c, ls=ls, lw=1.6, label=label)
                arrays.append(vals)
        _maybe_log(ax_disc, arrays)
        ax_disc.set_xlabel("epoch")
        ax_disc.set_ylabel("mean discrepancy (train/d_P*)")
        title = f"level ({disc_runs[0].name})" if len(disc_runs) == 1 else None
        ax_disc.legend(title=title, loc="upper right")
    return fig


def plot_training_curves(results: dict[str, str | Path], out: str | Path) -> Path:
    """Plot training curves of several runs into one 2x2 figure.

    Panels: training detection loss (sum of ``train/*_loss``: box + cls + dfl, + angle for OBB)
    per model; validation mAP50-95 per model (legend shows the best); for distilled runs the raw
    KD loss (left axis, solid), the KD weight (right axis, dashed) and their product (left,
    dotted), which shows the loss vanishing while the weight compensates; and the mean
    teacher-student discrepancy per pyramid level (``train/d_P*``). Without KD columns the two
    KD panels say "no distilled run".

    Args:
        results: Model name -> Ultralytics ``results.csv`` path. Column names may carry spaces.
        out: Output image path (``.png``); parent folders are created.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``results`` is empty, or a CSV has no data rows.
        FileNotFoundError: A CSV does not exist.
    """
    if not results:
        raise ValueError("results is empty; pass {model name: results.csv path}, e.g. {'student': 'runs/student/results.csv'}.")
    runs = [run_curves(name, read_results_csv(path)) for name, path in results.items()]
    return _save(training_curves_figure(runs), out)


# --------------------------------------------------------------------------------------------------
# mAP bars
# --------------------------------------------------------------------------------------------------
def _bar_label(ax: Axes, x: float, v: float | None, *, horizontal: bool = False, fontsize: float = 8) -> None:
    """Value label in points (1 decimal) at a bar's end, or 'n/a' for a missing value."""
    text, color = ("n/a", "#6C757D") if v is None else (f"{v * 100:.1f}", "#212529")
    pos = 0.0 if v is None else v * 100
    if horizontal:
        ax.annotate(text, (pos, x), xytext=(3, 0), textcoords="offset points", ha="left", va="center", fontsize=fontsize, color=color)
    else:
        ax.annotate(text, (x, pos), xytext=(0, 2), textcoords="offset points", ha="center", va="bottom", fontsize=fontsize, color=color)


@_styled
def map_bars_figure(models: Mapping[str, Mapping[str, Any]]) -> Figure:
    """Draw grouped mAP bars (see :func:`plot_map_bars`); one Rectangle patch per non-missing value.

    Args:
        models: Model name -> ``{'map50': float | None, 'map50_95': float | None}``.

    Returns:
        The figure.

    Raises:
        ValueError: ``models`` is empty or a value is not a fraction in [0, 1] or None.
    """
    if not models:
        raise ValueError("models is empty; pass {model name: {'map50': 0.61, 'map50_95': 0.42}} for at least one model.")
    metrics = (("map50", "mAP50"), ("map50_95", "mAP50-95"))
    values = {
        name: [_fraction(m.get(key) if isinstance(m, Mapping) else None, f"models[{name!r}][{key!r}]") for key, _ in metrics]
        for name, m in models.items()
    }
    colors = model_colors(values)
    n = len(values)
    width = min(0.8 / n, 0.28)
    fig = Figure(figsize=(max(6.0, 3.0 + 1.1 * n), 4.4), layout="constrained")
    ax = fig.subplots()
    ax.grid(axis="x", visible=False)
    top = 0.0
    for i, (name, vals) in enumerate(values.items()):
        for g, v in enumerate(vals):
            x = g + (i - (n - 1) / 2) * width
            if v is not None:
                ax.bar(x, v * 100, width=width * 0.92, color=colors[name], edgecolor="white", linewidth=0.5,
                       label=name if g == 0 or vals[0] is None else None)
                top = max(top, v * 100)
            _bar_label(ax, x, v, fontsize=8 if n <= 4 else 7)
    # legend entries also for models with no drawn bar
    handles = [Rectangle((0, 0), 1, 1, color=colors[name]) for name in values]
    ax.legend(handles, list(values), loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model")
    ax.set_xticks(range(len(metrics)), [label for _, label in metrics], fontsize=10)
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylim(0, min(max(top * 1.15, 10.0), 108.0))
    ax.set_ylabel("mAP (%)")
    ax.set_title("Validation mAP per model")
    return fig


def plot_map_bars(models: dict[str, dict[str, float]], out: str | Path) -> Path:
    """Plot grouped bars of mAP50 and mAP50-95, one colour per model, with value labels in points.

    Args:
        models: Model name -> ``{'map50': float in [0,1], 'map50_95': float in [0,1]}``; other
            keys are ignored, a None (or missing / NaN) value is drawn as an 'n/a' gap.
        out: Output image path (``.png``); parent folders are created.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``models`` is empty or a value is outside [0, 1].
    """
    return _save(map_bars_figure(models), out)


# --------------------------------------------------------------------------------------------------
# per-class AP
# --------------------------------------------------------------------------------------------------
@_styled
def per_class_ap_figure(per_class: Mapping[str, Mapping[str, Any]], metric: str = "AP50-95") -> Figure:
    """Draw grouped horizontal per-class AP bars (see :func:`plot_per_class_ap`).

    Classes are the union over models, in first-seen order, top to bottom; one Rectangle patch
    per non-missing value.

    Args:
        per_class: Model name -> {class name: AP in [0, 1] or None}.
        metric: Metric name for the title and axis label.

    Returns:
        The figure.

    Raises:
        ValueError: No model or no class given, or an AP outside [0, 1].
    """
    if not per_class:
        raise ValueError("per_class is empty; pass {model name: {class name: AP}} for at least one model.")
    classes = list(dict.fromkeys(c for m in per_class.values() for c in m))
    if not classes:
        raise ValueError(f"per_class has no classes for any model ({', '.join(per_class)}); each model needs {{class name: AP}}.")
    models = list(per_class)
    colors = model_colors(models)
    n_m, n_c = len(models), len(classes)
    height = 0.8 / n_m
    fs = 8 if n_m * n_c <= 40 else 6.5
    fig = Figure(figsize=(8.0, min(max(2.6, 0.75 + n_c * (0.12 + 0.17 * n_m)), 30.0)), layout="constrained")
    ax = fig.subplots()
    ax.grid(axis="y", visible=False)
    for i, name in enumerate(models):
        for k, cls in enumerate(classes):
            v = _fraction(per_class[name].get(cls), f"per_class[{name!r}][{cls!r}]")
            y = k + (i - (n_m - 1) / 2) * height
            if v is not None:
                ax.barh(y, v * 100, height=height * 0.9, color=colors[name], edgecolor="white", linewidth=0.4)
            _bar_label(ax, y, v, horizontal=True, fontsize=fs)
    ax.set_yticks(range(n_c), [str(c) for c in classes])
    ax.set_ylim(n_c - 0.5, -0.5)  # first class on top
    ax.set_xlim(0, 108)
    ax.set_xlabel(f"{metric} (%)")
    ax.set_title(f"Per-class {metric}")
    handles = [Rectangle((0, 0), 1, 1, color=colors[name]) for name in models]
    ax.legend(handles, models, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="model")
    return fig


def plot_per_class_ap(per_class: dict[str, dict[str, float]], out: str | Path, metric: str = "AP50-95") -> Path:
    """Plot per-class AP as grouped horizontal bars: classes on the y axis, one colour per model.

    Args:
        per_class: Model name -> {class name: AP in [0, 1]} (None draws 'n/a').
        out: Output image path (``.png``); parent folders are created.
        metric: Metric name shown in the title and x label.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``per_class`` is empty or an AP is outside [0, 1].
    """
    return _save(per_class_ap_figure(per_class, metric), out)


# --------------------------------------------------------------------------------------------------
# prediction grid
# --------------------------------------------------------------------------------------------------
def _class_color(cls: int) -> tuple[float, ...]:
    cmap = matplotlib.colormaps["tab10" if cls < 10 else "tab20"]
    return cmap(cls % cmap.N)


def _class_name(names: Mapping[int, str] | Sequence[str], cls: int) -> str:
    if isinstance(names, Mapping):
        return str(names.get(cls, cls))
    return str(names[cls]) if 0 <= cls < len(names) else str(cls)


def _shape(det: Any, task: str, where: str) -> np.ndarray:
    """Validate one detection and return its outline as an (N, 2) array in image pixels."""
    if not isinstance(det, Mapping) or "cls" not in det:
        raise ValueError(f"{where} must be a dict with 'cls', 'conf' and {'xyxy' if task == 'detect' else 'corners'}; got {det!r}.")
    key = "xyxy" if task == "detect" else "corners"
    if key not in det:
        other = "corners" if key == "xyxy" else "xyxy"
        hint = f" It has {other!r}: is task={task!r} right?" if other in det else ""
        raise ValueError(f"{where} has no {key!r}, which task={task!r} needs.{hint}")
    pts = np.asarray(det[key], dtype=float)
    if task == "detect":
        if pts.shape != (4,):
            raise ValueError(f"{where}['xyxy'] must be [x1, y1, x2, y2]; got shape {pts.shape}.")
        x1, y1, x2, y2 = pts
        return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    if pts.size != 8:
        raise ValueError(f"{where}['corners'] must be 4 [x, y] points; got shape {pts.shape}.")
    return pts.reshape(4, 2)


def _read_rgb(path: str | Path, max_side: int = 1024) -> tuple[np.ndarray, int, int]:
    """Read an image with cv2 as RGB, downscaled to ``max_side`` for display; return it with its original w, h."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"cannot read image {path}: missing or not an image cv2 can decode.")
    h, w = img.shape[:2]
    scale = max_side / max(h, w)
    if scale < 1:
        img = cv2.resize(img, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB), w, h


def _draw_label(ax: Axes, pts: np.ndarray, label: str, color: Any, w: int, h: int, cell_w: float, cell_h: float) -> None:
    """Write ``label`` above the shape's top-most point, kept inside the image near its edges."""
    fontsize = 5.5
    text_w = len(label) * fontsize * 0.6 / 72 / cell_w * w  # rough text extent in image pixels
    text_h = fontsize * 1.5 / 72 / cell_h * h
    tx, ty = pts[np.argmin(pts[:, 1] * 1e6 + pts[:, 0])]  # top-most (then left-most) point
    va = "bottom"
    if ty - text_h < 0:  # no room above: inside, below the top edge
        ty, va = max(ty, 0.0), "top"
    ha = "left"
    if tx + text_w > w:
        tx, ha = min(pts[:, 0].max(), w), "right"
    ax.text(max(tx, 0.0), ty, label, fontsize=fontsize, color="white", ha=ha, va=va, clip_on=True,
            bbox=dict(boxstyle="square,pad=0.12", facecolor=color, edgecolor="none", alpha=0.8))


@_styled
def prediction_grid_figure(
    images: Sequence[str | Path],
    predictions: Mapping[str, Sequence[Sequence[Mapping[str, Any]]]],
    task: str,
    names: Mapping[int, str] | Sequence[str],
    max_images: int = 6,
) -> Figure:
    """Draw the prediction grid (see :func:`plot_prediction_grid`).

    Each cell's axes is labelled ``"{row},{col}"`` and holds one patch (Rectangle for detect,
    Polygon for obb) per detection.

    Returns:
        The figure.

    Raises:
        ValueError: Bad task, empty inputs, too few predictions, or a malformed detection.
        FileNotFoundError: An image cannot be read.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}; got {task!r}. Fix: pass the models' task (detect or obb).")
    if not images:
        raise ValueError("images is empty; pass at least one image path.")
    if not predictions:
        raise ValueError("predictions is empty; pass {model name: [detections per image]} for at least one model.")
    if max_images < 1:
        raise ValueError(f"max_images must be >= 1; got {max_images}.")
    rows = list(images)[:max_images]
    models = list(predictions)
    for m in models:
        if len(predictions[m]) < len(rows):
            raise ValueError(
                f"predictions[{m!r}] has {len(predictions[m])} entries but {len(rows)} images are drawn; "
                "it needs one detection list per image, in the order of images (an empty list for none)."
            )
    colors = model_colors(models)
    loaded = [_read_rgb(p) for p in rows]
    aspect = loaded[0][2] / loaded[0][1]
    cell = 3.4 if len(models) <= 3 else 2.8
    fig = Figure(figsize=(cell * len(models) + 0.4, cell * aspect * len(rows) + 0.5))
    axes = fig.subplots(len(rows), len(models), squeeze=False, gridspec_kw=dict(wspace=0.03, hspace=0.06))
    for r, (path, (img, w, h)) in enumerate(zip(rows, loaded)):
        lw = 1.2 if len(models) <= 3 else 0.9
        for c, m in enumerate(models):
            ax = axes[r][c]
            ax.set_label(f"{r},{c}")
            ax.imshow(img, extent=(0, w, h, 0), interpolation="antialiased")
            ax.set_xlim(0, w)
            ax.set_ylim(h, 0)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            for side in ax.spines.values():
                side.set_visible(True)
                side.set_color("#ADB5BD")
            dets = list(predictions[m][r])
            for k, det in sorted(enumerate(dets), key=lambda kd: float(kd[1].get("conf", 0.0)) if isinstance(kd[1], Mapping) else 0.0):
                pts = _shape(det, task, f"predictions[{m!r}][{r}][{k}]")
                cls = int(det["cls"])
                col = _class_color(cls)
                if task == "detect":
                    (x1, y1), (x2, y2) = pts[0], pts[2]
                    ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=col, linewidth=lw))
                else:
                    ax.add_patch(Polygon(pts, closed=True, fill=False, edgecolor=col, linewidth=lw))
                label = _class_name(names, cls)
                if det.get("conf") is not None:
                    label += f" {float(det['conf']):.2f}"
                _draw_label(ax, pts, label, col, w, h, cell, cell * aspect)
            ax.text(0.98, 0.02, f"{len(dets)} det", transform=ax.transAxes, ha="right", va="bottom", fontsize=7,
                    color="white", bbox=dict(boxstyle="round,pad=0.2", facecolor="black", edgecolor="none", alpha=0.55))
            if r == 0:
                ax.set_title(m, color=colors[m], fontsize=11)
            if c == 0:
                ax.set_ylabel(Path(path).name, fontsize=7)
    return fig


def plot_prediction_grid(
    images: list[str | Path],
    predictions: dict[str, list[list[dict]]],
    out: str | Path,
    task: str,
    names: dict[int, str] | list[str],
    max_images: int = 6,
) -> Path:
    """Plot predictions side by side: one row per image, one column per model (e.g. teacher | student).

    Boxes (detect) or oriented polygons (obb) are drawn in class colours with a small
    ``'name conf'`` label; each cell notes its number of detections; column titles are the model
    names in their model colour, row labels the image file names.

    Args:
        images: Image paths (read with cv2); the first ``max_images`` are drawn.
        predictions: Model name -> one detection list per image, in the order of ``images``.
            A detection is a dict with ``'cls'`` (int), ``'conf'`` (float) and, for task
            ``'detect'``, ``'xyxy'`` ([x1, y1, x2, y2]) or, for task ``'obb'``, ``'corners'``
            ([[x, y]] * 4), both in original image pixels.
        out: Output image path (``.png``); parent folders are created.
        task: ``'detect'`` or ``'obb'``.
        names: Class names, as {id: name} or a list; unknown ids are shown as numbers.
        max_images: Most rows to draw.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: Unknown task, empty images/predictions, fewer detection lists than images
            drawn, or a malformed detection.
        FileNotFoundError: An image cannot be read.
    """
    return _save(prediction_grid_figure(images, predictions, task, names, max_images), out)


# --------------------------------------------------------------------------------------------------
# gates
# --------------------------------------------------------------------------------------------------
def gate_status(gate: Mapping[str, Any]) -> str:
    """Return ``'pass'``, ``'fail'`` or ``'skipped'`` for a gate dict (``passed`` True/False/None or absent)."""
    passed = gate.get("passed")
    if passed is None:
        return "skipped"
    return "pass" if bool(passed) else "fail"


def _fmt(v: Any) -> str:
    if v is None:
        return "\u2014"
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        return str(v)
    v = float(v)
    if math.isnan(v):
        return "\u2014"
    return f"{v:.4g}"


@_styled
def gates_figure(gates: Sequence[Mapping[str, Any]]) -> Figure:
    """Draw the gate table (see :func:`plot_gates`); the table is ``fig.axes[0].tables[0]``.

    Returns:
        The figure.

    Raises:
        ValueError: ``gates`` is empty or a gate has no name.
    """
    if not gates:
        raise ValueError("gates is empty; pass [{'name': ..., 'value': ..., 'limit': ..., 'passed': ...}] for at least one gate.")
    for i, g in enumerate(gates):
        if not isinstance(g, Mapping) or not str(g.get("name") or "").strip():
            raise ValueError(f"gates[{i}] must be a dict with a non-empty 'name'; got {g!r}.")
    statuses = [gate_status(g) for g in gates]
    text = [[str(g["name"]), _fmt(g.get("value")), _fmt(g.get("limit")), _STATUS_STYLE[s][0]] for g, s in zip(gates, statuses)]
    header = ["Gate", "Value", "Limit", "Result"]
    name_len = max(len(header[0]), *(len(t[0]) for t in text))
    widths = np.array([max(name_len, 12), 10, 10, 12], dtype=float)
    fig_w = min(max(6.0, 0.085 * widths.sum() + 0.6), 14.0)
    row_h = 0.3  # inches per table row; the table fills the axes exactly
    fig = Figure(figsize=(fig_w, row_h * (len(gates) + 1) + 0.45))
    ax = fig.add_axes((0.0, 0.0, 1.0, row_h * (len(gates) + 1) / fig.get_figheight()))
    ax.set_axis_off()
    table = ax.table(cellText=text, colLabels=header, colWidths=list(widths / widths.sum()), bbox=(0, 0, 1, 1), cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("#DEE2E6")
        cell.set_linewidth(0.6)
        if col == 0:
            cell.set_text_props(ha="left")
            cell.PAD = 0.02
        if row == 0:
            cell.set_facecolor("#343A40")
            cell.set_text_props(color="white", weight="bold")
            continue
        status = statuses[row - 1]
        if col == 3:
            _, face, fg = _STATUS_STYLE[status]
            cell.set_facecolor(face)
            cell.set_text_props(color=fg, weight="bold")
        else:
            cell.set_facecolor("#F8F9FA" if row % 2 == 0 else "white")
            if status == "skipped":
                cell.set_text_props(color="#6C757D")
    counts = {s: statuses.count(s) for s in _STATUS_STYLE}
    verdict = "ALL PASSED" if counts["fail"] == 0 and counts["pass"] else ("FAILED" if counts["fail"] else "NOTHING CHECKED")
    color = {"ALL PASSED": "#155724", "FAILED": "#721C24"}.get(verdict, "#383D41")
    ax.set_title(f"Gates: {verdict}  ({counts['pass']} passed, {counts['fail']} failed, {counts['skipped']} skipped)",
                 color=color, loc="left", pad=8)
    return fig


def plot_gates(gates: list[dict], out: str | Path) -> Path:
    """Plot the report's gates as a compact table with pass (green) / fail (red) / skipped (grey) results.

    Args:
        gates: ``[{'name': str, 'value': float | None, 'limit': float | None, 'passed': bool | None}]``;
            ``passed`` None (or absent) means skipped. Values are shown with 4 significant digits.
        out: Output image path (``.png``); parent folders are created.

    Returns:
        ``out`` as a Path.

    Raises:
        ValueError: ``gates`` is empty or a gate has no name.
    """
    return _save(gates_figure(gates), out)


# --------------------------------------------------------------------------------------------------
# KD method comparison (admd-deploy bench kd)
# --------------------------------------------------------------------------------------------------
def method_comparison_figure(
    rows: Sequence[Mapping[str, Any]],
    per_seed: Mapping[str, Sequence[float]] | None = None,
    teacher: float | None = None,
) -> Figure:
    """mAP50-95 per method with its spread over seeds, and the share of the teacher-baseline gap closed.

    Args:
        rows: One mapping per method with ``method``, ``map50_95``, ``map50_95_std`` (fractions) and
            ``gap_closed`` (fraction or None), as written by ``admd-deploy bench kd``. A method spec
            with knobs (``admd:weight=constant``) is labelled on two lines.
        per_seed: Method -> its per-seed mAP50-95 (fractions), drawn as dots over the bar.
        teacher: The teacher's mAP50-95 (fraction), drawn as a dashed line; the baseline's (method
            ``none``) mean is drawn as a dotted line.
    """
    if not rows:
        raise ValueError("rows is empty; pass one {'method', 'map50_95', 'map50_95_std', 'gap_closed'} per method.")
    names = [str(r["method"]) for r in rows]
    means = np.array([100 * float(r["map50_95"]) for r in rows])
    stds = np.array([100 * float(r.get("map50_95_std") or 0.0) for r in rows])
    colors = model_colors(["baseline" if n == "none" else n for n in names])
    fig = Figure(figsize=(max(6.0, 1.1 * len(rows) + 2.5), 4.6), layout="constrained")
    ax = fig.subplots()
    ax.grid(axis="x", visible=False)
    x = np.arange(len(rows))
    ax.bar(x, means, yerr=stds, capsize=4, color=[colors["baseline" if n == "none" else n] for n in names],
           edgecolor="white", linewidth=0.5)
    top = float((means + stds).max())
    for xi, name in zip(x, names):
        values = [100 * float(v) for v in (per_seed or {}).get(name, [])]
        if values:
            offsets = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(xi + offsets, values, s=14, color="black", zorder=3, label="one seed" if xi == 0 else None)
            top = max(top, max(values))
    if teacher is not None:
        ax.axhline(100 * teacher, color=ROLE_COLORS["teacher"], linestyle="--", linewidth=1.2,
                   label=f"teacher {100 * teacher:.1f}")
        top = max(top, 100 * teacher)
    if "none" in names:
        base = means[names.index("none")]
        ax.axhline(base, color=ROLE_COLORS["baseline"], linestyle=":", linewidth=1.2, label=f"baseline {base:.1f}")
    for xi, m, s, r in zip(x, means, stds, rows):
        gap = r.get("gap_closed")
        label = f"{m:.1f}" + ("" if gap is None else f"\n{100 * gap:+.0f}% gap")
        ax.annotate(label, (xi, m + s), xytext=(0, 3), textcoords="offset points", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, ["none\n(baseline)" if n == "none" else n.replace(":", "\n") for n in names], fontsize=8)
    ax.set_ylim(0, min(max(top * 1.25, 10.0), 110.0))
    ax.set_ylabel("mAP50-95 (%), mean ± std over seeds")
    ax.set_title("Student mAP50-95 per distillation method")
    if per_seed or teacher is not None or "none" in names:
        ax.legend(loc="lower right", fontsize=8, framealpha=0.9)
    return fig


@_styled
def plot_method_comparison(
    rows: list[dict[str, Any]],
    out: str | Path,
    per_seed: Mapping[str, Sequence[float]] | None = None,
    teacher: float | None = None,
) -> Path:
    """Bars of mAP50-95 per method with error bars over seeds, labelled with the gap closed; see
    :func:`method_comparison_figure`. Returns ``out``."""
    return _save(method_comparison_figure(rows, per_seed, teacher), out)


def paired_deltas_figure(rows: Sequence[Mapping[str, Any]], point: str = "one seed",
                         title: str = "Paired against the baseline: per seed, mean and 95% interval") -> Figure:
    """Each method's per-seed mAP50-95 delta against the baseline of the same seed, with the mean and
    its 95% t interval.

    Args:
        rows: One mapping per method with ``method``, ``seeds``, ``deltas``, ``mean``, ``ci_low``,
            ``ci_high`` (fractions; the intervals may be None) and ``verdict``, as written by
            ``admd-deploy bench kd`` (``paired`` in ``bench-kd.json``).
        point: Legend entry of one point (``one pair`` for a pooled table).
        title: The figure's title.
    """
    if not rows:
        raise ValueError("rows is empty; pass one paired delta per method (bench-kd.json 'paired').")
    fig = Figure(figsize=(max(6.0, 1.0 * len(rows) + 3.0), 4.4), layout="constrained")
    ax = fig.subplots()
    ax.grid(axis="x", visible=False)
    ax.axhline(0.0, color=ROLE_COLORS["baseline"], linestyle=":", linewidth=1.2, label="baseline (same seed)")
    colors = model_colors([str(r["method"]) for r in rows])
    for xi, r in enumerate(rows):
        deltas = [100 * float(d) for d in r["deltas"]]
        offsets = np.linspace(-0.15, 0.15, len(deltas)) if len(deltas) > 1 else np.zeros(1)
        ax.scatter(xi + offsets, deltas, s=18, color="black", zorder=3, label=point if xi == 0 else None)
        for off, d, seed in zip(offsets, deltas, r["seeds"]):
            ax.annotate(str(seed), (xi + off, d), xytext=(3, 0), textcoords="offset points", fontsize=6, va="center")
        mean = 100 * float(r["mean"])
        lo, hi = r.get("ci_low"), r.get("ci_high")
        if lo is not None and hi is not None:
            ax.errorbar(xi + 0.3, mean, yerr=[[mean - 100 * lo], [100 * hi - mean]], fmt="o", color=colors[str(r["method"])],
                        capsize=5, markersize=6, label="mean, 95% t interval" if xi == 0 else None)
        else:
            ax.plot(xi + 0.3, mean, "o", color=colors[str(r["method"])])
        ax.annotate(f"{mean:+.2f}\n{r.get('verdict', '')}".replace(" resolved ", "\nresolved "), (xi + 0.3, mean),
                    xytext=(8, 0), textcoords="offset points", ha="left", va="center", fontsize=7)
    ax.set_xticks(range(len(rows)), [str(r["method"]).replace(":", "\n") for r in rows], fontsize=8)
    ax.set_xlim(-0.6, len(rows) + 0.1)
    ax.set_ylabel("mAP50-95 delta vs baseline (points)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return fig


@_styled
def plot_paired_deltas(rows: list[dict[str, Any]], out: str | Path, **kwargs: Any) -> Path:
    """The figure of :func:`paired_deltas_figure` (``kwargs``: its ``point`` and ``title``), saved to ``out``.
    Returns ``out``."""
    return _save(paired_deltas_figure(rows, **kwargs), out)


def paired_curves_figure(rows: Sequence[Mapping[str, Any]],
                         title: str = "During training: mAP50-95 minus the baseline of the same seed") -> Figure:
    """Each method's per-epoch delta against the baseline's run of the same seed: one thin line per seed, the mean
    over seeds bold, the largest mean lead marked.

    Args:
        rows: One mapping per method with ``method``, ``seeds``, ``epochs``, ``deltas`` (per seed, per epoch),
            ``mean`` (per epoch), ``lead`` and ``lead_epoch`` (fractions), as written by ``admd-deploy bench kd``
            (``paired_curves`` in ``bench-kd.json``).
        title: The figure's title.
    """
    if not rows:
        raise ValueError("rows is empty; pass one paired curve per method (bench-kd.json 'paired_curves').")
    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.subplots()
    ax.axhline(0.0, color=ROLE_COLORS["baseline"], linestyle=":", linewidth=1.2, label="baseline (same seed)")
    colors = model_colors([str(r["method"]) for r in rows])
    for r in rows:
        color = colors[str(r["method"])]
        epochs = np.asarray(r["epochs"], dtype=float)
        for seed_deltas in r["deltas"]:
            ax.plot(epochs, 100 * np.asarray(seed_deltas, dtype=float), color=color, linewidth=0.8, alpha=0.35)
        mean = 100 * np.asarray(r["mean"], dtype=float)
        _plot_line(ax, epochs, mean, color=color, linewidth=2.2,
                   label=f"{r['method']} (mean of {len(r['seeds'])}; thin: each seed)")
        lead, at = 100 * float(r["lead"]), int(r["lead_epoch"])
        ax.annotate(f"{lead:+.2f}", (at, lead), xytext=(0, 6), textcoords="offset points", ha="center", fontsize=7,
                    color=color)
    ax.set_xlabel("epoch")
    ax.set_ylabel("mAP50-95 delta vs baseline (points)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8, framealpha=0.9)
    return fig


@_styled
def plot_paired_curves(rows: list[dict[str, Any]], out: str | Path, **kwargs: Any) -> Path:
    """The figure of :func:`paired_curves_figure` (``kwargs``: its ``title``), saved to ``out``. Returns ``out``."""
    return _save(paired_curves_figure(rows, **kwargs), out)


def read_teaching_maps(files: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Load ``kd_maps/epochNNN.npz`` snapshots (images, epoch, one ``map_<level>`` per level), by epoch."""
    snaps = []
    for f in files:
        with np.load(f) as z:
            maps = {k.removeprefix("map_"): z[k].astype(np.float32) for k in z.files if k.startswith("map_")}
            snaps.append({"epoch": int(z["epoch"]), "images": z["images"], "maps": maps})
    return sorted(snaps, key=lambda s: s["epoch"])


def teaching_map(maps: Mapping[str, np.ndarray], index: int, size: tuple[int, int]) -> np.ndarray:
    """The levels' maps of one image, each resized to ``size`` (h, w) and averaged."""
    import cv2

    h, w = size
    return np.mean([cv2.resize(m[index], (w, h), interpolation=cv2.INTER_LINEAR) for m in maps.values()], axis=0)


def teaching_maps_figure(snapshots: Sequence[Mapping[str, Any]], title: str = "ADMD mask") -> Figure:
    """Where the student is taught: the teaching map over each validation image (rows) at each snapshot
    epoch (columns). Weight 1 is the image's mean; brighter places weigh more in the KD loss.

    Args:
        snapshots: As :func:`read_teaching_maps` returns them (same images in every snapshot).
        title: What the map is (``ADMD mask``, or ``discrepancy`` for the peers).
    """
    if not snapshots:
        raise ValueError("no teaching-map snapshots: distil with a KD method to get kd_maps/epochNNN.npz")
    n_img = len(snapshots[0]["images"])
    fig = Figure(figsize=(2.3 * len(snapshots) + 0.8, 2.3 * n_img + 0.5), layout="constrained")
    axes = np.atleast_2d(fig.subplots(n_img, len(snapshots), squeeze=False))
    size = tuple(snapshots[0]["images"].shape[1:3])
    heat = [[teaching_map(s["maps"], i, size) for s in snapshots] for i in range(n_img)]
    vmax = float(np.percentile(np.stack([h for row in heat for h in row]), 99.5))
    image = None
    for i in range(n_img):
        for j, snap in enumerate(snapshots):
            ax = axes[i, j]
            ax.imshow(snap["images"][i][..., ::-1])
            image = ax.imshow(heat[i][j], cmap="inferno", alpha=0.55, vmin=0.0, vmax=max(vmax, 1.0))
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
            if i == 0:
                ax.set_title(f"epoch {snap['epoch']}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.6, label="KD weight (image mean = 1)")
    fig.suptitle(f"Where the student is taught ({title}, levels {', '.join(snapshots[0]['maps'])} averaged)",
                 fontsize=10)
    return fig


@_styled
def plot_teaching_maps(files: Iterable[str | Path], out: str | Path, title: str = "ADMD mask") -> Path:
    """:func:`teaching_maps_figure` of the snapshot files, saved to ``out``. Returns ``out``."""
    return _save(teaching_maps_figure(read_teaching_maps(files), title), out)
