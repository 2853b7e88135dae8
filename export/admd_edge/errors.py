"""Exceptions of the edge runtime.

User mistakes (a bad threshold, a missing file) raise :class:`ValueError` / :class:`FileNotFoundError`.
Domain failures that are not bugs derive from :class:`EdgeError`, so a caller (the CLI) can report them in
one line without a traceback.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of the domain failures of ``admd_edge``."""


class MissingDependencyError(EdgeError, ImportError):
    """An optional dependency (TensorRT, cuda-python) is not importable; the message names what to install."""


class BundleIntegrityError(EdgeError):
    """A bundle file is missing or its sha256 differs from the one recorded in ``manifest.json``."""


class EngineBuildError(EdgeError):
    """TensorRT could not parse the ONNX or build the engine, or refused the requested precision."""
