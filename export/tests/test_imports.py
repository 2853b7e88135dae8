"""The runtime never needs torch, ultralytics or tensorrt: import, --help and a prediction with them blocked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "torchvision", "tensorrt", "ultralytics"}:
                raise ImportError(f"{name} is blocked in this test")
            return None

    sys.meta_path.insert(0, Block())
    for mod in [m for m in sys.modules if m.split(".")[0] in {"torch", "torchvision", "tensorrt", "ultralytics"}]:
        del sys.modules[mod]
    """
)

MODULES = [
    "admd_edge",
    "admd_edge.bench",
    "admd_edge.cli",
    "admd_edge.cuda_memory",
    "admd_edge.draw",
    "admd_edge.engine",
    "admd_edge.errors",
    "admd_edge.manifest",
    "admd_edge.metadata",
    "admd_edge.model",
    "admd_edge.nms",
    "admd_edge.onnx_proto",
    "admd_edge.postprocess",
    "admd_edge.preprocess",
    "admd_edge.runners",
    "admd_edge.sources",
    "admd_edge.trt_build",
    "admd_edge.trt_runtime",
    "admd_edge._optional",
]


def run_blocked(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code)], capture_output=True, text=True, timeout=120
    )


def test_import_admd_edge_loads_neither_onnxruntime_nor_the_blocked_packages() -> None:
    result = run_blocked(
        """
        import sys, admd_edge
        heavy = [m for m in ("onnxruntime", "cv2", "torch", "tensorrt", "ultralytics") if m in sys.modules]
        print("HEAVY", heavy)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "HEAVY []" in result.stdout


def test_every_module_imports_with_torch_tensorrt_and_ultralytics_blocked() -> None:
    result = run_blocked(
        f"""
        import importlib
        for name in {MODULES!r}:
            importlib.import_module(name)
        import admd_edge
        for name in admd_edge.__all__:
            getattr(admd_edge, name)
        print("OK")
        """
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


@pytest.mark.parametrize("command", [[], ["predict"], ["build-engine"], ["bench"]])
def test_every_help_works_with_the_heavy_packages_blocked(command: list[str]) -> None:
    result = run_blocked(
        f"""
        import sys
        from admd_edge.cli import main
        try:
            main({command + ["--help"]!r})
        except SystemExit as exit:
            sys.exit(exit.code)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "usage: admd-edge" in result.stdout


def test_a_prediction_runs_with_the_heavy_packages_blocked(detect_onnx: Path) -> None:
    result = run_blocked(
        f"""
        import numpy as np
        from admd_edge import load_model
        from admd_edge.bench import synthetic_image
        detections = load_model({str(detect_onnx)!r}).predict(synthetic_image(300, 200))
        print("DETECTIONS", len(detections))
        """
    )
    assert result.returncode == 0, result.stderr
    assert "DETECTIONS" in result.stdout


def test_tensorrt_paths_fail_with_what_to_install_when_it_is_blocked(detect_onnx: Path) -> None:
    result = run_blocked(
        f"""
        from admd_edge.errors import MissingDependencyError
        from admd_edge.engine import engine_from_onnx
        from admd_edge.runners import runner_from_path
        import shutil, tempfile, pathlib
        plan = pathlib.Path(tempfile.mkdtemp()) / "m.plan"
        plan.write_bytes(b"x")
        for call in (lambda: engine_from_onnx({str(detect_onnx)!r}), lambda: runner_from_path(plan)):
            try:
                call()
            except MissingDependencyError as err:
                print("MISSING", err)
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("MISSING tensorrt is not importable") == 2
