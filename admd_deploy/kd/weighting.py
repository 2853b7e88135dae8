"""The weight-increasing module of ADMD (step 5 of docs/ADMD.md).

The discrepancy-masked KD loss vanishes as the student catches up. :class:`KDWeight` tracks an
EMA of the KD loss, freezes a reference after warm-up and raises the KD weight by
``reference / EMA`` (bounded, never decreasing), so KD keeps contributing late in training.
"""

from __future__ import annotations

import logging

import torch
import torch.distributed as dist
from torch import Tensor, nn

from admd_deploy.kd.config import DistillConfig, check_knob
from admd_deploy.kd.registry import real_number

LOGGER = logging.getLogger(__name__)

_TINY = torch.finfo(torch.float32).tiny


def mean_across_ranks(value: Tensor) -> Tensor:
    """``value`` averaged over the DDP ranks (a copy), or ``value`` itself outside DDP."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / dist.get_world_size()


class KDWeight(nn.Module):
    """KD loss weight ``w_t`` that only ever increases, with its state in persistent buffers.

    Each training step (``self.training``) takes the detached KD loss, averaged across DDP ranks,
    and updates ``ema`` (``m_t = beta*m_{t-1} + (1-beta)*L``, ``m_1 = L``) and ``steps``. Then:

    - ``adaptive``: from global epoch ``warmup_epochs`` on, ``ref`` is frozen to the EMA (the
      first such step with a positive EMA) and ``w = max(w, clip(ref / m_t, 1, w_max))``;
    - ``constant``: ``w = 1``;
    - ``linear``: ``w = max(w, 1 + (w_max - 1) * clip(epoch / total_epochs, 0, 1))``.

    A non-finite loss is skipped (it does not poison the EMA). In eval mode nothing updates.
    The buffers ``ema``, ``ref``, ``weight`` (float32) and ``steps`` (int64) are in the
    ``state_dict``, so the schedule resumes from a checkpoint.

    Args:
        mode: ``adaptive``, ``constant`` or ``linear``.
        beta: EMA factor in [0, 1).
        warmup_epochs: Global epochs before ``ref`` freezes (``adaptive``), >= 0.
        w_max: Upper bound of the weight, >= 1.
        total_epochs: Length of the run in epochs, > 0; required by ``linear``.
    """

    ema: Tensor
    ref: Tensor
    weight: Tensor
    steps: Tensor

    def __init__(
        self,
        mode: str = "adaptive",
        beta: float = DistillConfig.beta,
        warmup_epochs: float = DistillConfig.warmup_epochs,
        w_max: float = DistillConfig.w_max,
        total_epochs: float | None = None,
    ) -> None:
        super().__init__()
        # The recipe's and the CLI's own checks (kd/config.py); ``mode`` is the knob ``weight``.
        self.mode = check_knob("weight", mode, "KDWeight: mode", required=True)
        self.beta = float(check_knob("beta", beta, "KDWeight: beta"))
        self.warmup_epochs = float(check_knob("warmup_epochs", warmup_epochs, "KDWeight: warmup_epochs"))
        self.w_max = float(check_knob("w_max", w_max, "KDWeight: w_max"))
        self.total_epochs = None if total_epochs is None else real_number("KDWeight", "total_epochs", total_epochs)
        if self.total_epochs is not None and self.total_epochs <= 0:
            raise ValueError(f"KDWeight: total_epochs must be > 0; got {total_epochs!r}")
        if mode == "linear" and self.total_epochs is None:
            raise ValueError("KDWeight: mode 'linear' ramps 1 -> w_max over the run: pass total_epochs > 0")
        self.register_buffer("ema", torch.zeros((), dtype=torch.float32))
        self.register_buffer("ref", torch.zeros((), dtype=torch.float32))
        self.register_buffer("weight", torch.ones((), dtype=torch.float32))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._logged_ref = False

    @torch.no_grad()
    def forward(self, kd_loss: Tensor, epoch: float) -> Tensor:
        """Update the state from one step's KD loss (training mode only) and return the weight.

        Args:
            kd_loss: The raw KD loss of this step (one element; detached here).
            epoch: The global fractional epoch, ``iteration / iterations_per_epoch``, never reset
                inside an epoch.

        Returns:
            The current weight, a detached 0-dim float32 tensor.
        """
        if kd_loss.numel() != 1:
            raise ValueError(f"KDWeight expects the scalar KD loss; got shape {tuple(kd_loss.shape)}")
        if self.training:
            loss = mean_across_ranks(kd_loss.detach().float().reshape(()).to(self.ema.device))
            self._update(loss, float(epoch))
        return self.weight.detach().clone()

    def _update(self, loss: Tensor, epoch: float) -> None:
        # Tensor ops only (torch.where): no host-device sync per step.
        finite = torch.isfinite(loss)
        smoothed = torch.where(self.steps == 0, loss, self.beta * self.ema + (1.0 - self.beta) * loss)
        self.ema.copy_(torch.where(finite, smoothed, self.ema))
        self.steps.add_(finite.to(torch.int64))
        if self.mode == "adaptive" and epoch >= self.warmup_epochs:
            self.ref.copy_(torch.where(self.ref > 0, self.ref, self.ema))
            ratio = (self.ref / self.ema.clamp_min(_TINY)).clamp(1.0, self.w_max)
            self.weight.copy_(torch.where(self.ref > 0, torch.maximum(self.weight, ratio), self.weight))
            if not self._logged_ref:
                self._logged_ref = True
                LOGGER.info("KD weight: reference loss frozen at %.6g (epoch %.2f)", self.ref.item(), epoch)
        elif self.mode == "linear" and self.total_epochs is not None:  # always set for linear (__init__)
            target = 1.0 + (self.w_max - 1.0) * min(max(epoch / self.total_epochs, 0.0), 1.0)
            self.weight.clamp_(min=target)

    def extra_repr(self) -> str:
        return (
            f"mode={self.mode!r}, beta={self.beta}, warmup_epochs={self.warmup_epochs}, "
            f"w_max={self.w_max}, total_epochs={self.total_epochs}"
        )
