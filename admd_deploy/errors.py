"""One exception base for domain failures, distinct from bugs and from user input errors.

User mistakes (a bad recipe value, a missing file) raise ``ValueError`` / ``FileNotFoundError``
with what was wrong, what is valid and how to fix it. Failures of the work itself (an engine
build failed, an accuracy gate failed, two models cannot be distilled) raise a subclass of
:class:`AdmdDeployError`.
"""

from __future__ import annotations


class AdmdDeployError(Exception):
    """Base class of admd-deploy's domain failures."""


class IncompatibleModelsError(AdmdDeployError, ValueError):
    """Teacher and student cannot be paired for feature distillation (levels, strides, task, classes)."""
