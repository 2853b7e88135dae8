"""Channel-wise distillation: match each channel's spatial distribution."""

from __future__ import annotations

from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, real_number, register_loss


@register_loss("cwd")
class CWDLoss(FeatureLoss):
    """Channel-wise KL divergence between spatial softmaxes.

    Each channel of ``(N, C, H, W)`` becomes a distribution over its ``H*W`` locations,
    ``softmax(x / tau)``; the loss is ``tau^2 / (N*C) * sum KL(teacher || student)``.

    Reference: Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction", ICCV 2021.

    Args:
        channels: Teacher channels of the level.
        tau: Softmax temperature, > 0.
    """

    default_weight = 5.0

    def __init__(self, channels: int, tau: float = 1.0) -> None:
        super().__init__(channels)
        self.tau = real_number("cwd", "tau", tau)
        if self.tau <= 0:
            raise ValueError(f"cwd: tau must be > 0 (softmax temperature, e.g. 1.0); got {tau!r}")

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term of the aligned student ``a`` and the detached teacher ``t``, both float32 ``(N, C, H, W)``."""
        n, c = t.shape[:2]
        log_p_t = (t.flatten(2) / self.tau).log_softmax(-1)
        log_p_s = (a.flatten(2) / self.tau).log_softmax(-1)
        kl = (log_p_t.exp() * (log_p_t - log_p_s)).sum()
        return kl * self.tau**2 / (n * c)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, tau={self.tau}"
