"""A deployable model: runner + letterbox + decode, loaded from a file or a verified bundle."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from admd_edge.manifest import MANIFEST, bundle_model_file, gates_warning, verify_bundle
from admd_edge.metadata import ModelInfo
from admd_edge.postprocess import Detections, check_thresholds, decode
from admd_edge.preprocess import Preprocessor, input_hw
from admd_edge.runners import Runner, runner_from_path

LOGGER = logging.getLogger(__name__)


def input_size(runner: Runner, info: ModelInfo, imgsz: int | Sequence[int] | None) -> tuple[int, int]:
    """Network input ``(h, w)``: the runner's static shape, else ``imgsz``, else the metadata's.

    Raises:
        ValueError: If ``imgsz`` contradicts a fixed input shape, or nothing gives a size.
    """
    static = runner.input_shape[2:4] if len(runner.input_shape) == 4 else (None, None)
    requested = input_hw(imgsz) if imgsz is not None else None
    if all(static):
        fixed = (int(static[0]), int(static[1]))
        if requested is not None and requested != fixed:
            raise ValueError(
                f"this model's input is fixed at {fixed[0]}x{fixed[1]}; got imgsz {requested[0]}x{requested[1]}: "
                f"drop --imgsz or re-export with dynamic=True"
            )
        return fixed
    if requested is not None:
        return requested
    if info.imgsz is not None:
        return info.imgsz
    raise ValueError("the model has a dynamic input size and no imgsz in its metadata: pass --imgsz")


class EdgeModel:
    """Run a YOLO detector / OBB model end to end on BGR images.

    Args:
        runner: Inference backend (ONNX Runtime or TensorRT).
        info: Task, names, stride; read from the runner's metadata when None.
        conf: Confidence threshold.
        iou: NMS threshold.
        max_det: Detections kept per image.
        imgsz: Input size for a dynamic-shape model (must match a fixed one).
        batch: Images per inference call for a dynamic-batch model.
        multi_label: Decode every class above ``conf`` of a box as a detection of its own, as Ultralytics'
            validator does; for mAP comparable with ``YOLO.val()``. The default, one label per box, is for
            prediction.
        clip: Clip axis-aligned boxes to the image; False scores them as Ultralytics' validator does.
    """

    def __init__(
        self,
        runner: Runner,
        info: ModelInfo | None = None,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        imgsz: int | Sequence[int] | None = None,
        batch: int = 1,
        multi_label: bool = False,
        clip: bool = True,
    ):
        check_thresholds(conf, iou, max_det)
        self.runner = runner
        self.info = info or ModelInfo.from_metadata(runner.metadata)
        self.conf, self.iou, self.max_det = conf, iou, int(max_det)
        self.multi_label, self.clip = bool(multi_label), bool(clip)
        static_batch = runner.input_shape[0] if runner.input_shape else None
        self.batch = int(static_batch) if static_batch else max(1, int(batch))
        self.imgsz = input_size(runner, self.info, imgsz)
        self.preprocessor = Preprocessor(self.imgsz, batch=self.batch, dtype=runner.input_dtype)

    @property
    def names(self) -> dict[int, str]:
        """Class names by id."""
        return self.info.names

    @property
    def task(self) -> str:
        """``"detect"`` or ``"obb"``."""
        return self.info.task

    def infer(self, tensor: np.ndarray) -> np.ndarray:
        """Raw first output for a preprocessed batch."""
        return self.runner.run(tensor)[0]

    def predict_timed(self, images: np.ndarray | Sequence[np.ndarray]) -> tuple[list[Detections], tuple[float, ...]]:
        """Detections for up to ``batch`` images and the (pre, infer, post) seconds of this call."""
        t0 = time.perf_counter()
        tensor, geometry = self.preprocessor(images)
        t1 = time.perf_counter()
        output = self.runner.run(tensor)[0]
        t2 = time.perf_counter()
        results = decode(output, geometry, self.info, self.conf, self.iou, self.max_det, multi_label=self.multi_label,
                         clip=self.clip)
        t3 = time.perf_counter()
        return results, (t1 - t0, t2 - t1, t3 - t2)

    def predict(self, images: np.ndarray | Sequence[np.ndarray]) -> Detections | list[Detections]:
        """Detections for one BGR image (returns one :class:`Detections`) or a sequence (returns a list)."""
        single = isinstance(images, np.ndarray) and images.ndim in (2, 3)
        batch = [images] if single else list(images)
        results: list[Detections] = []
        for start in range(0, len(batch), self.batch):
            results += self.predict_timed(batch[start : start + self.batch])[0]
        return results[0] if single else results

    __call__ = predict


def load_model(
    path: str | Path,
    *,
    bundle: str | Path | None = None,
    threads: int | None = None,
    providers: Sequence[str] | None = None,
    spin: bool = True,
    **kwargs: Any,
) -> EdgeModel:
    """Load a model file, or a model from a bundle after verifying every file's sha256.

    Args:
        path: ``.onnx`` / TensorRT plan, or a bundle folder.
        bundle: Bundle folder ``path`` belongs to (verified first; names/imgsz/task come from its manifest).
        threads: ONNX Runtime intra-op threads.
        providers: ONNX Runtime execution providers.
        spin: ONNX Runtime thread spinning; turn off on a CPU shared with other busy processes.
        **kwargs: :class:`EdgeModel` options (conf, iou, max_det, imgsz, batch, multi_label, clip).

    A bundle whose manifest says it failed its gates loads with a one-line warning (logging, on stderr).

    Raises:
        BundleIntegrityError: If a bundle file does not match its manifest.
    """
    path = Path(path)
    if bundle is None and path.is_dir() and (path / MANIFEST).is_file():
        bundle, path = path, None
    info = None
    if bundle is not None:
        manifest = verify_bundle(bundle)
        path = bundle_model_file(bundle, manifest, path)
        info = ModelInfo.from_metadata(manifest["model"])
        LOGGER.info("bundle %s verified (%d files)", bundle, len(manifest["files"]))
        if (warning := gates_warning(manifest)) is not None:
            LOGGER.warning("%s: %s", bundle, warning)
    runner = runner_from_path(path, threads=threads, providers=providers, spin=spin)
    return EdgeModel(runner, info, **kwargs)
