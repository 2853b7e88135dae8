from __future__ import annotations

import os
import subprocess
import sys


def run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ADMD_DEPLOY_", "OMP_NUM"))}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**base, **env}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip().splitlines()[-1]


def test_prepare_makes_ultralytics_offline_with_local_fonts_in_our_own_config_dir(tmp_path):
    out = run(
        "from admd_deploy.ultra import env as yolo_env; d = yolo_env.prepare()\n"
        "import ultralytics.utils as u, os\n"
        "print(u.ONLINE, u.USER_CONFIG_DIR == d, (d / 'Arial.ttf').stat().st_size > 10000,"
        " (d / 'Arial.Unicode.ttf').exists(), os.environ['OMP_NUM_THREADS'] == str(os.cpu_count()))",
        ADMD_DEPLOY_HOME=str(tmp_path),
    )
    assert out == "False True True True True"


def test_prepare_respects_what_the_user_already_set(tmp_path):
    out = run(
        "from admd_deploy.ultra import env as yolo_env; yolo_env.prepare(); import os\n"
        "print(os.environ['YOLO_CONFIG_DIR'], os.environ['OMP_NUM_THREADS'])",
        ADMD_DEPLOY_HOME=str(tmp_path / "ours"), YOLO_CONFIG_DIR=str(tmp_path / "theirs"), OMP_NUM_THREADS="1",
    )
    assert out == f"{tmp_path / 'theirs'} 1"


def test_importing_the_package_loads_neither_torch_nor_ultralytics():
    out = run("import sys, admd_deploy, admd_deploy.cli; print('torch' in sys.modules, 'ultralytics' in sys.modules)")
    assert out == "False False"
