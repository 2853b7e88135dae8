"""Pearson-correlation distillation: MSE between channel-standardised maps."""

from __future__ import annotations

import torch
from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, real_number, register_loss


def standardise(x: Tensor, eps: float) -> Tensor:
    """Standardise each channel of ``(N, C, H, W)`` over batch and space (dims 0, 2, 3)."""
    var, mean = torch.var_mean(x, dim=(0, 2, 3), keepdim=True, correction=0)
    return (x - mean) / (var + eps).sqrt()


@register_loss("pkd")
class PKDLoss(FeatureLoss):
    """``mean((norm(A) - norm(T))^2) / 2`` with each channel standardised over ``(N, H, W)``.

    Maps are ``(N, C, H, W)``. ``norm(x) = (x - mean) / sqrt(var + eps)`` with the population
    variance, so the loss equals ``1 - r`` (r the Pearson correlation per channel, averaged over
    channels) up to ``eps``. Scale-invariant: suits large teacher/student magnitude gaps.

    Reference: Cao et al., "PKD: General Distillation Framework for Object Detectors via Pearson
    Correlation Coefficient", NeurIPS 2022.

    Args:
        channels: Teacher channels of the level.
        eps: Added to the variance before the square root, > 0.
    """

    default_weight = 6.0

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__(channels)
        self.eps = real_number("pkd", "eps", eps)
        if self.eps <= 0:
            raise ValueError(f"pkd: eps must be > 0 (numerical guard, e.g. 1e-6); got {eps!r}")

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term of the aligned student ``a`` and the detached teacher ``t``, both float32 ``(N, C, H, W)``."""
        return (standardise(a, self.eps) - standardise(t, self.eps)).pow(2).mean() / 2

    def extra_repr(self) -> str:
        return f"channels={self.channels}, eps={self.eps}"
