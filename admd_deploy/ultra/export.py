"""Ultralytics' ONNX exporter, and the node names it writes (a contract: :mod:`admd_deploy.ultra.contracts`)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from admd_deploy.ultra import env

NODE_MODULE = re.compile(r"/model\.(\d+)/")  # the exporter names nodes after module paths: /model.23/cv3.0/...
HEAD_BRANCHES = r"cv[234]\.\d+/"  # the head's conv branches (box, class, angle); the decode follows them


def export_onnx(weights: str | Path, out: Path, *, imgsz: int, batch: int, dynamic: bool, opset: int,
                simplify: bool) -> Path:
    """Export a checkpoint (or a model YAML name) to ONNX with Ultralytics' exporter, on the CPU.

    Ultralytics writes its export next to the weights (or, for a YAML name, into the working directory);
    it runs here in a scratch folder, through a link to the weights, so no file outside ``out`` is touched.

    Args:
        weights: A ``.pt`` checkpoint, or a model YAML name (an untrained model).
        out: Where the ONNX file is written.
        imgsz: Square input size.
        batch: Static batch size (or the maximum with ``dynamic``).
        dynamic: Dynamic input shapes.
        opset: ONNX opset.
        simplify: Run Ultralytics' ONNX simplifier (onnxslim).

    Returns:
        ``out``.
    """
    env.prepare()
    from ultralytics import YOLO

    out = Path(out).absolute()  # before the chdir below
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="admd-export-") as scratch:
        source = str(weights)
        if Path(weights).is_file():
            source = str(Path(scratch) / Path(weights).name)
            try:
                os.symlink(Path(weights).resolve(), source)
            except OSError:  # a filesystem without symlinks
                shutil.copy2(weights, source)
        os.chdir(scratch)
        try:
            produced = Path(YOLO(source).export(format="onnx", imgsz=imgsz, batch=batch, dynamic=dynamic, opset=opset,
                                                simplify=simplify, device="cpu"))
            shutil.move(str(produced.resolve()), str(out))
        finally:
            os.chdir(cwd)
    return out


def head_decode_nodes(names: list[str]) -> list[str]:
    """Of an Ultralytics ONNX's node names, the head's decode: the last module's nodes outside ``cv2``/``cv3``/``cv4``.

    Raises:
        ValueError: No ``/model.N/`` node names (not an Ultralytics export).
    """
    modules = [int(m.group(1)) for n in names if (m := NODE_MODULE.match(n))]
    if not modules:
        raise ValueError("no /model.N/ node names")
    head = f"/model.{max(modules)}/"
    branch = re.compile(re.escape(head) + HEAD_BRANCHES)
    return [n for n in names if n.startswith(head) and not branch.match(n)]
