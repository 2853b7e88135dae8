"""Benchmarks: distillation methods compared (``admd-deploy bench kd``), the cost of a distilled step
(``bench step-cost``) and the edge runtime's speed and memory (``bench edge``)."""
