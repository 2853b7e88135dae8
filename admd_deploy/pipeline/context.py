"""What every stage sees: the recipe, the run folder, the ledger and upstream outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from admd_deploy.pipeline.ledger import Ledger
from admd_deploy.recipe import Recipe


@dataclass
class Context:
    recipe: Recipe
    run_dir: Path
    ledger: Ledger
    resumable: bool = False  # the current stage's last attempt had the same inputs and did not finish

    def stage_dir(self, stage: str) -> Path:
        """``<run dir>/<stage>``, created (``""`` is the run folder itself)."""
        d = self.run_dir / stage
        d.mkdir(parents=True, exist_ok=True)
        return d

    def out(self, stage: str) -> dict[str, Any]:
        """Outputs of an upstream stage (from this run or a previous one)."""
        return self.ledger.outputs(stage)
