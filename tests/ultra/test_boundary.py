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


def test_the_old_import_paths_are_thin_re_exports_of_the_adapter():
    import admd_deploy.kd.yolo as old_kd_yolo
    import admd_deploy.yolo_env as old_env
    from admd_deploy.ultra import env, model, trainer

    assert old_env.prepare is env.prepare and old_env.home is env.home and old_env.cpu_threads is env.cpu_threads
    assert old_kd_yolo.trainer_for_task is trainer.trainer_for_task and old_kd_yolo.KDModel is model.KDModel
