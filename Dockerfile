# admd-deploy images. One Dockerfile, three targets (docs/docker.md has the build and run commands):
#   train  NVIDIA TensorRT base (CUDA + TensorRT): the whole pipeline on GPU, TensorRT engine builds. x86_64.
#   edge   Jetson (JetPack 6, TensorRT 10): only the torch-free edge package (export/, `admd-edge`). aarch64.
#   cpu    python:3.11-slim: the whole pipeline on CPU, e.g. `admd-deploy quickstart`.
# train and cpu install exactly as CI does: `make deps` (uv pip sync of the hashed requirements.lock, third-party
# only, its own cached layer), then `make venv` (this project and export/, editable, --no-deps, built with the
# lock's setuptools: --no-build-isolation, nothing resolved outside the lock).
# Needs BuildKit (default since Docker 23) for RUN --mount. Bases are pinned by tag; for releases pin the digest
# too by passing e.g. --build-arg CPU_BASE=python:3.11.14-slim-bookworm@sha256:<digest> (docs/docker.md).
# buildah / podman: build with `--format docker`. The default OCI format has no SHELL instruction, so the
# `SHELL [... "-o", "pipefail" ...]` lines below would be ignored (with a warning) and RUN would use /bin/sh -c.
# Any uid can run the images (`--user "$(id -u):$(id -g)"`): HOME, caches and configs point into /tmp, and
# /workspace is writable by all (sticky, like /tmp). Build steps leave nothing in /tmp (cleaned in each layer).
# Built here: the cpu target, with buildah from a stand-in base (../shared/tools/build-cpu-image.sh), smoke-run.
# NOT BUILT here: train and edge (their NVIDIA bases cannot be pulled); checked by hadolint and
# tests/test_dockerfile.py. docs/docker.md says exactly what was built and run.

ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9
ARG TRAIN_BASE=nvcr.io/nvidia/tensorrt:25.12-py3
ARG EDGE_BASE=nvcr.io/nvidia/l4t-jetpack:r36.4.0
ARG CPU_BASE=python:3.11.14-slim-bookworm
# The Python the lock was compiled for (Makefile PYTHON_VERSION, `uv pip compile -p 3.11`); tests check they agree.
ARG LOCK_PYTHON=3.11

# uv, pinned; bind-mounted into the RUN steps that need it, so it never lands in an image layer.
FROM ${UV_IMAGE} AS uv

# ---------------------------------------------------------------------------------------------------------------
# cpu: the full pipeline on CPU.
FROM ${CPU_BASE} AS cpu
ARG LOCK_PYTHON
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# make runs the Makefile targets; libGL/glib/X11 are what ultralytics' opencv-python (cv2 with Qt) loads at import.
# apt versions unpinned (DL3008): the pinned base fixes the release; exact pins break when the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends make libgl1 libglib2.0-0 libsm6 libxext6 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 admd \
 && useradd --uid 10001 --gid admd --create-home --shell /bin/bash admd \
 && install -d -o admd -g admd -m 1777 /workspace
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    YOLO_OFFLINE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    ADMD_DEPLOY_HOME=/tmp/admd-deploy \
    YOLO_CONFIG_DIR=/tmp/admd-deploy \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /opt/admd-deploy
# Dependency layer: the lock and the Makefile only, so it stays cached until requirements.lock changes.
COPY Makefile requirements.lock ./
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv \
    make deps VENV=/opt/venv PYTHON_VERSION="${LOCK_PYTHON}" \
 && find /tmp -mindepth 1 -delete
# Sources (.dockerignore keeps out .venv, runs/, .git, caches, weights), then this project and export/.
COPY . ./
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv \
    make venv VENV=/opt/venv PYTHON_VERSION="${LOCK_PYTHON}" \
 && python -m compileall -q admd_deploy export/admd_edge \
 && python -c "import admd_deploy, admd_edge, cv2, onnxruntime, torch" \
 && admd-deploy --help > /dev/null \
 && find /tmp -mindepth 1 -delete
ARG CPU_BASE
ARG GIT_COMMIT=""
ARG BUILD_DATE=""
RUN python docker/build_manifest.py --out /etc/admd-deploy/build-manifest.json --target cpu \
      --base-image "${CPU_BASE}" --lock requirements.lock --git-commit "${GIT_COMMIT}" --build-date "${BUILD_DATE}"
