"""The edge runtime as a wheel for the deploy bundle, rebuilt from the installed ``admd-edge`` distribution.

Works the same for an editable checkout and for an installed wheel: the package files come from the
importable ``admd_edge`` package folder, the metadata (``METADATA``, ``entry_points.txt``) from the
distribution's ``.dist-info``; ``WHEEL`` and ``RECORD`` (sha256 of every file) are written anew. Nothing
is compiled or downloaded, and nothing of ``admd_deploy`` goes in.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

DIST = "admd-edge"
WHEEL_META = "Wheel-Version: 1.0\nGenerator: admd-deploy\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def package_files(package_dir: Path) -> list[Path]:
    """The runtime's files: every module and ``py.typed``, no caches."""
    return sorted(p for p in package_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                  and p.suffix in (".py", ".typed"))


def build_edge_wheel(out_dir: Path) -> Path:
    """Write ``admd_edge-<version>-py3-none-any.whl`` into ``out_dir`` and return its path.

    Raises:
        metadata.PackageNotFoundError: If admd-edge is not installed.
    """
    import admd_edge

    dist = metadata.distribution(DIST)
    version = dist.version
    info = f"admd_edge-{version}.dist-info"
    package_dir = Path(admd_edge.__file__).resolve().parent
    entries: list[tuple[str, bytes]] = [(f"admd_edge/{p.relative_to(package_dir).as_posix()}", p.read_bytes())
                                        for p in package_files(package_dir)]
    entries.append((f"{info}/METADATA", (dist.read_text("METADATA") or "").encode()))
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        entries.append((f"{info}/entry_points.txt", entry_points.encode()))
    entries.append((f"{info}/WHEEL", WHEEL_META.encode()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries) + f"{info}/RECORD,,\n"
    wheel = Path(out_dir) / f"admd_edge-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in [*entries, (f"{info}/RECORD", record.encode())]:
            zf.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return wheel
