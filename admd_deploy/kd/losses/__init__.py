"""Built-in distillation losses, one per module; importing this package registers them all."""

from __future__ import annotations

from admd_deploy.kd.losses.admd import ADMDLoss
from admd_deploy.kd.losses.cwd import CWDLoss
from admd_deploy.kd.losses.mgd import MGDLoss
from admd_deploy.kd.losses.mse import MSELoss
from admd_deploy.kd.losses.pkd import PKDLoss
from admd_deploy.kd.losses.score_l2 import ScoreL2Loss

__all__ = ["ADMDLoss", "CWDLoss", "MGDLoss", "MSELoss", "PKDLoss", "ScoreL2Loss"]
