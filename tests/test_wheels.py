"""Both packages install from wheels into a fresh venv with no checkout on the path, and the deploy bundle's
edge wheel installs on its own.

The wheels are built offline (``uv build --no-build-isolation`` with this venv's setuptools) from a copy of
the tracked sources; the fresh venv sees this venv's third-party packages through a path entry (not a site
dir, so the editable installs' ``.pth`` hooks pointing at the checkout are not run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # about half a minute: two builds, two venvs, a few CLI starts

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv")


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{cmd} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def fresh_venv(path: Path, cwd: Path) -> tuple[Path, dict[str, str]]:
    """A venv of this Python whose site-packages also reads this venv's third-party packages."""
    run([UV, "venv", "-q", "-p", sys.executable, str(path)], cwd)
    site = next(path.glob("lib/python*/site-packages"))
    (site / "zz_third_party.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(VIRTUAL_ENV=str(path), PATH=f"{path / 'bin'}:{env['PATH']}", UV_OFFLINE="1")
    return path / "bin", env


@pytest.mark.skipif(UV is None, reason="uv is not installed")
def test_the_wheels_install_and_run_without_a_checkout(tmp_path: Path) -> None:
    src, wheels, cwd = tmp_path / "src", tmp_path / "wheels", tmp_path / "elsewhere"
    cwd.mkdir()
    for rel in run(["git", "ls-files"], ROOT).splitlines():
        if (ROOT / rel).exists() or (ROOT / rel).is_symlink():
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, src / rel, follow_symlinks=False)
    for project in (".", "export"):
        run([UV, "build", "-q", "--wheel", "--no-build-isolation", "-p", sys.executable, "--out-dir", str(wheels),
             project], src)
    built = sorted(p.name for p in wheels.glob("*.whl"))
    assert built == ["admd_deploy-0.1.0-py3-none-any.whl", "admd_edge-0.1.0-py3-none-any.whl"]

    bin_dir, env = fresh_venv(tmp_path / "venv", cwd)
    run([UV, "pip", "install", "-q", "--no-deps", "-p", str(bin_dir / "python"), *map(str, wheels.glob("*.whl"))], cwd,
        env)
    where = run([str(bin_dir / "python"), "-c", "import admd_deploy, admd_edge; print(admd_deploy.__file__); "
                 "print(admd_edge.__file__)"], cwd, env)
    assert all(str(tmp_path / "venv") in line for line in where.splitlines()), where  # not the checkout
    assert "valid" in run([str(bin_dir / "admd-deploy"), "recipe", "check", "quickstart"], cwd, env)
    assert "predict" in run([str(bin_dir / "admd-edge"), "--help"], cwd, env)
    # the supported Ultralytics range comes from the wheel's own metadata (no pyproject.toml beside it)
    declared = run([str(bin_dir / "python"), "-c", "from admd_deploy.ultra import version; "
                    "print(version.supported_range())"], cwd, env).strip()
    assert declared.startswith(">=") and "<" in declared, declared

    # the bundle's edge wheel, rebuilt from the installed distribution, installs alone as its README says
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    wheel = run([str(bin_dir / "python"), "-c", "from pathlib import Path; from admd_deploy.pipeline.edge_wheel "
                 f"import build_edge_wheel; print(build_edge_wheel(Path({str(bundle)!r})))"], cwd, env).strip()
    device_bin, device_env = fresh_venv(tmp_path / "device", cwd)
    run([UV, "pip", "install", "-q", "--no-deps", "-p", str(device_bin / "python"), wheel], bundle, device_env)
    assert "build-engine" in run([str(device_bin / "admd-edge"), "--help"], bundle, device_env)
    listed = run([str(device_bin / "python"), "-c", "import admd_edge.model, admd_edge, importlib.util; "
                  "print(admd_edge.__file__); print(importlib.util.find_spec('admd_deploy'))"], bundle, device_env)
    edge_file, deploy_spec = listed.splitlines()
    assert edge_file.startswith(str(tmp_path / "device")) and deploy_spec == "None"
