"""Distillation on plain tensors: the loss registry, the per-level losses, align, weighting, criterion.

Nothing here imports Ultralytics; the trainer integration builds on these parts. The names below are
imported on first use, so that ``admd_deploy.kd.config`` (the knobs, read by the CLI's ``--help``)
does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LOSSES": "registry",
    "KDCriterion": "criterion",
    "KDOutput": "criterion",
    "KDWeight": "weighting",
    "available_methods": "registry",
    "build_align": "align",
    "build_loss": "registry",
    "register_loss": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name == "losses" or name in _EXPORTS:
        importlib.import_module("admd_deploy.kd.losses")  # registers the built-in losses
        module = importlib.import_module(f"admd_deploy.kd.{_EXPORTS.get(name, 'losses')}")
        return module if name == "losses" else getattr(module, name)
    raise AttributeError(f"module 'admd_deploy.kd' has no attribute {name!r}")
