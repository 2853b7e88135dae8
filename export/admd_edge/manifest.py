"""Deployment bundles: a folder with ``manifest.json`` naming every file with its sha256.

::

    {
      "format": "admd-deploy/bundle/v1",
      "files": {"model.onnx": "<sha256>", ...},
      "model": {"task": "obb", "imgsz": [640, 640], "names": {"0": "plane", ...}, "stride": 32, "file": "model.onnx"},
      ...extra
    }

:func:`write_manifest` is what the training side calls after an export; :func:`verify_bundle` is what the
device calls before loading anything: a missing file or a changed byte is refused, naming the file and both
hashes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from admd_edge.errors import BundleIntegrityError
from admd_edge.metadata import ModelInfo
from admd_edge.onnx_proto import sha256_file

LOGGER = logging.getLogger(__name__)

FORMAT = "admd-deploy/bundle/v1"
MANIFEST = "manifest.json"
REQUIRED_MODEL_KEYS = ("task", "imgsz", "names", "stride")


def _relative(bundle: Path, file: str | Path) -> str:
    path = Path(file)
    full = path if path.is_absolute() else bundle / path
    try:
        rel = full.resolve().relative_to(bundle.resolve())
    except ValueError as err:
        raise ValueError(f"bundle files must lie inside {bundle}; got {file}") from err
    if not full.is_file():
        raise FileNotFoundError(f"bundle file not found: {full}")
    return rel.as_posix()


def _check_model_info(model_info: Mapping[str, Any]) -> dict[str, Any]:
    missing = [k for k in REQUIRED_MODEL_KEYS if k not in model_info]
    if missing:
        raise ValueError(f"model_info lacks {missing}; it needs {list(REQUIRED_MODEL_KEYS)}")
    info = dict(model_info)
    parsed = ModelInfo.from_metadata(info)  # validates task, names, imgsz
    info["names"] = {str(k): v for k, v in parsed.names.items()}
    info["imgsz"] = list(parsed.imgsz) if parsed.imgsz else None
    return info


def write_manifest(
    bundle_dir: str | Path,
    files: Iterable[str | Path],
    model_info: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Hash ``files`` and write ``bundle_dir/manifest.json`` atomically.

    Args:
        bundle_dir: The bundle folder.
        files: Files inside it (relative to it, or absolute paths inside it).
        model_info: At least ``task``, ``imgsz``, ``names``, ``stride``; optionally ``file`` (the model to load).
        extra: More top-level keys (provenance, accuracy gates, versions); cannot override the required ones.

    Returns:
        Path of the manifest.

    Raises:
        ValueError: If a file lies outside the bundle, model_info is incomplete, or extra overrides a key.
        FileNotFoundError: If a file does not exist.
    """
    bundle = Path(bundle_dir)
    hashes = {rel: sha256_file(bundle / rel) for rel in sorted({_relative(bundle, f) for f in files})}
    if MANIFEST in hashes:
        raise ValueError(f"{MANIFEST} cannot list itself")
    info = _check_model_info(model_info)
    if "file" in info and info["file"] not in hashes:
        raise ValueError(f"model_info['file'] = {info['file']!r} is not among the bundle files {sorted(hashes)}")
    clash = {"format", "files", "model"} & set(extra or {})
    if clash:
        raise ValueError(f"extra cannot override {sorted(clash)}")
    manifest = {"format": FORMAT, "files": hashes, "model": info, **dict(extra or {})}
    target = bundle / MANIFEST
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, target)
    LOGGER.info("wrote %s (%d files)", target, len(hashes))
    return target


def read_manifest(bundle_dir: str | Path) -> dict[str, Any]:
    """Parse and check the shape of ``bundle_dir/manifest.json`` (no hashing).

    Raises:
        FileNotFoundError: If there is no manifest.
        BundleIntegrityError: If it is not a ``admd-deploy/bundle/v1`` manifest.
    """
    path = Path(bundle_dir) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST} in {bundle_dir}: not a bundle folder")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise BundleIntegrityError(f"{path} is not valid JSON: {err}") from err
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        got = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleIntegrityError(f"{path}: format must be {FORMAT!r}; got {got!r}")
    if not isinstance(manifest.get("files"), dict) or not isinstance(manifest.get("model"), dict):
        raise BundleIntegrityError(f"{path}: 'files' and 'model' must be objects")
    return manifest


def verify_bundle(bundle_dir: str | Path) -> dict[str, Any]:
    """Check every file of a bundle against its recorded sha256.

    Returns:
        The manifest.

    Raises:
        BundleIntegrityError: Naming the first file that is missing or whose hash differs, with both hashes.
    """
    bundle = Path(bundle_dir)
    manifest = read_manifest(bundle)
    for rel, expected in manifest["files"].items():
        path = bundle / rel
        if not path.is_file():
            raise BundleIntegrityError(f"bundle file {rel!r} is missing from {bundle} (manifest sha256 {expected})")
        actual = sha256_file(path)
        if actual != expected:
            raise BundleIntegrityError(
                f"bundle file {rel!r} in {bundle} does not match its manifest: expected sha256 {expected}, "
                f"found {actual}; the file was changed or corrupted, re-copy the bundle"
            )
    return manifest


def gates_warning(manifest: Mapping[str, Any]) -> str | None:
    """One line to warn with when the manifest says its bundle failed its accuracy gates, else None.

    The training side records ``passed`` and ``failed_gates`` (see ``admd_deploy.pipeline.verify``); a
    bundle without them (written by another tool) says nothing either way.
    """
    if manifest.get("passed", True) is not False:
        return None
    failed = manifest.get("failed_gates") or []
    names = ", ".join(map(str, failed)) if failed else "see manifest.json"
    return f"this bundle FAILED its accuracy gates ({names}); its detections may be wrong"


def bundle_model_file(bundle_dir: str | Path, manifest: Mapping[str, Any], model: str | Path | None = None) -> Path:
    """The model file a bundle asks to load: ``model`` if given (must be listed), else ``model.file``, else
    its only ``.onnx``/``.engine``/``.plan``.

    Raises:
        ValueError: If the choice is ambiguous or the file is not part of the bundle.
    """
    bundle = Path(bundle_dir)
    listed = set(manifest["files"])
    if model is not None:
        path = Path(model)
        rel = _relative(bundle, path) if path.is_absolute() or (bundle / path).is_file() else path.as_posix()
        if rel not in listed:
            raise ValueError(f"{model} is not listed in {bundle / MANIFEST}; listed: {sorted(listed)}")
        return bundle / rel
    if manifest["model"].get("file"):
        return bundle / manifest["model"]["file"]
    models = sorted(f for f in listed if Path(f).suffix.lower() in (".onnx", ".engine", ".plan", ".trt"))
    if len(models) != 1:
        raise ValueError(f"bundle {bundle} lists {len(models)} model files {models}; set model.file in the manifest")
    return bundle / models[0]
