#!/usr/bin/env python3
"""Write an image's build manifest: what was installed, on which base, with which CUDA/TensorRT, when.

Runs inside ``docker build`` with the image's own interpreter (``/opt/venv/bin/python``), so
``importlib.metadata`` sees exactly the distributions the image ships. Standard library only, and it
never imports the packages it reports (no torch/tensorrt import at build time): versions come from
distribution metadata, version headers, ``/var/lib/dpkg/status`` and version files.

The training side copies ``/etc/admd-deploy/build-manifest.json`` into every deploy bundle it builds
inside one of our images (``admd_deploy.pipeline.verify``).

Usage::

    python docker/build_manifest.py --out /etc/admd-deploy/build-manifest.json \\
        --target cpu --base-image python:3.11.14-slim-bookworm --lock requirements.lock
    python docker/build_manifest.py --print tensorrt-requirements   # pip lines matching the system TensorRT
    python docker/build_manifest.py --print tensorrt-version
    python docker/build_manifest.py --print cuda-version
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import hashlib
import importlib.metadata as md
import importlib.util
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

FORMAT = "admd-deploy/build-manifest/v1"

# The versions a reader looks for first; every installed distribution is listed under "packages" too.
KEY_PACKAGES = ("admd-deploy", "admd-edge", "torch", "torchvision", "ultralytics", "onnx", "onnxruntime",
                "onnxruntime-gpu", "onnxslim", "numpy", "opencv-python", "opencv-python-headless", "cuda-python",
                "cuda-bindings")

_TRT_HEADER_DIRS = ("usr/include", "usr/include/*-linux-gnu", "usr/local/tensorrt/include", "opt/tensorrt/include",
                    "usr/local/cuda/include", "usr/local/cuda/targets/*/include")
_TRT_LIB_DIRS = ("usr/lib/*-linux-gnu", "usr/lib64", "usr/local/tensorrt/lib", "opt/tensorrt/lib",
                 "usr/local/cuda/lib64", "usr/local/cuda/targets/*/lib")
_TRT_DEBS = ("libnvinfer10", "libnvinfer11", "libnvinfer8", "libnvinfer-dev", "tensorrt")
_CUDA_DEB_PREFIXES = ("cuda-cudart-", "cuda-runtime-", "cuda-toolkit-")


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name (``Opencv_Python`` -> ``opencv-python``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> dict[str, str]:
    """Every distribution this interpreter sees, name -> version; the first on ``sys.path`` wins, as on import."""
    found: dict[str, str] = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name and canonical(name) not in found:
            found[canonical(name)] = dist.version
    return dict(sorted(found.items()))


def image_ref(ref: str | None) -> dict[str, str | None] | None:
    """Split ``registry/repo:tag@sha256:digest`` into its parts (``None`` parts where absent)."""
    if not ref:
        return None
    name, _, digest = ref.partition("@")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    return {"ref": ref, "name": name, "tag": tag, "digest": digest or None}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return None


def _globbed(root: Path, patterns: tuple[str, ...], name: str) -> list[Path]:
    paths: list[Path] = []
    for pattern in patterns:
        paths += sorted(Path(p) for p in glob.glob(str(root / pattern / name)))
    return paths


def _dpkg_versions(root: Path) -> dict[str, str]:
    """Installed Debian packages -> upstream version (``10.3.0.30-1+cuda12.5`` -> ``10.3.0.30``)."""
    text = _read(root / "var/lib/dpkg/status") or ""
    found: dict[str, str] = {}
    for block in text.split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z-]+): (.*)$", block, flags=re.M))
        if fields.get("Package") and fields.get("Version") and fields.get("Status", "").endswith(" installed"):
            version = fields["Version"].split(":", 1)[-1]
            found[fields["Package"]] = version.split("-", 1)[0].split("+", 1)[0]
    return found


def _header_version(text: str) -> str | None:
    """TensorRT version from ``NvInferVersion.h`` (TRT 8-11: plain numbers or ``TRT_*_ENTERPRISE`` macros)."""
    defines = dict(re.findall(r"^\s*#\s*define\s+(\w+)\s+(\w+)", text, flags=re.M))

    def value(key: str) -> str | None:
        seen = set()
        while key in defines and key not in seen:
            seen.add(key)
            key = defines[key]
        return key if key.isdigit() else None

    parts = [value(f"NV_TENSORRT_{p}") for p in ("MAJOR", "MINOR", "PATCH", "BUILD")]
    if parts[0] is None or parts[1] is None:
        return None
    return ".".join(p for p in parts if p is not None)


def system_tensorrt(root: Path = Path("/"), environ: dict[str, str] | None = None) -> dict[str, str] | None:
    """The TensorRT the base image carries (C++ libraries), independent of any Python bindings.

    Looks, in order, at the NVIDIA images' ``TRT_VERSION`` / ``TENSORRT_VERSION`` variables, the
    ``NvInferVersion.h`` header, the dpkg database (``libnvinfer10``, JetPack) and ``libnvinfer.so.X.Y.Z``.
    """
    env = os.environ if environ is None else environ
    for var in ("TRT_VERSION", "TENSORRT_VERSION"):
        if re.fullmatch(r"\d+\.\d+(\.\d+){0,2}", env.get(var, "")):
            return {"version": env[var], "source": f"${var}"}
    for header in _globbed(root, _TRT_HEADER_DIRS, "NvInferVersion.h"):
        version = _header_version(_read(header) or "")
        if version:
            return {"version": version, "source": "/" + str(header.relative_to(root))}
    debs = _dpkg_versions(root)
    for deb in _TRT_DEBS:
        if deb in debs:
            return {"version": debs[deb], "source": f"dpkg {deb}"}
    for lib in _globbed(root, _TRT_LIB_DIRS, "libnvinfer.so.*"):
        match = re.fullmatch(r"libnvinfer\.so\.(\d+\.\d+\.\d+)", lib.name)
        if match:
            return {"version": match.group(1), "source": "/" + str(lib.relative_to(root))}
    return None


def python_tensorrt() -> dict[str, str] | None:
    """The ``tensorrt`` Python bindings this interpreter would import (found, not imported)."""
    try:
        spec = importlib.util.find_spec("tensorrt")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin:
        return None
    owners = md.packages_distributions().get("tensorrt", [])
    for owner in owners:
        try:
            return {"version": md.version(owner), "distribution": canonical(owner), "path": spec.origin}
        except md.PackageNotFoundError:
            continue
    for module in ("tensorrt", "tensorrt_bindings"):  # the pip wrapper re-exports tensorrt_bindings.__version__
        sub = importlib.util.find_spec(module)
        match = re.search(r"^__version__\s*=\s*[\"']([^\"']+)", _read(Path(sub.origin)) or "", re.M) if sub else None
        if match:
            return {"version": match.group(1), "distribution": None, "path": spec.origin}
    return {"version": None, "distribution": None, "path": spec.origin}


def _torch_cuda() -> str | None:
    """``torch.version.cuda`` read from ``torch/version.py`` without importing torch."""
    try:
        files = md.files("torch") or []
    except md.PackageNotFoundError:
        return None
    for file in files:
        if str(file).replace("\\", "/") == "torch/version.py":
            match = re.search(r"^cuda\b[^=]*=\s*[\"']([^\"']+)", _read(Path(file.locate())) or "", re.M)
            return match.group(1) if match else None
    return None


def cuda(root: Path = Path("/"), environ: dict[str, str] | None = None) -> dict[str, str | None] | None:
    """The CUDA toolkit the base carries (``$CUDA_VERSION``, ``version.json``, dpkg) and the one torch was built for."""
    env = os.environ if environ is None else environ
    toolkit = source = None
    if re.fullmatch(r"\d+\.\d+(\.\d+)*", env.get("CUDA_VERSION", "")):
        toolkit, source = env["CUDA_VERSION"], "$CUDA_VERSION"
    if toolkit is None:
        try:
            data = json.loads(_read(root / "usr/local/cuda/version.json") or "null")
            toolkit, source = data["cuda"]["version"], "/usr/local/cuda/version.json"
        except (TypeError, KeyError, ValueError):
            pass
    if toolkit is None:
        match = re.search(r"CUDA Version (\d+\.\d+(\.\d+)?)", _read(root / "usr/local/cuda/version.txt") or "")
        if match:
            toolkit, source = match.group(1), "/usr/local/cuda/version.txt"
    if toolkit is None:
        for deb, version in sorted(_dpkg_versions(root).items()):
            if deb.startswith(_CUDA_DEB_PREFIXES):
                toolkit, source = version, f"dpkg {deb}"
                break
    wheels = None
    try:
        wheels = md.version("nvidia-cuda-runtime")
    except md.PackageNotFoundError:
        try:
            wheels = md.version("nvidia-cuda-runtime-cu12")
        except md.PackageNotFoundError:
            pass
    torch_cuda = _torch_cuda()
    if toolkit is None and torch_cuda is None and wheels is None:
        return None
    return {"toolkit": toolkit, "toolkit_source": source, "torch_built_with": torch_cuda, "runtime_wheels": wheels}


def jetson(root: Path = Path("/")) -> dict[str, str] | None:
    """L4T release of a Jetson image (``/etc/nv_tegra_release``: ``# R36 (release), REVISION: 4.0``)."""
    text = _read(root / "etc/nv_tegra_release")
    match = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text or "")
    return {"l4t": f"R{match.group(1)}.{match.group(2)}"} if match else None


