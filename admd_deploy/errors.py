"""The project's exceptions: user mistakes, domain failures, and (by elimination) bugs.

* :class:`UsageError` (a ``ValueError``): the user's input is wrong (a recipe value, a CLI flag, a
  missing or unreadable file, a dataset with corrupt files). Its message is one line naming the
  field or file, the valid values and the fix. The CLI maps it, and only it, to exit code 2.
  :class:`MissingFileError` and :class:`OutputExistsError` are the file-shaped kinds; they are also
  ``FileNotFoundError`` / ``FileExistsError`` so callers that catch those keep working.
* :class:`AdmdDeployError`: the work itself failed (an engine build, an accuracy gate, two models
  that cannot be distilled). The CLI reports it in one line with exit code 1.
* Anything else is unexpected (a bug here or in a library): exit code 1, a one-line summary and a
  log file with the full traceback.
"""

from __future__ import annotations


class UsageError(ValueError):
    """The user's input is invalid; ``str()`` is the one-line message (field, valid values, fix)."""


class MissingFileError(UsageError, FileNotFoundError):
    """A file or folder the user named does not exist (or is not what it should be)."""


class OutputExistsError(UsageError, FileExistsError):
    """An output path holds something this command did not write and must not overwrite."""


class AdmdDeployError(Exception):
    """Base class of admd-deploy's domain failures."""


class IncompatibleModelsError(AdmdDeployError, UsageError):
    """Teacher and student cannot be paired for feature distillation (levels, strides, task, classes).

    The user picked the pair, so it is also a :class:`UsageError` (exit code 2).
    """
