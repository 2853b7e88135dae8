"""The distillation library sits at the bottom: it never reaches up into the adapter, the pipeline or the CLI."""

from __future__ import annotations

import re
from pathlib import Path

KD = Path(__file__).resolve().parents[2] / "admd_deploy" / "kd"
IMPORT = re.compile(r"^\s*(?:from|import)\s+(admd_deploy(?:\.\w+)*)", re.MULTILINE)
ALLOWED = ("admd_deploy.kd", "admd_deploy.errors")


def test_the_kd_library_imports_only_itself_and_the_error_types():
    upward = {
        f"{path.relative_to(KD.parent)}: {module}"
        for path in KD.rglob("*.py")
        for module in IMPORT.findall(path.read_text())
        if not module.startswith(ALLOWED)
    }
    assert not upward, f"kd/ must not import these (move the caller up a layer): {sorted(upward)}"