def os_release(root: Path = Path("/")) -> str | None:
    text = _read(root / "etc/os-release") or _read(root / "usr/lib/os-release") or ""
    match = re.search(r'^PRETTY_NAME="?([^"\n]+)"?', text, re.M)
    return match.group(1) if match else None


def tensorrt_requirements(root: Path = Path("/"), environ: dict[str, str] | None = None) -> list[str]:
    """pip lines for Python bindings that match the system TensorRT exactly (no libraries: the base has them).

    ``tensorrt-cuXX`` provides the ``tensorrt`` import name, ``tensorrt-cuXX-bindings`` the compiled module;
    both are installed with ``--no-deps`` so the libraries stub (``tensorrt-cuXX-libs``) is never fetched.

    Raises:
        RuntimeError: If the system TensorRT or the CUDA major version cannot be found.
    """
    trt = system_tensorrt(root, environ)
    if trt is None:
        raise RuntimeError("no system TensorRT found (TRT_VERSION, NvInferVersion.h, dpkg libnvinfer*, libnvinfer.so.*)"
                           "; use a base image that carries TensorRT")
    info = cuda(root, environ) or {}
    toolkit = info.get("toolkit")
    if not toolkit:
        raise RuntimeError("no CUDA toolkit version found ($CUDA_VERSION, /usr/local/cuda/version.json)")
    version = trt["version"]
    spec = f"=={version}" if version.count(".") >= 3 else f"=={version}.*"
    major = toolkit.split(".")[0]
    return [f"tensorrt-cu{major}{spec}", f"tensorrt-cu{major}-bindings{spec}"]


