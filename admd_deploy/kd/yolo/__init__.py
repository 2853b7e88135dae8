"""Moved to :mod:`admd_deploy.ultra` (``ultra.model``, ``ultra.trainer``); these names stay for old imports."""

from __future__ import annotations

from admd_deploy.ultra.model import KDModel, feature_levels, load_teacher
from admd_deploy.ultra.trainer import KDDetectionTrainer, KDOBBTrainer, trainer_for_task

__all__ = ["KDDetectionTrainer", "KDModel", "KDOBBTrainer", "feature_levels", "load_teacher", "trainer_for_task"]
