"""Shared fixtures: an offline Ultralytics in a private config dir, tiny synthetic datasets."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Before anything imports Ultralytics: a private config dir (fonts, settings) and offline mode.
_HOME = Path(tempfile.mkdtemp(prefix="admd-tests-home-"))
os.environ["ADMD_DEPLOY_HOME"] = str(_HOME)
os.environ.setdefault("YOLO_CONFIG_DIR", str(_HOME))
os.environ.setdefault("YOLO_OFFLINE", "1")

IMGSZ = 64


@pytest.fixture(scope="session")
def yolo_home() -> Path:
    return _HOME


def _dataset(tmp_path_factory: pytest.TempPathFactory, task: str) -> Path:
    from admd_deploy.data import SynthConfig, generate_synthetic

    out = tmp_path_factory.mktemp(f"synth-{task}")
    return generate_synthetic(out, SynthConfig(task=task, n_train=16, n_val=8, imgsz=IMGSZ * 2, seed=0, max_objects=4))


@pytest.fixture(scope="session")
def detect_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of a tiny horizontal-box dataset."""
    return _dataset(tmp_path_factory, "detect")


@pytest.fixture(scope="session")
def obb_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """data.yaml of a tiny oriented-box dataset."""
    return _dataset(tmp_path_factory, "obb")


@pytest.fixture()
def train_args(tmp_path: Path) -> dict:
    """Ultralytics arguments for a seconds-long CPU run (nbs = batch so every batch is a step)."""
    return dict(
        epochs=2, imgsz=IMGSZ, batch=8, nbs=8, device="cpu", workers=0, plots=False,
        project=str(tmp_path / "runs"), exist_ok=True, seed=0, mosaic=0.0, close_mosaic=0,
    )


def write_stand_in_checkpoint(path: Path, task: str = "obb", imgsz: int = IMGSZ) -> Path:
    """A small real torch checkpoint shaped like Ultralytics' (a model with its task, train_args): not trained."""
    import torch

    model = torch.nn.Identity()
    model.task = task
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model, "train_args": {"task": task, "imgsz": imgsz}}, path)
    return path


@pytest.fixture()
def stand_in_checkpoint():
    """``stand_in_checkpoint(path, task)`` writes a checkpoint that the load-time checks accept."""
    return write_stand_in_checkpoint


@pytest.fixture(scope="session")
def recipe_reference():
    """``docs/recipe_reference.py`` (the generator of docs/recipe.md) loaded as a module."""
    import importlib.util
    import sys

    path = Path(__file__).resolve().parents[1] / "docs" / "recipe_reference.py"
    spec = importlib.util.spec_from_file_location("recipe_reference", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("recipe_reference", module)
    spec.loader.exec_module(module)
    return module


def load_script(relative: str):
    """A script of this repository that is not in the package (``benchmarks/x.py``, ``docs/x.py``), loaded as a module."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def benchmark_script():
    """``benchmark_script("fit_gap")`` loads ``benchmarks/fit_gap.py`` as a module."""
    return lambda name: load_script(f"benchmarks/{name}.py")
