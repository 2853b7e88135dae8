"""Adaptive Discrepancy Masked Distillation (our reconstruction; see docs/ADMD.md)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, real_number, register_loss

DISCREPANCIES = ("mse", "l1", "cosine")
MASKS = ("linear", "softmax", "uniform")
NORMALIZE = ("none", "channel")


def standardize(x: Tensor, eps: float = 1e-6) -> Tensor:
    """Each channel of ``(N, C, H, W)`` standardised over batch and space (zero mean, unit variance)."""
    mean = x.mean((0, 2, 3), keepdim=True)
    var = x.var((0, 2, 3), keepdim=True, unbiased=False)
    return (x - mean) / (var + eps).sqrt()


@register_loss("admd")
class ADMDLoss(FeatureLoss):
    """Squared error weighted per location by the teacher-student discrepancy.

    On maps ``(N, C, H, W)``, without gradient: ``D[n,h,w]`` is ``mean_c (T - A)^2`` (``mse``),
    ``mean_c |T - A|`` (``l1``) or ``1 - cos_c(T, A)`` (``cosine``); the mask ``M[n,h,w]`` is
    ``D / (mean_hw D + eps)`` (``linear``, mean 1 per image),
    ``H*W * softmax_hw((D / (mean_hw D + eps)) / tau)`` (``softmax``) or 1 (``uniform``, the
    ablation). Loss: ``mean_{n,c,h,w} M * (T - A)^2``. With ``normalize="channel"`` both maps are
    first standardised per channel over batch and space (as PKD does), so the discrepancy, the mask
    and the loss compare feature patterns, not magnitudes, and the term's size no longer depends on
    the teacher's activation scale. The loss vanishes as the student closes
    the gap; the weight-increasing module (:class:`~admd_deploy.kd.weighting.KDWeight`)
    compensates.

    Reference: Li, Cheng, Han, "Adaptive Discrepancy Masked Distillation", ISPRS Journal of
    Photogrammetry and Remote Sensing, 2025 (DOI 10.1016/j.isprsjprs.2025.02.006); the formula
    is reconstructed from the abstract.

    Args:
        channels: Teacher channels of the level.
        discrepancy: ``mse``, ``l1`` or ``cosine``.
        mask: ``linear``, ``softmax`` or ``uniform``.
        tau: Softmax temperature (``mask="softmax"`` only), > 0.
        eps: Guard added to the per-image mean discrepancy, > 0.
        normalize: ``none`` (raw features) or ``channel`` (standardised per channel first).
    """

    # Lambda. 0.25, not 1: at 1 the KD gradient on the neck is as large as the detection gradient and, since
    # AdamW's step ignores the loss scale, pulls the features away from what the head expects (a pretrained
    # student fell from 58 to 4 mAP50-95 in its first KD epoch). 0.25 won on the tuning split (+0.73 over 1 on
    # every seed) and from scratch at 50 epochs (BENCHMARKS.md, "KD from scratch, 50 epochs"); docs/ADMD.md.
    default_weight = 0.25

    def __init__(
        self, channels: int, discrepancy: str = "mse", mask: str = "linear", tau: float = 1.0, eps: float = 1e-6,
        normalize: str = "none",
    ) -> None:
        super().__init__(channels)
        if discrepancy not in DISCREPANCIES:
            raise ValueError(f"admd: discrepancy must be one of {', '.join(DISCREPANCIES)}; got {discrepancy!r}")
        if mask not in MASKS:
            raise ValueError(f"admd: mask must be one of {', '.join(MASKS)}; got {mask!r}")
        if normalize not in NORMALIZE:
            raise ValueError(f"admd: normalize must be one of {', '.join(NORMALIZE)}; got {normalize!r}")
        self.discrepancy = discrepancy
        self.mask = mask
        self.normalize = normalize
        self.tau = real_number("admd", "tau", tau)
        self.eps = real_number("admd", "eps", eps)
        if self.tau <= 0:
            raise ValueError(f"admd: tau must be > 0 (softmax temperature, e.g. 1.0); got {tau!r}")
        if self.eps <= 0:
            raise ValueError(f"admd: eps must be > 0 (numerical guard, e.g. 1e-6); got {eps!r}")

    def prepared(self, student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
        """The maps the discrepancy and the loss compare: as given, or standardised per channel."""
        if self.normalize == "channel":
            return standardize(student), standardize(teacher)
        return student, teacher

    @torch.no_grad()
    def discrepancy_map(self, student: Tensor, teacher: Tensor, prepared: bool = False) -> Tensor:
        """The per-location discrepancy ``D`` of ``(N, C, H, W)`` maps, ``(N, H, W)``, float32, no gradient.

        ``prepared``: the maps are already normalised (:meth:`prepared`)."""
        a, t = student.detach().float(), teacher.detach().float()
        if not prepared:
            a, t = self.prepared(a, t)
        if self.discrepancy == "mse":
            return (t - a).pow(2).mean(1)
        if self.discrepancy == "l1":
            return (t - a).abs().mean(1)
        return 1.0 - F.cosine_similarity(t, a, dim=1)

    @torch.no_grad()
    def mask_from(self, d: Tensor) -> Tensor:
        """The mask ``M`` ``(N, H, W)`` from a discrepancy map ``D`` ``(N, H, W)``."""
        if self.mask == "uniform":
            return torch.ones_like(d)
        n, h, w = d.shape
        rel = d / (d.mean((1, 2), keepdim=True) + self.eps)
        if self.mask == "linear":
            return rel
        return (h * w) * (rel.reshape(n, -1) / self.tau).softmax(-1).reshape(n, h, w)

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term of the aligned student ``a`` and the detached teacher ``t``, both float32 ``(N, C, H, W)``."""
        # mean_{n,c,h,w} M[n,h,w] (T - A)^2 == mean_{n,h,w} M * mean_c (T - A)^2: the channel mean is
        # taken first, so the mask multiplies an (N, H, W) map and, for the mse discrepancy, D is that
        # same map detached (one subtraction and one square per element, forward and backward).
        a, t = self.prepared(a, t)
        sq = (t - a).pow(2).mean(1)
        d = sq.detach() if self.discrepancy == "mse" else self.discrepancy_map(a, t, prepared=True)
        return (self.mask_from(d) * sq).mean()

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, discrepancy={self.discrepancy!r}, mask={self.mask!r}, "
            f"tau={self.tau}, eps={self.eps}, normalize={self.normalize!r}"
        )
