"""Ultralytics' built-in distillation loss: squared error weighted by the teacher's confidence."""

from __future__ import annotations

from torch import Tensor

from admd_deploy.kd.registry import FeatureLoss, register_loss


@register_loss("score_l2")
class ScoreL2Loss(FeatureLoss):
    """Score-weighted L2: ``sum((A - T)^2 * s) / (sum(s) * C + 1e-9)``.

    ``s`` is the teacher's max class probability per location, ``(N, 1, H, W)``. The maths of
    ``ultralytics.nn.distill_model.DistillationModel.loss_sl2`` (Ultralytics 8.4); its default
    weight is Ultralytics' ``dis`` default.

    Reference: Ultralytics 8.4 ``DistillationModel`` (``distill_model=``, ``dis=``).

    Args:
        channels: Teacher channels of the level.
    """

    default_weight = 6.0
    needs_score = True

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """The raw term; ``teacher_score`` is the teacher's max class probability ``(N, 1, H, W)`` (or ``(N, 1, H*W)``).

        Raises:
            ValueError: ``teacher_score`` is missing or its shape does not match the maps.
        """
        if teacher_score is None:
            raise ValueError(
                "score_l2 weights each location by the teacher's class score: pass teacher_score (N, 1, H, W)"
            )
        n, c, h, w = a.shape
        if teacher_score.shape not in {(n, 1, h, w), (n, 1, h * w)}:
            raise ValueError(
                f"score_l2: teacher_score must be (N, 1, H, W) = {(n, 1, h, w)} for maps {tuple(a.shape)}; "
                f"got {tuple(teacher_score.shape)}"
            )
        score = teacher_score.detach().float().reshape(n, 1, h, w)
        return ((a - t).pow(2) * score).sum() / (score.sum() * c + 1e-9)
