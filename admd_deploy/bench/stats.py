"""Paired statistics of a KD comparison: per-seed deltas against the baseline, their t interval, a verdict.

Every method's run with seed ``k`` is compared with the baseline's (``none``) run of the same seed: the
same data order, augmentation and initialisation, so the difference removes most of the seed-to-seed
noise that an unpaired comparison of two means keeps. The 95% confidence interval of the mean delta
uses Student's t distribution with ``n - 1`` degrees of freedom; the verdict says whether it excludes
zero. Pure Python (no SciPy in the lock): the t quantile comes from the regularised incomplete beta
function by bisection.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

RESOLVED_GAIN, NO_DIFFERENCE, RESOLVED_LOSS, TOO_FEW = (
    "resolved gain", "no resolved difference", "resolved loss", "too few seeds")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function ``I_x(a, b)``."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (``t_quantile(0.975, 2) = 4.3027``), by bisection to 1e-12."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0; got p={p!r}, df={df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
        if hi - lo < 1e-12:
            break
    return 0.5 * (lo + hi)


@dataclass(frozen=True)
class PairedDelta:
    """A method against the baseline, seed by seed (values in the unit of the inputs, e.g. mAP fractions).

    Attributes:
        method: The method spec.
        seeds: The seeds both the method and the baseline ran, in order.
        deltas: Per seed, ``method - baseline``.
        mean: Mean delta.
        std: Sample standard deviation of the deltas (0 for one seed).
        ci_low, ci_high: 95% t interval of the mean delta (None for fewer than two seeds).
        gap_closed: ``mean / (teacher - baseline mean)``, or None without a teacher or gap.
        verdict: ``resolved gain`` (interval above 0), ``resolved loss`` (below 0), ``no resolved
            difference`` (contains 0) or ``too few seeds``.
    """

    method: str
    seeds: tuple[int, ...]
    deltas: tuple[float, ...]
    mean: float
    std: float
    ci_low: float | None
    ci_high: float | None
    gap_closed: float | None
    verdict: str


def summarize(deltas: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float | None, float | None, str]:
    """Mean, sample standard deviation, ``confidence`` t interval (None for one delta) and verdict of paired deltas.

    Raises:
        ValueError: no deltas.
    """
    if not deltas:
        raise ValueError("summarize needs at least one delta")
    mean = statistics.fmean(deltas)
    n = len(deltas)
    std = statistics.stdev(deltas) if n > 1 else 0.0
    if n < 2:
        return mean, std, None, None, TOO_FEW
    half = t_quantile(0.5 + confidence / 2.0, n - 1) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    return mean, std, low, high, RESOLVED_GAIN if low > 0 else RESOLVED_LOSS if high < 0 else NO_DIFFERENCE


def paired_delta(method: str, values: Mapping[int, float], baseline: Mapping[int, float],
                 teacher: float | None = None, confidence: float = 0.95) -> PairedDelta:
    """Compare ``values`` (seed -> score) with ``baseline`` (seed -> score) on the seeds they share.

    Raises:
        ValueError: the two share no seed.
    """
    seeds = tuple(s for s in values if s in baseline)
    if not seeds:
        raise ValueError(f"{method}: no seed in common with the baseline (method seeds {sorted(values)}, "
                         f"baseline seeds {sorted(baseline)}); run both with the same --seeds")
    deltas = tuple(float(values[s]) - float(baseline[s]) for s in seeds)
    mean, std, low, high, verdict = summarize(deltas, confidence)
    gap = None
    base_mean = statistics.fmean(float(baseline[s]) for s in seeds)
    if teacher is not None and abs(teacher - base_mean) > 1e-12:
        gap = mean / (teacher - base_mean)
    return PairedDelta(method, seeds, deltas, mean, std, low, high, gap, verdict)


def paired_table(per_seed: Mapping[str, Mapping[int, float]], teacher: float | None = None,
                 baseline: str = "none") -> list[PairedDelta]:
    """A :class:`PairedDelta` for every method but the baseline (empty when the baseline did not run)."""
    if baseline not in per_seed:
        return []
    return [paired_delta(m, v, per_seed[baseline], teacher) for m, v in per_seed.items() if m != baseline]


def markdown(rows: Sequence[PairedDelta], scale: float = 100.0) -> str:
    """The paired table in Markdown, values times ``scale`` (points for mAP fractions)."""
    lines = ["| method | seeds | per-seed delta vs none (points) | mean ± std | 95% CI (t) | gap closed | verdict |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join(f"{scale * d:+.2f}" for d in r.deltas)
        ci = "n/a" if r.ci_low is None else f"[{scale * r.ci_low:+.2f}, {scale * r.ci_high:+.2f}]"
        gap = "n/a" if r.gap_closed is None else f"{100 * r.gap_closed:+.0f}%"
        lines.append(f"| {r.method} | {len(r.seeds)} | {per} | {scale * r.mean:+.2f} ± {scale * r.std:.2f} | {ci} | "
                     f"{gap} | {r.verdict} |")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PairedCurve:
    """A method against the baseline epoch by epoch: the per-epoch validation mAP of each seed's run minus the
    baseline's run of the same seed (values in the unit of the inputs).

    Attributes:
        method: The method spec.
        seeds: The seeds both ran (with at least one epoch each), in order.
        epochs: 1-based epochs every one of those pairs reached (the shortest pair sets the length).
        deltas: Per seed, the per-epoch delta over ``epochs``.
        mean: Per epoch, the mean delta over the seeds.
        lead: The largest mean delta over the epochs, and ``lead_epoch`` the first epoch it occurs at.
        final: The mean delta at the last of ``epochs``.
    """

    method: str
    seeds: tuple[int, ...]
    epochs: tuple[int, ...]
    deltas: tuple[tuple[float, ...], ...]
    mean: tuple[float, ...]
    lead: float
    lead_epoch: int
    final: float


def paired_curve(method: str, curves: Mapping[int, Sequence[float]],
                 baseline: Mapping[int, Sequence[float]]) -> PairedCurve | None:
    """Compare per-epoch curves (seed -> values by epoch) with the baseline's of the same seeds.

    A NaN in either curve (an epoch without a validation) gives a NaN delta at that epoch, which the mean skips.
    Returns None when no seed has a curve on both sides.
    """
    seeds = tuple(s for s in curves if s in baseline and len(curves[s]) and len(baseline[s]))
    if not seeds:
        return None
    n = min(min(len(curves[s]), len(baseline[s])) for s in seeds)
    deltas = tuple(tuple(float(curves[s][e]) - float(baseline[s][e]) for e in range(n)) for s in seeds)
    mean = []
    for e in range(n):
        finite = [d[e] for d in deltas if math.isfinite(d[e])]
        mean.append(statistics.fmean(finite) if finite else math.nan)
    finite_epochs = [e for e in range(n) if math.isfinite(mean[e])]
    if not finite_epochs:
        return None
    best = max(finite_epochs, key=lambda e: mean[e])  # max() keeps the first of equal values
    return PairedCurve(method, seeds, tuple(range(1, n + 1)), deltas, tuple(mean), mean[best], best + 1,
                       mean[finite_epochs[-1]])


def paired_curves(per_seed: Mapping[str, Mapping[int, Sequence[float]]], baseline: str = "none") -> list[PairedCurve]:
    """A :class:`PairedCurve` for every method but the baseline that shares a seed with it (empty without one)."""
    if baseline not in per_seed:
        return []
    rows = (paired_curve(m, c, per_seed[baseline]) for m, c in per_seed.items() if m != baseline)
    return [r for r in rows if r is not None]


def curves_markdown(rows: Sequence[PairedCurve], scale: float = 100.0) -> str:
    """The per-epoch paired deltas in Markdown (mean over seeds, times ``scale``), with the largest lead and the end."""
    lines = ["| method | seeds | mean delta vs none per epoch (points) | largest lead (epoch) | at the end |",
             "|---|---|---|---|---|"]
    for r in rows:
        per = ", ".join("n/a" if not math.isfinite(m) else f"{scale * m:+.2f}" for m in r.mean)
        lines.append(f"| {r.method} | {len(r.seeds)} | {per} | {scale * r.lead:+.2f} ({r.lead_epoch}) | "
                     f"{scale * r.final:+.2f} |")
    return "\n".join(lines) + "\n"
