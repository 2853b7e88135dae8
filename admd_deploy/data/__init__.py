"""Datasets for admd-deploy: a seeded synthetic aerial-imagery generator in Ultralytics YOLO format."""

from __future__ import annotations

from admd_deploy.data.synth import CLASS_NAMES, SynthConfig, generate_synthetic

__all__ = ["CLASS_NAMES", "SynthConfig", "generate_synthetic"]
