"""Shared fixtures: air-gapped Ultralytics (tests only), tiny exported YOLO models, images, markers.

Ultralytics and torch are used here only as the reference the runtime must agree with; the package itself
never imports them.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_edge.preprocess import Preprocessor

_YOLO_HOME = Path(tempfile.mkdtemp(prefix="admd-edge-yolo-"))
atexit.register(shutil.rmtree, _YOLO_HOME, ignore_errors=True)
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_CONFIG_DIR"] = str(_YOLO_HOME)


def _install_font() -> None:
    """Ultralytics downloads Arial.ttf for plotting unless one is there: give it matplotlib's DejaVuSans."""
    try:
        import matplotlib
    except ImportError:
        return
    font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    target = _YOLO_HOME / "Ultralytics"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        shutil.copyfile(font, target / name)


_install_font()

IMGSZ = 64


def tensorrt_importable() -> bool:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_gpu_present() -> bool:
    try:
        from cuda.bindings import runtime as cudart

        err, count = cudart.cudaGetDeviceCount()
        return err == cudart.cudaError_t.cudaSuccess and count > 0
    except Exception:
        pass
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    no_trt = pytest.mark.skip(reason="tensorrt not importable")
    no_gpu = pytest.mark.skip(reason="no CUDA GPU")
    trt_ok, gpu_ok = None, None
    for item in items:
        if "trt" in item.keywords:
            trt_ok = tensorrt_importable() if trt_ok is None else trt_ok
            if not trt_ok:
                item.add_marker(no_trt)
                continue
        if "gpu" in item.keywords:
            gpu_ok = cuda_gpu_present() if gpu_ok is None else gpu_ok
            if not gpu_ok:
                item.add_marker(no_gpu)


def export_student(yaml: str, out: Path, imgsz: int = IMGSZ, simplify: bool = False, opset: int = 17) -> Path:
    """Export an untrained YAML-built YOLO to ONNX with non-degenerate scores.

    An untrained YOLO's features vanish in eval mode (default BN statistics), so every anchor gets the same
    score. One train-mode pass on noise with BN momentum 1 sets the BN statistics, and a scaled
    classification layer spreads the scores: distinct confidences, several classes and overlapping boxes
    for NMS to resolve.
    """
    import torch
    from ultralytics import YOLO

    torch.manual_seed(0)
    model = YOLO(yaml)
    net = model.model
    gen = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0  # running statistics := this batch's
    threads, cwd = torch.get_num_threads(), os.getcwd()
    torch.set_num_threads(1)  # a tiny pass; avoids OpenMP contention on a shared CPU
    os.chdir(out)  # Ultralytics writes the export next to the YAML name, i.e. into the working directory
    try:
        net.train()
        with torch.no_grad():
            net(torch.rand(8, 3, imgsz, imgsz, generator=gen))
            net.eval()
            _spread_class_logits(net, torch.from_numpy(Preprocessor(imgsz)(_photo())[0].copy()), gen)
        exported = Path(model.export(format="onnx", imgsz=imgsz, simplify=simplify, opset=opset))
    finally:
        torch.set_num_threads(threads)
        os.chdir(cwd)
    target = out / f"{Path(yaml).stem}-{imgsz}.onnx"
    shutil.move(out / exported, target)
    return target


def _spread_class_logits(net, probe, gen) -> None:
    """Rescale each final classification conv so its logits on ``probe`` are ~ N(-3, 1.5): distinct
    confidences (no ties, no saturation at 1.0), the best class of many anchors above 0.25."""
    import torch

    outputs = {}
    hooks = [
        branch[-1].register_forward_hook(lambda m, i, o, k=k: outputs.__setitem__(k, o))
        for k, branch in enumerate(net.model[-1].cv3)
    ]
    for branch in net.model[-1].cv3:
        branch[-1].weight.normal_(0, 1.0, generator=gen)
        branch[-1].bias.zero_()
    net(probe)
    for hook in hooks:
        hook.remove()
    for k, branch in enumerate(net.model[-1].cv3):
        mean, std = outputs[k].mean(), outputs[k].std().clamp_min(1e-6)
        branch[-1].weight.mul_(1.5 / std)
        branch[-1].bias.copy_((branch[-1].bias - mean) * 1.5 / std - 3.0)
    del torch


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def detect_onnx(models_dir: Path) -> Path:
    return export_student("yolo11n.yaml", models_dir, simplify=False, opset=17)


@pytest.fixture(scope="session")
def obb_onnx(models_dir: Path) -> Path:
    return export_student("yolo11n-obb.yaml", models_dir, simplify=True, opset=12)


def _photo() -> np.ndarray:
    """A real photo (Ultralytics' bus.jpg, 1080x810) or a synthetic one where it is missing."""
    try:
        import ultralytics

        path = Path(ultralytics.__file__).parent / "assets" / "bus.jpg"
        image = cv2.imread(str(path))
        if image is not None:
            return image
    except ImportError:
        pass
    from admd_edge.bench import synthetic_image

    return synthetic_image(1080, 810)


@pytest.fixture(scope="session")
def bus_image() -> np.ndarray:
    return _photo()


@pytest.fixture
def image_folder(tmp_path: Path, bus_image: np.ndarray) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    cv2.imwrite(str(folder / "bus.jpg"), bus_image)
    cv2.imwrite(str(folder / "crop.png"), bus_image[100:433, 50:567])
    return folder
