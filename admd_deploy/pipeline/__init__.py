"""The distill-and-deploy pipeline: data -> teacher -> baseline -> student -> evaluate -> export -> verify -> report."""

from __future__ import annotations

from admd_deploy.pipeline.runner import PipelineResult, run_pipeline

__all__ = ["PipelineResult", "run_pipeline"]
