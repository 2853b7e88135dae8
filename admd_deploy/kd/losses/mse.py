"""FitNet-style feature imitation: the plain mean squared error."""

from __future__ import annotations

from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, fp32, register_loss


@register_loss("mse")
class MSELoss(FeatureLoss):
    """Mean of ``(T - A)^2`` over ``(N, C, H, W)``.

    Reference: Romero et al., "FitNets: Hints for Thin Deep Nets", ICLR 2015.

    Args:
        channels: Teacher channels of the level.
    """

    default_weight = 1.0

    def forward(self, student: Tensor, teacher: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """Return the raw loss.

        Args:
            student: Aligned student map ``(N, C, H, W)``.
            teacher: Teacher map ``(N, C, H, W)`` (detached here).
            teacher_score: Unused.

        Returns:
            The 0-dim float32 loss.
        """
        with fp32(student):
            a, t = self.prepare(student, teacher)
            return (t - a).pow(2).mean()
