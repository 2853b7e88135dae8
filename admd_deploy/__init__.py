"""admd-deploy: distil a large Ultralytics YOLO teacher into a nano student with ADMD, then deploy it."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["__version__", "distill"]


def __getattr__(name: str):
    # Lazy: `import admd_deploy` must not import torch/ultralytics (fast CLI --help, clean subprocesses).
    if name == "distill":
        from admd_deploy.api import distill

        return distill
    raise AttributeError(f"module 'admd_deploy' has no attribute {name!r}")
