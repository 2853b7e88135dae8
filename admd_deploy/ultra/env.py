"""Make Ultralytics run air-gapped, before it is imported.

Ultralytics reaches for the network unless told not to: it checks connectivity, downloads the
Arial fonts it draws labels with, sends usage events, and may auto-install packages. Every
module of the adapter (:mod:`admd_deploy.ultra`) calls :func:`prepare` before it imports
Ultralytics, so a user on an air-gapped drone laptop gets the same behaviour as the tests:

- the installed Ultralytics is checked against the supported range, once
  (:func:`admd_deploy.ultra.version.check_version`; outside it: a one-line ``UsageError``);
- ``YOLO_OFFLINE=1`` (Ultralytics then reports itself offline and never downloads);
- ``YOLO_CONFIG_DIR`` pointed at a folder this project controls
  (``$ADMD_DEPLOY_HOME``, default ``~/.cache/admd-deploy``), so a user's own Ultralytics
  settings (``datasets_dir``, ``runs_dir``) cannot redirect our runs;
- ``Arial.ttf`` / ``Arial.Unicode.ttf`` placed there, copied from matplotlib's DejaVuSans;
- ``OMP_NUM_THREADS`` left as the user set it, otherwise all cores (Ultralytics forces 1 on
  import, which measured 1.7x slower CPU epochs on 2 cores).

Values the user already set in the environment are respected (``YOLO_OFFLINE=0`` opts back in).
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

LOGGER = logging.getLogger(__name__)

_FONTS = ("Arial.ttf", "Arial.Unicode.ttf")
_prepared = False


def home() -> Path:
    """Return the folder admd-deploy keeps its Ultralytics config and caches in."""
    return Path(os.environ.get("ADMD_DEPLOY_HOME", Path.home() / ".cache" / "admd-deploy")).expanduser()


def prepare() -> Path:
    """Set the offline environment for Ultralytics and install the fonts it wants; idempotent.

    Returns:
        The Ultralytics config folder in use (``$YOLO_CONFIG_DIR/Ultralytics``).

    Raises:
        UsageError: The installed Ultralytics is missing or outside the supported range.
    """
    global _prepared
    if not _prepared:
        from admd_deploy.ultra.version import check_version

        check_version()  # before anything imports ultralytics: a clear line instead of an AttributeError later
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(home()))
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
    cfg = Path(os.environ["YOLO_CONFIG_DIR"]).expanduser() / "Ultralytics"
    if not _prepared:
        cfg.mkdir(parents=True, exist_ok=True)
        _install_fonts(cfg)
        _prepared = True
    return cfg


def cpu_threads() -> int:
    """Torch CPU threads for training: ``OMP_NUM_THREADS`` if set, else every core."""
    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS", "")))
    except ValueError:
        return os.cpu_count() or 1


def _install_fonts(cfg: Path) -> None:
    missing = [cfg / name for name in _FONTS if not (cfg / name).exists()]
    if not missing:
        return
    try:
        import matplotlib

        src = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    except ImportError:  # pragma: no cover - matplotlib is a dependency of ultralytics
        src = None
    if src is None or not src.exists():
        LOGGER.warning("no local TTF font found; Ultralytics plots may try to download Arial.ttf")
        return
    for dst in missing:
        tmp = dst.with_suffix(".tmp")
        shutil.copyfile(src, tmp)
        tmp.replace(dst)  # atomic: a concurrent process never sees half a font
