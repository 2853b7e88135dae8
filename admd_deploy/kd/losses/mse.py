"""FitNet-style feature imitation: the plain mean squared error."""

from __future__ import annotations

from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, register_loss


@register_loss("mse")
class MSELoss(FeatureLoss):
    """Mean of ``(T - A)^2`` over ``(N, C, H, W)``.

    Reference: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

    Args:
        channels: Teacher channels of the level.
    """

    default_weight = 1.0

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term of the aligned student ``a`` and the detached teacher ``t``, both float32 ``(N, C, H, W)``."""
        return (t - a).pow(2).mean()
