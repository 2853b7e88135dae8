"""Datasets for admd-deploy, in Ultralytics YOLO format: a seeded synthetic aerial generator, and
converters for DOTA v1.0/v1.5 (oriented boxes, split into patches) and DIOR / DIOR-R."""

from __future__ import annotations

from admd_deploy.data.dior import DIOR_CLASSES, convert_dior
from admd_deploy.data.dota import DOTA_CLASSES, convert_dota
from admd_deploy.data.synth import CLASS_NAMES, SynthConfig, generate_synthetic

__all__ = ["CLASS_NAMES", "DIOR_CLASSES", "DOTA_CLASSES", "SynthConfig", "convert_dior", "convert_dota",
           "generate_synthetic"]
