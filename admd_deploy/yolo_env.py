"""Moved to :mod:`admd_deploy.ultra.env`; these names stay for old imports."""

from __future__ import annotations

from admd_deploy.ultra.env import cpu_threads, home, prepare

__all__ = ["cpu_threads", "home", "prepare"]
