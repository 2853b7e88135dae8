"""Distillation on plain tensors: the loss registry, the per-level losses, align, weighting, criterion.

Nothing here imports Ultralytics; the trainer integration builds on these parts.
"""

from __future__ import annotations

from admd_deploy.kd import losses as losses  # registers the built-in losses
from admd_deploy.kd.align import build_align
from admd_deploy.kd.criterion import KDCriterion, KDOutput
from admd_deploy.kd.registry import LOSSES, available_methods, build_loss, register_loss
from admd_deploy.kd.weighting import KDWeight

__all__ = [
    "LOSSES",
    "KDCriterion",
    "KDOutput",
    "KDWeight",
    "available_methods",
    "build_align",
    "build_loss",
    "register_loss",
]
