"""The distillation term of the total loss, on plain tensors (no Ultralytics here).

:class:`KDCriterion` owns every trainable distillation part (the align connectors and the
losses' own modules, e.g. MGD's generator) and the weighting state, so putting its parameters in
the optimiser and its ``state_dict`` in the training checkpoint covers them all.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from admd_deploy.kd.align import build_align
from admd_deploy.kd.config import check_knob
from admd_deploy.kd.registry import LOSSES, NONE, build_loss, check_params
from admd_deploy.kd.weighting import KDWeight

LOGGER = logging.getLogger(__name__)


@dataclass
class KDOutput:
    """What one :meth:`KDCriterion.forward` returns.

    Attributes:
        loss: ``loss_weight * w_t * raw``, with gradient (0-dim, float32).
        raw: Detached sum over levels of the raw per-level terms.
        weight: Detached current KD weight ``w_t``.
        discrepancy: Per level, the detached mean over ``(n, c, h, w)`` of ``(T - A)^2`` (the same
            quantity for every method, for logging the loss-vanishing effect).
    """

    loss: Tensor
    raw: Tensor
    weight: Tensor
    discrepancy: list[Tensor]


def _scale_grad(x: Tensor, share: float) -> Tensor:
    """``x`` unchanged in value, with its gradient multiplied by ``share`` (detached at 0)."""
    if share <= 0.0:
        return x.detach()
    if share >= 1.0:
        return x
    frozen = x.detach()
    return frozen + share * (x - frozen)


def _locations(x: Tensor) -> Tensor:
    """``(N, C, H, W)`` -> ``(N*H*W, C)`` float64, detached."""
    return x.detach().permute(0, 2, 3, 1).reshape(-1, x.shape[1]).double()


class KDCriterion(nn.Module):
    """Align the student's maps, apply the per-level loss, weight the sum.

    Args:
        method: A registered loss name (not ``none``).
        student_channels: Student channels per level.
        teacher_channels: Teacher channels per level.
        loss_weight: lambda of ``L = L_det + lambda * w_t * L_kd``, > 0; ``None`` takes the loss's
            ``default_weight``.
        loss_params: Keyword parameters of the loss.
        weighting: Keyword parameters of :class:`KDWeight` (``mode``, ``beta``, ``warmup_epochs``,
            ``w_max``); ``None`` means its defaults.
        total_epochs: Length of the run in epochs (``linear`` weighting needs it).
        align_warmup_epochs: Before this global epoch the student maps are detached: the KD loss
            trains the align connectors (and a loss's own modules) only.
        ramp_epochs: After the connector warm-up, the share of the KD gradient that reaches the
            student rises linearly from 0 to 1 over this many epochs (:meth:`student_share`); 0 = at once.
        distilled: Per level, whether its loss counts (default: every level). A level left out keeps its
            connector and its logged discrepancy; it adds nothing to ``L_kd``.
        align_init: ``random`` or ``lstsq``: accumulate the maps of the connector warm-up's training
            steps and, at the first step after it, set each 1x1 connector to the least-squares map
            from student to teacher features (:meth:`fit_align`). Needs ``align_warmup_epochs > 0``.
        ridge: The least-squares fit's ridge, relative to the mean diagonal of the student's Gram matrix.
            0.1: the student's deepest maps are ill-conditioned (eigenvalues from 4e-6 to 41 at P5 in the
            benchmark), and at 1e-3 the fitted connector's norm was 95 against 13 for PyTorch's init, so
            it amplified directions the student barely uses and the KD gradient pushed the student hard along
            them (P5's discrepancy rose from 0.33 to 1.7 in the next epoch); at 0.1 the norm is that of the
            init and the fit keeps most of its gain (docs/ADMD.md).

    Raises:
        ValueError: ``method`` is ``none`` or unknown, the channel lists differ in length, or a
            parameter is unknown or invalid.
    """

    def __init__(
        self,
        method: str,
        student_channels: Sequence[int],
        teacher_channels: Sequence[int],
        *,
        loss_weight: float | None = None,
        loss_params: dict[str, Any] | None = None,
        weighting: dict[str, Any] | None = None,
        total_epochs: float | None = None,
        align_warmup_epochs: float = 0.0,
        ramp_epochs: float = 0.0,
        align_init: str = "random",
        ridge: float = 0.1,
        distilled: Sequence[bool] | None = None,
    ) -> None:
        super().__init__()
        if method == NONE:
            raise ValueError(f"method {NONE!r} trains the student alone: build no KDCriterion for it")
        self.method = method
        self.align_warmup_epochs = float(check_knob("align_warmup_epochs", align_warmup_epochs, required=True))
        self.ramp_epochs = float(check_knob("ramp_epochs", ramp_epochs, required=True))
        self.align_init = check_knob("align_init", align_init, required=True)
        if self.align_init == "lstsq" and self.align_warmup_epochs <= 0:
            raise ValueError("align_init 'lstsq' fits the connectors on the maps of the connector warm-up: "
                             "pass align_warmup_epochs > 0")
        self.ridge = float(ridge)
        self.student_channels = list(student_channels)
        self.teacher_channels = list(teacher_channels)
        self.align = build_align(self.student_channels, self.teacher_channels)
        self.distilled = [True] * len(self.teacher_channels) if distilled is None else [bool(d) for d in distilled]
        if len(self.distilled) != len(self.teacher_channels) or not any(self.distilled):
            raise ValueError(f"distilled must hold one flag per level ({len(self.teacher_channels)}), at least one True; "
                             f"got {list(distilled or [])}")
        # The least-squares statistics, per level: sum of [s, 1]^T [s, 1], of [s, 1]^T t and of t^2 over every location
        # of the warm-up's training steps (float64, in the state_dict so that a resume inside the warm-up keeps them).
        self.register_buffer("align_fitted", torch.zeros((), dtype=torch.bool))
        self._fit_levels = [i for i, m in enumerate(self.align) if isinstance(m, nn.Conv2d) and self.distilled[i]] \
            if self.align_init == "lstsq" else []
        self._fit_pending = bool(self._fit_levels)  # False once fitted: no buffer read (a device sync) per step
        for i in self._fit_levels:
            cs, ct = self.student_channels[i], self.teacher_channels[i]
            self.register_buffer(f"fit_gram{i}", torch.zeros(cs + 1, cs + 1, dtype=torch.float64))
            self.register_buffer(f"fit_cross{i}", torch.zeros(cs + 1, ct, dtype=torch.float64))
            self.register_buffer(f"fit_tt{i}", torch.zeros((), dtype=torch.float64))
        params = dict(loss_params or {})
        self.losses = nn.ModuleList(build_loss(method, ct, **params) for ct in self.teacher_channels)
        weight_kwargs = dict(weighting or {})
        check_params("distill weighting", KDWeight, weight_kwargs)
        if total_epochs is not None:
            weight_kwargs["total_epochs"] = total_epochs
        self.weighting = KDWeight(**weight_kwargs)
        default = LOSSES[method].default_weight
        self.loss_weight = default if loss_weight is None else float(check_knob("loss_weight", loss_weight))
        LOGGER.debug("KD criterion %s, lambda %g, %d levels", method, self.loss_weight, len(self.losses))

    @property
    def needs_score(self) -> bool:
        """Whether the loss needs the teacher's per-location class score (``score_l2``)."""
        return bool(LOSSES[self.method].needs_score)

    def student_share(self, epoch: float) -> float:
        """The share of the KD gradient that reaches the student at global epoch ``epoch``.

        0 during the connector warm-up (``epoch < align_warmup_epochs``), then
        ``(epoch - align_warmup_epochs) / ramp_epochs`` up to 1 (1 at once when ``ramp_epochs`` is 0).
        """
        if epoch < self.align_warmup_epochs:
            return 0.0
        if self.ramp_epochs <= 0:
            return 1.0
        return min(1.0, (epoch - self.align_warmup_epochs) / self.ramp_epochs)

    def forward(
        self,
        student_feats: Sequence[Tensor],
        teacher_feats: Sequence[Tensor],
        epoch: float,
        teacher_scores: Sequence[Tensor] | None = None,
    ) -> KDOutput:
        """Compute the weighted KD loss of one batch.

        Args:
            student_feats: Student maps per level, ``(N, Cs, H, W)``.
            teacher_feats: Teacher maps per level, ``(N, Ct, H, W)`` (detached here).
            epoch: Global fractional epoch (``iteration / iterations_per_epoch``).
            teacher_scores: Teacher max class probability per level, ``(N, 1, H, W)``; required
                when :attr:`needs_score`.

        Returns:
            The loss and its logged parts.

        Raises:
            ValueError: Level counts, channel widths or spatial sizes do not match, or scores are
                missing for a loss that needs them.
        """
        levels = len(self.losses)
        if len(student_feats) != levels or len(teacher_feats) != levels:
            raise ValueError(
                f"KD criterion built for {levels} levels got {len(student_feats)} student and "
                f"{len(teacher_feats)} teacher maps"
            )
        if self.needs_score and (teacher_scores is None or len(teacher_scores) != levels):
            got = "none" if teacher_scores is None else len(teacher_scores)
            raise ValueError(f"loss {self.method!r} needs one teacher score map per level ({levels}); got {got}")
        terms: list[Tensor] = []
        discrepancy: list[Tensor] = []
        share = self.student_share(epoch)  # 0: the connectors learn first and the student is left alone
        accumulate = False
        if self._fit_pending and self.training:
            if bool(self.align_fitted):  # fitted before a resume
                self._fit_pending = False
            elif share == 0.0:
                accumulate = True
            else:
                self.fit_align()
        for level, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            cs, ct = self.student_channels[level], self.teacher_channels[level]
            same_grid = s.shape[0] == t.shape[0] and s.shape[2:] == t.shape[2:]
            if s.ndim != 4 or t.ndim != 4 or s.shape[1] != cs or t.shape[1] != ct or not same_grid:
                raise ValueError(
                    f"level {level}: expected student (N, {cs}, H, W) and teacher (N, {ct}, H, W) with the same "
                    f"N, H, W; got student {tuple(s.shape)}, teacher {tuple(t.shape)}"
                )
            if accumulate and level in self._fit_levels:
                self._accumulate(level, s, t)
            with torch.autocast(device_type=s.device.type, enabled=False):
                a = self.align[level](_scale_grad(s.float(), share))
            if self.distilled[level]:
                score = None if teacher_scores is None else teacher_scores[level]
                terms.append(self.losses[level](a, t, score))
            with torch.no_grad():
                discrepancy.append((t.detach().float() - a.detach()).pow(2).mean())
        raw = torch.stack(terms).sum()
        weight = self.weighting(raw, epoch)
        return KDOutput(loss=self.loss_weight * weight * raw, raw=raw.detach(), weight=weight, discrepancy=discrepancy)

    @torch.no_grad()
    def _accumulate(self, level: int, student: Tensor, teacher: Tensor) -> None:
        s, t = _locations(student), _locations(teacher)
        s1 = torch.cat([s, s.new_ones(s.shape[0], 1)], 1)
        getattr(self, f"fit_gram{level}").add_(s1.T @ s1)
        getattr(self, f"fit_cross{level}").add_(s1.T @ t)
        getattr(self, f"fit_tt{level}").add_(t.pow(2).sum())

    @torch.no_grad()
    def fit_align(self) -> list[tuple[float, float]]:
        """Set each 1x1 connector to the ridge least-squares map from the accumulated student to teacher maps.

        Solves ``(G + r I) W = C`` per level, with ``G`` the Gram matrix of the student features with a
        constant column (the bias, not penalised), ``C`` their products with the teacher features and ``r`` =
        ``ridge`` times the mean diagonal of ``G``'s feature part; in float64, the sums across DDP ranks.
        Marks the criterion fitted (a buffer, so a resumed run does not fit again).

        Returns:
            Per fitted level, the mean squared discrepancy ``(T - A)^2`` over the accumulated locations
            before and after the fit.
        """
        from admd_deploy.kd.weighting import mean_across_ranks

        report: list[tuple[float, float]] = []
        for i in self._fit_levels:
            gram, cross, tt = (mean_across_ranks(getattr(self, f"fit_{k}{i}")) for k in ("gram", "cross", "tt"))
            n = float(gram[-1, -1])
            if n <= 0:
                LOGGER.warning("align_init lstsq: level %d saw no training step in the warm-up; its connector "
                               "keeps its trained weights", i)
                continue
            conv = self.align[i]
            cs, ct = self.student_channels[i], self.teacher_channels[i]
            w_old = torch.cat([conv.weight.reshape(ct, cs).T, conv.bias.reshape(1, ct)]).double()
            penalty = torch.eye(cs + 1, dtype=torch.float64, device=gram.device)
            penalty[-1, -1] = 0.0
            scale = self.ridge * float(torch.diagonal(gram)[:cs].mean().clamp_min(1e-12))
            w = torch.linalg.solve(gram + scale * penalty, cross)

            def mse(m: Tensor) -> float:  # mean over locations and channels of (t - [s, 1] m)^2
                return float((tt - 2 * (m * cross).sum() + (m * (gram @ m)).sum()) / (n * ct))

            report.append((mse(w_old), mse(w)))
            conv.weight.copy_(w[:cs].T.reshape(ct, cs, 1, 1).to(conv.weight.dtype))
            conv.bias.copy_(w[cs].to(conv.bias.dtype))
        self.align_fitted.fill_(True)
        self._fit_pending = False
        LOGGER.info("align connectors fitted by least squares: mean (T - A)^2 per level %s",
                    ", ".join(f"{a:.4g} -> {b:.4g}" for a, b in report))
        return report

    @torch.no_grad()
    def teaching_maps(self, student_feats: Sequence[Tensor], teacher_feats: Sequence[Tensor]) -> list[Tensor]:
        """Per level, where the loss puts its weight, ``(N, H, W)`` float32, mean 1 per image.

        For ADMD this is its mask ``M`` (from the teacher-student discrepancy of the aligned maps). The
        peers have no mask: for them it is the discrepancy ``mean_c (T - A)^2`` normalised to mean 1,
        what an ADMD mask would be at this point. Used for the report's "where the student is taught"
        pictures; nothing here trains.
        """
        maps = []
        for level, (s, t) in enumerate(zip(student_feats, teacher_feats)):
            a, tt = self.align[level](s.float()), t.float()
            loss = self.losses[level]
            if hasattr(loss, "mask_from") and hasattr(loss, "discrepancy_map"):
                maps.append(loss.mask_from(loss.discrepancy_map(a, tt)))
            else:
                d = (tt - a).pow(2).mean(1)
                maps.append(d / (d.mean((1, 2), keepdim=True) + 1e-12))
        return maps

    def extra_repr(self) -> str:
        levels = "" if all(self.distilled) else f", distilled={self.distilled}"
        return f"method={self.method!r}, loss_weight={self.loss_weight}{levels}"
