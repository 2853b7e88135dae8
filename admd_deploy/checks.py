"""Checks of user input, one definition each, shared by the recipe, the CLI flags and the Python API.

Every check takes the name the user knows the value by (``distill.imgsz`` in a recipe, ``--imgsz``
on the command line) and raises :class:`~admd_deploy.errors.UsageError` with that name, the valid
values and the fix. Model files are read without building the model: a YAML's head or a
checkpoint's saved task says whether it is a detect or an OBB model.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import re
import zipfile
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from admd_deploy.errors import MissingFileError, UsageError

LOGGER = logging.getLogger(__name__)

MAX_STRIDE = 32  # the largest stride of every YOLO11 detect/OBB model: Ultralytics rounds imgsz up to a multiple
TASKS = ("detect", "obb")
_CUDA = re.compile(r"^(cuda:)?\d+(,\d+)*$")


def positive_int(field: str, value: Any) -> int:
    """``value`` as an integer >= 1 (epochs, batch, ...)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise UsageError(f"{field} must be >= 1 (an integer); got {value!r}")
    return value


def image_size(field: str, value: Any) -> int:
    """A training/export image size: an integer >= 32 and a multiple of 32 (Ultralytics would round it silently)."""
    positive_int(field, value)
    if value % MAX_STRIDE:
        lo = max(MAX_STRIDE, value // MAX_STRIDE * MAX_STRIDE)
        hi = lo + MAX_STRIDE if lo < value else lo
        near = f"{lo} or {hi}" if lo != hi else f"{lo}"
        raise UsageError(f"{field} must be a multiple of {MAX_STRIDE} (the models' largest stride; Ultralytics would "
                         f"round {value} silently); got {value}. Fix: use {near}")
    return value


def device(field: str, value: Any) -> str:
    """A device string Ultralytics accepts: ``cpu``, ``mps``, CUDA indices (``0``, ``0,1``, ``cuda:0``)."""
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        value = ",".join(map(str, value))
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    text = value.strip().lower().replace(" ", "") if isinstance(value, str) else None
    if text in ("cpu", "mps") or (text is not None and _CUDA.match(text)):
        return text
    fix = "use 0 (the first CUDA GPU), 0,1 (two GPUs) or cpu" if text in ("gpu", "cuda") else "use one of them"
    raise UsageError(f"{field} must be cpu, mps or CUDA GPU indices such as 0 or 0,1; got {value!r}. Fix: {fix}")


def device_available(field: str, value: str) -> None:
    """Refuse a device this machine does not have (before any work starts)."""
    import torch

    if value == "mps" and not torch.backends.mps.is_available():
        raise UsageError(f"{field} is mps but this machine has no Apple GPU. Fix: use cpu")
    if _CUDA.match(value):
        wanted = [int(i) for i in value.removeprefix("cuda:").split(",")]
        count = torch.cuda.device_count()
        if max(wanted) >= count:
            have = f"GPUs 0-{count - 1}" if count else "no CUDA GPU"
            raise UsageError(f"{field} is {value} but this machine has {have}. Fix: use "
                             f"{'cpu' if not count else f'an index below {count}, or cpu'}")


@cache
def ultralytics_train_keys() -> frozenset[str]:
    """Ultralytics' argument names, read from its default.yaml without importing the package."""
    spec = importlib.util.find_spec("ultralytics")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    cfg = Path(next(iter(spec.submodule_search_locations))) / "cfg" / "default.yaml"
    return frozenset(yaml.safe_load(cfg.read_text()))


def train_arg(field: str, key: str) -> None:
    """Refuse a key that is not an Ultralytics training argument, naming the closest ones."""
    known = ultralytics_train_keys()
    if known and key not in known:
        close = difflib.get_close_matches(key, known, n=3)
        hint = f"did you mean {close[0]!r}? " if close else ""
        hint += f"(also close: {', '.join(map(repr, close[1:]))}); " if close[1:] else ""
        raise UsageError(f"{field} is not an Ultralytics training argument; {hint}see `yolo cfg` for the valid ones")


# ------------------------------------------------------------------------------------------------ models
def _checkpoint_bytes_ok(path: Path) -> bool:
    """A torch checkpoint is a zip archive (torch >= 1.6) or a legacy pickle (starts with 0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"


@cache
def _read_checkpoint(path: str, mtime: float, size: int) -> dict[str, Any]:
    from admd_deploy.ultra import env

    env.prepare()  # unpickling the model imports Ultralytics
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)


def read_checkpoint(field: str, value: str | Path) -> dict[str, Any]:
    """Load an Ultralytics checkpoint (``.pt``) or refuse it in one line: missing, not a checkpoint, no model."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise MissingFileError(f"{field}: checkpoint not found: {path}. admd-deploy uses local files only: fix the path")
    bad = (f"{field}: {path} is not a PyTorch checkpoint (a .pt saved by Ultralytics). Fix: pass the trained model's "
           "weights/best.pt, or re-download/re-copy the file")
    if not _checkpoint_bytes_ok(path):
        raise UsageError(bad)
    stat = path.stat()
    try:
        ckpt = _read_checkpoint(str(path.resolve()), stat.st_mtime, stat.st_size)
    except (RuntimeError, EOFError, OSError, ValueError, ImportError, AttributeError) as err:
        LOGGER.debug("torch.load(%s) failed", path, exc_info=True)  # -v shows why
        raise UsageError(f"{bad} ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})") from err
    if not isinstance(ckpt, dict) or (ckpt.get("ema") or ckpt.get("model")) is None:
        raise UsageError(f"{field}: {path} holds no Ultralytics model (no 'model' in it). Fix: pass a .pt saved by "
                         "Ultralytics training (weights/best.pt)")
    return ckpt


def checkpoint_task(field: str, value: str | Path) -> str:
    """The task (detect, obb, ...) of an Ultralytics checkpoint, read from the model saved in it."""
    ckpt = read_checkpoint(field, value)
    model = ckpt.get("ema") or ckpt.get("model")
    task = getattr(model, "task", None) or (ckpt.get("train_args") or {}).get("task")
    if task is None:
        from admd_deploy.ultra.checkpoints import guess_task

        task = guess_task(model)
    return str(task)


def checkpoint_imgsz(field: str, value: str | Path) -> int:
    """The image size a checkpoint was trained at (640 when it does not say)."""
    size = (read_checkpoint(field, value).get("train_args") or {}).get("imgsz", 640)
    return int(size[0] if isinstance(size, (list, tuple)) else size)


def yaml_task(field: str, value: str) -> str:
    """The task of a model YAML (a local file or a name Ultralytics ships, e.g. yolo11n-obb.yaml), from its head."""
    from admd_deploy.ultra.checkpoints import guess_task, model_yaml

    try:
        cfg = model_yaml(value)
    except FileNotFoundError as err:
        raise MissingFileError(f"{field}: model YAML not found: {value} (neither a local file nor a model Ultralytics "
                               "ships). Fix: check the name, e.g. yolo11n.yaml or yolo11n-obb.yaml") from err
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise UsageError(f"{field}: {value} is not a valid model YAML ({str(err).splitlines()[0]}). Fix: the "
                         "file's YAML syntax") from err
    if not isinstance(cfg, dict) or not cfg.get("head"):
        raise UsageError(f"{field}: {value} is not a model YAML (no 'head' section). Fix: pass a model YAML such as "
                         "yolo11n.yaml, not a data YAML")
    return guess_task(cfg)


def model_task(field: str, value: str | Path) -> str:
    """The task of a model given as a local ``.pt`` or a model ``.yaml``; refuse anything else."""
    text = str(value)
    if text.endswith(".pt"):
        return checkpoint_task(field, text)
    if text.endswith((".yaml", ".yml")):
        return yaml_task(field, text)
    raise UsageError(f"{field} must be a model .yaml (e.g. yolo11n-obb.yaml) or a local .pt; got {text!r}")


def task_matches(field: str, value: str | Path, task: str, task_field: str = "task") -> str:
    """Refuse a model whose head is not ``task`` (a detect student under task obb writes a wrong checkpoint)."""
    found = model_task(field, value)
    if found not in TASKS:
        raise UsageError(f"{field}: {value} is a {found!r} model; admd-deploy distils {' and '.join(TASKS)} models. "
                         "Fix: pass a detect or OBB model")
    if found != task:
        other = "an OBB model such as yolo11n-obb.yaml" if task == "obb" else "a detect model such as yolo11n.yaml"
        raise UsageError(f"{field}: {Path(str(value)).name} is a {found} model but {task_field} is {task}. Fix: set "
                         f"{task_field} to {found}, or pass {other}")
    return found
