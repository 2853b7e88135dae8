"""Benchmarks that compare distillation methods (``admd-deploy bench kd``)."""
