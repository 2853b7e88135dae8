"""Where a benchmark ran: recorded with every ``bench kd`` run, so a pooled table can say which CPU gave which pair."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any


def machine_facts() -> dict[str, Any]:
    """What ``bench kd`` records with every run, so pooled folders can say where each ran."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    return {"cpu": cpu or platform.processor() or platform.machine(), "cores": os.cpu_count(),
            "torch": torch.__version__}
