"""The distillation settings a trainer needs, typed and validated, with a plain-dict form.

The dict form travels inside Ultralytics' ``trainer.args`` (key ``distill``), so it survives the
multi-GPU relaunch (the DDP child rebuilds the trainer from ``vars(trainer.args)``) and is
written into ``args.yaml`` and the training checkpoints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from admd_deploy.errors import UsageError

WEIGHT_MODES = ("adaptive", "constant", "linear")


@dataclass(frozen=True)
class DistillConfig:
    """How to distil.

    Attributes:
        method: A registered loss name (``admd``, ``mse``, ``score_l2``, ``cwd``, ``mgd``, ``pkd``)
            or ``none`` (the student trained alone, the baseline).
        teacher: Teacher checkpoint (``.pt``) or model YAML (plumbing tests only: an untrained
            teacher). Required unless ``method`` is ``none``.
        loss_weight: lambda in ``L = L_det + lambda * w_t * L_kd``; ``None`` takes the loss's default.
        params: Keyword parameters of the loss (e.g. ``{"mask": "softmax", "tau": 0.5}``).
        weight: KD weight schedule: ``adaptive`` (ADMD's weight-increasing module), ``constant``,
            ``linear``; ``None`` means ``adaptive`` for admd and ``constant`` for the peers.
        beta: EMA factor of the KD loss tracked by the weighting module.
        warmup_epochs: Epochs before the adaptive weight freezes its reference loss.
        w_max: Upper bound of the KD weight.
        align_warmup_epochs: Epochs at the start during which the KD loss trains only the align
            connectors (the student's maps are detached), so that a randomly initialised connector
            does not push a pretrained student's features around (FitNets' hint stage). 0 = off.
    """

    method: str = "admd"
    teacher: str | None = None
    loss_weight: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    weight: str | None = None
    beta: float = 0.99
    warmup_epochs: float = 1.0
    w_max: float = 10.0
    align_warmup_epochs: float = 1.0

    def __post_init__(self) -> None:
        from admd_deploy.kd.registry import available_methods

        methods = available_methods()
        if self.method not in methods:
            raise UsageError(f"distill.method must be one of {', '.join(methods)}; got {self.method!r}")
        if self.weight is not None and self.weight not in WEIGHT_MODES:
            raise UsageError(f"distill.weight must be one of {', '.join(WEIGHT_MODES)}; got {self.weight!r}")
        if not 0.0 <= self.beta < 1.0:
            raise UsageError(f"distill.beta must be in [0, 1); got {self.beta!r}")
        if self.warmup_epochs < 0:
            raise UsageError(f"distill.warmup_epochs must be >= 0; got {self.warmup_epochs!r}")
        if self.w_max < 1.0:
            raise UsageError(f"distill.w_max must be >= 1 (the weight only ever increases from 1); got {self.w_max!r}")
        if not self.align_warmup_epochs >= 0:
            raise UsageError(f"distill.align_warmup_epochs must be >= 0 (0 = off); got {self.align_warmup_epochs!r}")
        if self.loss_weight is not None and not self.loss_weight > 0:
            raise UsageError(f"distill.loss_weight must be > 0 (use method 'none' for no KD); got {self.loss_weight!r}")
        if not isinstance(self.params, dict):
            raise UsageError(f"distill.params must be a mapping of loss parameters; got {type(self.params).__name__}")
        if self.method == "none":
            if self.params:
                raise UsageError("distill.params is set but method 'none' has no loss; remove params or pick a method")
            return
        if self.teacher is None:
            raise UsageError(f"distill.teacher is required for method {self.method!r}: pass a teacher .pt (or a YAML)")
        if Path(self.teacher).suffix not in {".pt", ".yaml", ".yml"}:
            raise UsageError(f"distill.teacher must be a local .pt checkpoint or a model .yaml; got {self.teacher!r}")
        # Validate the loss parameters now (a wrong key fails at load, not after the teacher has loaded).
        from admd_deploy.kd.registry import build_loss

        try:
            build_loss(self.method, 8, **self.params)
        except (TypeError, ValueError) as err:  # the loss refused the user's parameters (it names which and why)
            raise UsageError(f"distill.params: {err}") from err

    @property
    def weight_mode(self) -> str:
        """The weight schedule in effect (resolving ``None``)."""
        return self.weight or ("adaptive" if self.method == "admd" else "constant")

    def weighting(self) -> dict[str, Any]:
        """Keyword arguments of :class:`admd_deploy.kd.weighting.KDWeight`."""
        return {"mode": self.weight_mode, "beta": self.beta, "warmup_epochs": self.warmup_epochs, "w_max": self.w_max}

    def to_dict(self) -> dict[str, Any]:
        """Plain-types form (YAML, checkpoints, the DDP relaunch)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "distill") -> DistillConfig:
        """Build from a mapping, rejecting unknown keys with the valid ones listed."""
        if isinstance(data, DistillConfig):
            return data
        if not isinstance(data, dict):
            raise UsageError(f"{where} must be a mapping; got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown key(s) {', '.join(f'{where}.{k}' for k in unknown)}; valid keys: {', '.join(sorted(known))}")
        return cls(**data)
