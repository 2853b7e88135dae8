"""Load Ultralytics checkpoints and tell a model's task (``load_checkpoint``, ``guess_model_task``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from admd_deploy.ultra import env


def load_checkpoint(weights: str | Path) -> tuple[Any, dict[str, Any]]:
    """Load an Ultralytics ``.pt`` as Ultralytics does (EMA if present, float32, eval mode).

    Args:
        weights: A local checkpoint file.

    Returns:
        The model (an ``nn.Module``) and the checkpoint dict it came from.
    """
    env.prepare()
    from ultralytics.nn.tasks import load_checkpoint as _load

    return _load(weights)


def guess_task(model: Any) -> str:
    """The task (``detect``, ``obb``, ...) of a model, a model YAML dict or a model YAML path, from its head."""
    env.prepare()
    from ultralytics.nn.tasks import guess_model_task

    return str(guess_model_task(model))


def model_yaml(value: str | Path) -> dict[str, Any]:
    """Read a model YAML: a local file or a name Ultralytics ships (e.g. ``yolo11n-obb.yaml``).

    Raises:
        FileNotFoundError: Neither a local file nor a model Ultralytics ships.
        yaml.YAMLError: The file is not valid YAML.
    """
    env.prepare()
    from ultralytics.nn.tasks import yaml_model_load

    return yaml_model_load(value)
