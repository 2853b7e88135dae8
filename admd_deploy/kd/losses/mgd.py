"""Masked generative distillation: rebuild the teacher map from a randomly masked student map."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from admd_deploy.kd.registry import FeatureLoss, real_number, register_loss


@register_loss("mgd")
class MGDLoss(FeatureLoss):
    """Zero a random share of the student's locations; a generator must rebuild the teacher.

    With a random mask ``K`` of shape ``(N, 1, H, W)`` (a location is zeroed with probability
    ``mask_ratio``) and the generator ``G`` (conv3x3-ReLU-conv3x3, ``C -> C``), the loss is
    ``sum((G(A * K) - T)^2) / N`` over ``(N, C, H, W)``. ``G`` is a submodule: it trains when
    this module's parameters are in the optimiser.

    Reference: Yang et al., "Masked Generative Distillation", ECCV 2022.

    Args:
        channels: Teacher channels of the level.
        mask_ratio: Share of student locations zeroed, in [0, 1].
    """

    default_weight = 2e-5

    def __init__(self, channels: int, mask_ratio: float = 0.65) -> None:
        super().__init__(channels)
        self.mask_ratio = real_number("mgd", "mask_ratio", mask_ratio)
        if not 0.0 <= self.mask_ratio <= 1.0:
            raise ValueError(f"mgd: mask_ratio must be in [0, 1] (share of masked locations, e.g. 0.65); got {mask_ratio!r}")
        c = self.channels
        self.generator = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(inplace=True), nn.Conv2d(c, c, 3, padding=1)
        )

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term of the aligned student ``a`` and the detached teacher ``t``, both float32 ``(N, C, H, W)``."""
        n, _, h, w = a.shape
        keep = torch.rand((n, 1, h, w), device=a.device) >= self.mask_ratio
        rebuilt = self.generator(a * keep.to(a.dtype))
        return (rebuilt - t).pow(2).sum() / n

    def extra_repr(self) -> str:
        return f"channels={self.channels}, mask_ratio={self.mask_ratio}"