# The README's examples name recipes by relative path (`recipe check recipes/quickstart.yaml`): the shipped recipes
# are in the working directory too, root-owned and read-only. A volume mounted at /workspace/recipes replaces them.
COPY admd_deploy/recipes/ /workspace/recipes/
LABEL org.opencontainers.image.title="admd-deploy (cpu)" \
      org.opencontainers.image.description="ADMD YOLO distillation, export and verification on CPU" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.base.name="${CPU_BASE}"
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["/opt/venv/bin/admd-deploy"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------------
# train: the full pipeline on an NVIDIA GPU, with the base's TensorRT for engine builds (x86_64).
# The base's own Python is 3.12 (Ubuntu 24.04); the lock is for 3.11, so uv installs a pinned CPython 3.11 build
# (python-build-standalone, fetched from GitHub by `uv python install`: a download besides PyPI and apt).
# torch comes from the lock with its own CUDA wheels; TensorRT stays the base's (libraries, trtexec), and only its
# Python bindings for 3.11 are added, at exactly the base's version (docker/build_manifest.py --print ...).
# Needs a base whose CUDA major matches torch's wheels (13) and whose TensorRT version has bindings on PyPI.
FROM ${TRAIN_BASE} AS train
ARG LOCK_PYTHON
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# apt versions unpinned (DL3008): the pinned base fixes the release; exact pins break when the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends make ca-certificates libgl1 libglib2.0-0t64 libsm6 libxext6 \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 admd \
 && useradd --uid 10001 --gid admd --create-home --shell /bin/bash admd \
 && install -d -o admd -g admd -m 1777 /workspace
# PYTHONPATH cleared: nothing of the base's Python 3.12 may leak into the 3.11 venv.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONNOUSERSITE=1 \
    PYTHONPATH= \
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_DOWNLOADS=manual \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    YOLO_OFFLINE=1 \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    ADMD_DEPLOY_HOME=/tmp/admd-deploy \
    YOLO_CONFIG_DIR=/tmp/admd-deploy \
    MPLCONFIGDIR=/tmp/matplotlib
# /opt/python (not /root): the venv's interpreter must be readable by the non-root user.
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    uv python install "${LOCK_PYTHON}" \
 && find /tmp -mindepth 1 -delete
WORKDIR /opt/admd-deploy
COPY Makefile requirements.lock ./
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv \
    make deps VENV=/opt/venv PYTHON_VERSION="${LOCK_PYTHON}" \
 && find /tmp -mindepth 1 -delete
COPY . ./
# Then the TensorRT Python bindings for the venv's 3.11, at exactly the base's TensorRT version (the libraries are
# the base's). They are not in the lock, so they go in after `make venv`: nothing that syncs the lock runs later.
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv \
    make venv VENV=/opt/venv PYTHON_VERSION="${LOCK_PYTHON}" \
 && python docker/build_manifest.py --print tensorrt-requirements > /tmp/tensorrt.txt \
 && uv pip install -p /opt/venv/bin/python --no-deps -r /tmp/tensorrt.txt \
 && rm /tmp/tensorrt.txt \
 && python -m compileall -q admd_deploy export/admd_edge \
 && python -c "import importlib.util as u; assert u.find_spec('tensorrt'), 'tensorrt bindings missing'" \
 && python -c "import admd_deploy, admd_edge, cv2, onnxruntime, torch" \
 && admd-deploy --help > /dev/null \
 && find /tmp -mindepth 1 -delete
ARG TRAIN_BASE
ARG GIT_COMMIT=""
ARG BUILD_DATE=""
RUN python docker/build_manifest.py --out /etc/admd-deploy/build-manifest.json --target train \
      --base-image "${TRAIN_BASE}" --lock requirements.lock --git-commit "${GIT_COMMIT}" --build-date "${BUILD_DATE}"
# The README's examples name recipes by relative path (`recipe check recipes/quickstart.yaml`): the shipped recipes
# are in the working directory too, root-owned and read-only. A volume mounted at /workspace/recipes replaces them.
COPY admd_deploy/recipes/ /workspace/recipes/
LABEL org.opencontainers.image.title="admd-deploy (train)" \
      org.opencontainers.image.description="ADMD YOLO distillation, export, TensorRT engines on NVIDIA GPUs" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.base.name="${TRAIN_BASE}"
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["/opt/venv/bin/admd-deploy"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------------------------
# edge: Jetson Orin, JetPack 6 (L4T r36, Ubuntu 22.04, Python 3.10, CUDA 12.6, TensorRT 10.3). aarch64 only:
# build on the Jetson, or elsewhere with `--platform linux/arm64` (QEMU). Only export/ (admd-edge), no torch.
# TensorRT: the JetPack's python3-libnvinfer for the system Python 3.10, seen from a --system-site-packages venv.
# numpy / opencv-python-headless / onnxruntime / cuda-python: pinned, hashed aarch64 wheels
# (docker/edge-requirements.lock); Ubuntu 22.04's apt numpy 1.21 and OpenCV 4.5 are below admd-edge's floors.
# onnxruntime from PyPI is CPU-only on aarch64; GPU inference on the Jetson is TensorRT (or see ORT_GPU_INDEX).
FROM ${EDGE_BASE} AS edge
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# apt versions unpinned (DL3008): the pinned base fixes the release; exact pins break when the archive moves on.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-libnvinfer ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 admd \
 && useradd --uid 10001 --gid admd --groups video --create-home --shell /bin/bash admd \
 && install -d -o admd -g admd -m 1777 /workspace
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON_PREFERENCE=only-system \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config
WORKDIR /opt/admd-edge
COPY docker/edge-requirements.lock docker/
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv-edge \
    uv venv --system-site-packages -p /usr/bin/python3 /opt/venv \
 && uv pip sync -p /opt/venv/bin/python docker/edge-requirements.lock \
 && find /tmp -mindepth 1 -delete
# Optional: NVIDIA's Jetson build of onnxruntime-gpu instead of the CPU wheel, e.g.
# --build-arg ORT_GPU_INDEX=<Jetson AI Lab index URL for jp6/cu126> --build-arg ORT_GPU_VERSION=<version>
ARG ORT_GPU_INDEX=""
ARG ORT_GPU_VERSION=""
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv-edge \
    if [ -n "${ORT_GPU_INDEX}" ]; then \
      uv pip uninstall -p /opt/venv/bin/python onnxruntime \
      && uv pip install -p /opt/venv/bin/python --no-deps --index-url "${ORT_GPU_INDEX}" \
           "onnxruntime-gpu${ORT_GPU_VERSION:+==${ORT_GPU_VERSION}}"; \
    fi \
 && find /tmp -mindepth 1 -delete
COPY export/ export/
COPY docker/build_manifest.py docker/
RUN --mount=from=uv,source=/uv,target=/usr/local/bin/uv \
    --mount=type=cache,target=/root/.cache/uv,id=admd-uv-edge \
    uv pip install -p /opt/venv/bin/python --no-deps ./export \
 && python -c "import importlib.util as u; assert u.find_spec('tensorrt'), 'python3-libnvinfer missing'" \
 && python -c "import admd_edge, cv2, numpy, onnxruntime" \
 && admd-edge --help > /dev/null \
 && find /tmp -mindepth 1 -delete
ARG EDGE_BASE
ARG GIT_COMMIT=""
ARG BUILD_DATE=""
RUN python docker/build_manifest.py --out /etc/admd-deploy/build-manifest.json --target edge \
      --base-image "${EDGE_BASE}" --lock docker/edge-requirements.lock --git-commit "${GIT_COMMIT}" \
      --build-date "${BUILD_DATE}"
LABEL org.opencontainers.image.title="admd-edge (Jetson)" \
      org.opencontainers.image.description="Torch-free YOLO student runtime: ONNX Runtime / TensorRT 10 on JetPack 6" \
      org.opencontainers.image.licenses="AGPL-3.0-only" \
      org.opencontainers.image.base.name="${EDGE_BASE}"
USER 10001:10001
WORKDIR /workspace
ENTRYPOINT ["/opt/venv/bin/admd-edge"]
CMD ["--help"]
