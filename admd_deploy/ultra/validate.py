"""Validate and predict with Ultralytics' own ``YOLO`` (checkpoints and exported models alike)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.ultra import env


def val_metrics(model: str | Path, data_yaml: str | Path, *, imgsz: int, batch: int, device: str,
                **val_args: Any) -> dict[str, Any]:
    """Ultralytics' validation of a checkpoint or an exported model.

    Args:
        model: A ``.pt`` checkpoint or an exported model (``.onnx``, ``.engine``).
        data_yaml: The dataset YAML; its ``val`` split is scored.
        imgsz: Square input size.
        batch: Validation batch size.
        device: Ultralytics device string (``cpu``, ``0``).
        **val_args: Further ``YOLO.val`` arguments (``rect``, ``conf``, ``iou``, ``plots``, ``verbose``).

    Returns:
        ``map50``, ``map50_95`` and ``per_class_ap50_95`` (class name -> AP).
    """
    env.prepare()
    from ultralytics import YOLO

    m = YOLO(str(model), task=None).val(data=str(data_yaml), imgsz=imgsz, batch=batch, device=device, **val_args)
    per_class = {m.names[int(c)]: float(ap) for c, ap in zip(m.ap_class_index, m.box.ap)}
    return {"map50": float(m.box.map50), "map50_95": float(m.box.map), "per_class_ap50_95": per_class}


def predict_detections(weights: str | Path, images: list[Path], *, imgsz: int, task: str, conf: float = 0.25,
                       device: str = "cpu", with_sizes: bool = False) -> Any:
    """Detections per image in original-image pixels: ``cls``, ``conf`` and ``corners`` (obb) or ``xyxy`` (detect).

    ``with_sizes``: also return each image's ``(width, height)``, as ``(detections, sizes)``."""
    env.prepare()
    from ultralytics import YOLO

    out, sizes = [], []
    model = YOLO(str(weights))
    results = (r for chunk in range(0, len(images), 64)  # streamed in chunks: memory stays flat on large folders
               for r in model.predict([str(p) for p in images[chunk:chunk + 64]], imgsz=imgsz, conf=conf,
                                      verbose=False, device=device))
    for r in results:
        sizes.append((int(r.orig_shape[1]), int(r.orig_shape[0])))
        if task == "obb":
            dets = [{"cls": int(c), "conf": float(s), "corners": poly.tolist()}
                    for c, s, poly in zip(r.obb.cls, r.obb.conf, r.obb.xyxyxyxy)]
        else:
            dets = [{"cls": int(c), "conf": float(s), "xyxy": b.tolist()}
                    for c, s, b in zip(r.boxes.cls, r.boxes.conf, r.boxes.xyxy)]
        out.append(dets)
    return (out, sizes) if with_sizes else out


def dataset_info(data_yaml: str | Path) -> dict[str, Any]:
    """The data YAML as Ultralytics resolves it (``check_det_dataset``: absolute ``train``/``val``, ``nc``, ``names``)."""
    env.prepare()
    from ultralytics.data.utils import check_det_dataset

    return check_det_dataset(str(data_yaml))


class Predictor:
    """``YOLO(model, task=task).predict`` on one image at a time (the end-to-end reference of the edge benchmarks).

    Args:
        model: An exported model (``.onnx``) or a checkpoint.
        task: ``detect`` or ``obb``.
    """

    def __init__(self, model: str | Path, task: str) -> None:
        env.prepare()
        from ultralytics import YOLO

        self._yolo = YOLO(str(model), task=task)

    def __call__(self, image: np.ndarray, *, imgsz: int, conf: float) -> Any:
        """Predict on one BGR image; returns Ultralytics' result list."""
        return self._yolo.predict(image, imgsz=imgsz, conf=conf, verbose=False)