def build_date(explicit: str | None, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """ISO-8601 UTC build date: ``--build-date``, else ``$SOURCE_DATE_EPOCH`` (reproducible builds), else now."""
    env = os.environ if environ is None else environ
    if explicit:
        return explicit, "--build-date"
    if env.get("SOURCE_DATE_EPOCH", "").isdigit():
        stamp = dt.datetime.fromtimestamp(int(env["SOURCE_DATE_EPOCH"]), tz=dt.timezone.utc)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ"), "$SOURCE_DATE_EPOCH"
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "clock"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest(ns: argparse.Namespace) -> dict[str, Any]:
    """The manifest as a dict (see the module docstring)."""
    packages = installed_packages()
    date, date_source = build_date(ns.build_date)
    locks = {}
    for lock in ns.lock:
        path = Path(lock)
        locks[lock] = sha256(path) if path.is_file() else None
    return {
        "format": FORMAT,
        "target": ns.target,
        "base_image": image_ref(ns.base_image or os.environ.get("BASE_IMAGE")),
        "build_date": date,
        "build_date_source": date_source,
        "git_commit": ns.git_commit or None,
        "python": {"version": platform.python_version(), "implementation": platform.python_implementation(),
                   "executable": sys.executable, "prefix": sys.prefix, "base_prefix": sys.base_prefix},
        "platform": {"system": platform.system(), "machine": platform.machine(),
                     "libc": " ".join(platform.libc_ver()).strip() or None, "os": os_release()},
        "cuda": cuda(),
        "tensorrt": {"system": system_tensorrt(), "python": python_tensorrt()},
        "jetson": jetson(),
        "locks_sha256": locks,
        "key_packages": {name: packages.get(name) for name in KEY_PACKAGES},
        "packages": packages,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="write the manifest JSON here (parent folders are created)")
    p.add_argument("--target", help="Dockerfile target the image was built for (train, edge, cpu)")
    p.add_argument("--base-image", help="base image reference, name:tag[@sha256:...] (default $BASE_IMAGE)")
    p.add_argument("--lock", action="append", default=[], metavar="PATH",
                   help="a lock file the image was installed from; its sha256 is recorded (repeatable)")
    p.add_argument("--git-commit", help="source revision, when the builder passes one")
    p.add_argument("--build-date", help="ISO-8601 date to record instead of $SOURCE_DATE_EPOCH / now")
    p.add_argument("--print", dest="show", choices=("tensorrt-version", "tensorrt-requirements", "cuda-version"),
                   help="print one detected value instead of writing the manifest (exit 1 when not found)")
    ns = p.parse_args(argv)
    if not ns.out and not ns.show:
        p.error("give --out PATH or --print WHAT")
    return ns


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    if ns.show:
        if ns.show == "tensorrt-requirements":
            try:
                value = "\n".join(tensorrt_requirements())
            except RuntimeError as err:
                value, why = None, str(err)
        elif ns.show == "tensorrt-version":
            value, why = (system_tensorrt() or {}).get("version"), "no system TensorRT found"
        else:
            value, why = (cuda() or {}).get("toolkit"), "no CUDA toolkit found"
        if not value:
            print(f"build_manifest: {ns.show}: {why}", file=sys.stderr)
            return 1
        print(value)
        return 0
    data = manifest(ns)
    out = Path(ns.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(out)
    print(f"build manifest: {out} ({len(data['packages'])} packages, python {data['python']['version']}, "
          f"cuda {(data['cuda'] or {}).get('toolkit')}, tensorrt {(data['tensorrt']['system'] or {}).get('version')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
