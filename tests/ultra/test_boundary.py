"""The adapter is the only code of admd_deploy that imports Ultralytics, and importing it is cheap."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "admd_deploy"
IMPORT = re.compile(r"^\s*(?:import ultralytics|from ultralytics[\s.])", re.MULTILINE)


def test_no_module_outside_the_adapter_imports_ultralytics():
    offenders = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                       if p.parent.name != "ultra" and IMPORT.search(p.read_text()))
    assert offenders == []


def test_the_adapter_modules_are_the_ones_that_do():
    importers = {p.name for p in (PACKAGE / "ultra").glob("*.py") if IMPORT.search(p.read_text())}
    assert {"model.py", "trainer.py", "metrics.py", "data.py", "export.py", "validate.py", "checkpoints.py"} <= importers


def test_importing_the_adapter_package_and_its_environment_loads_neither_torch_nor_ultralytics():
    code = ("import sys, admd_deploy.ultra, admd_deploy.ultra.env, admd_deploy.ultra.version, "
            "admd_deploy.ultra.contracts, admd_deploy.failure; print('torch' in sys.modules, 'ultralytics' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_the_pre_adapter_module_paths_are_gone():
    assert not (PACKAGE / "yolo_env.py").exists() and not (PACKAGE / "kd" / "yolo").exists()
