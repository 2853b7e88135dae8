"""The one layer that touches Ultralytics: the distillation wrapper model and the trainers."""

from __future__ import annotations

from admd_deploy import yolo_env

yolo_env.prepare()  # before the first `import ultralytics` below

from admd_deploy.kd.yolo.model import KDModel, feature_levels, load_teacher  # noqa: E402
from admd_deploy.kd.yolo.trainer import KDDetectionTrainer, KDOBBTrainer, trainer_for_task  # noqa: E402

__all__ = ["KDDetectionTrainer", "KDModel", "KDOBBTrainer", "feature_levels", "load_teacher", "trainer_for_task"]
