"""How the CLI ends a failed command: the exit code and the one line the user reads.

* :class:`~admd_deploy.errors.UsageError` (the user's input): exit 2, one line (field, valid values, fix).
* A failed pipeline stage: exit 1, one line naming the stage, its traceback file and how to continue
  (exit 2 when what the stage raised was a ``UsageError``, e.g. a dataset with corrupt files).
* Another :class:`~admd_deploy.errors.AdmdDeployError`: exit 1, its one line.
* Anything else is unexpected (a bug here or in a library, a ``ValueError`` from torch included):
  exit 1, a one-line summary and the path of a log file holding the full traceback.

``-v`` prints the traceback in every case.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from admd_deploy.errors import AdmdDeployError, UsageError

EXIT_FAILED = 1
EXIT_USAGE = 2


def _log_unexpected(command: str) -> Path:
    """Write the current exception's traceback to a log file and return its path."""
    from admd_deploy.ultra import env as yolo_env

    folder = yolo_env.home() / "logs"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        import tempfile

        folder = Path(tempfile.gettempdir())
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{command}.log"
    path.write_text(f"admd-deploy {' '.join(sys.argv[1:])}\n\n{traceback.format_exc()}")
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")


def report_failure(command: str, err: BaseException, verbose: bool) -> int:
    """Exit 2 for the user's input (one line), 1 for a failed stage or anything unexpected (one line + log)."""
    cause = err.__cause__ if getattr(err, "stage", None) else None  # a pipeline stage that raised
    if isinstance(err, UsageError) or isinstance(cause, UsageError):
        text = " ".join(line.strip() for line in str(cause or err).splitlines() if line.strip())  # one line
        print(f"admd-deploy {command}: error: {text}", file=sys.stderr)
        if verbose:
            traceback.print_exception(err, file=sys.stderr)
        return EXIT_USAGE
    if getattr(err, "stage", None):
        log = getattr(err, "log", None)
        rerun = "" if command == "bench" else " (--from STAGE reruns from a stage)"  # bench kd has no --from
        print(f"admd-deploy {command}: {err}; traceback in {log}. Fix the cause and run the same command again: "
              f"finished stages are skipped and an interrupted training continues{rerun}", file=sys.stderr)
    elif isinstance(err, AdmdDeployError):
        print(f"admd-deploy {command}: {err}", file=sys.stderr)
    else:
        log = _log_unexpected(command)
        print(f"admd-deploy {command}: unexpected error: {_first_line(err)}; full traceback in {log} "
              "(rerun with -v to print it)", file=sys.stderr)
    if verbose:
        traceback.print_exception(err, file=sys.stderr)
    return EXIT_FAILED


INTERRUPTED = {  # how each command continues after Ctrl-C
    "distill": "rerun the same command with --resume to continue",
    "run": "run the same command again to continue (finished stages are skipped)",
    "quickstart": "run the same command again to continue (finished stages are skipped)",
    "export": "run the same command again to continue (finished stages are skipped)",
    "bench": "run the same command again to continue (finished runs are skipped, an interrupted one resumes)",
}
