"""Run a recipe's stages in order, skipping those whose inputs did not change."""

from __future__ import annotations

import logging
import shutil
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from admd_deploy.errors import AdmdDeployError, UsageError
from admd_deploy.pipeline import evaluate, exporting, report, training, verify
from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.ledger import Ledger, stable_hash
from admd_deploy.recipe import STAGES, Recipe, save_recipe

LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stage:
    """One step of a run: its ledger record is ``name``, its key the hash of ``inputs(ctx)``.

    ``run(ctx, folder)`` works in ``folder`` (``<run dir>/<name>``, or ``<run dir>/<folder>`` when given;
    ``""`` is the run folder itself) and returns the outputs the ledger keeps.
    """

    name: str
    inputs: Callable[[Context], dict[str, Any]]
    run: Callable[[Context, Path], dict[str, Any]]
    what: str
    folder: str | None = None


PIPELINE = (
    Stage("data", training.data_inputs, training.run_data, "prepare the dataset"),
    Stage("pretrain", training.pretrain_inputs, training.run_pretrain, "pretrain teacher and student on source data"),
    Stage("teacher", training.teacher_inputs, training.run_teacher, "get the teacher"),
    Stage("baseline", training.baseline_inputs, training.run_baseline, "train the student alone"),
    Stage("student", training.student_inputs, training.run_student, "distil the student"),
    Stage("evaluate", evaluate.inputs, evaluate.run, "evaluate every model"),
    Stage("export", exporting.inputs, exporting.run, "export ONNX / INT8 / engine"),
    Stage("verify", verify.inputs, verify.run, "verify exports and bundle"),
    Stage("report", report.inputs, report.run, "write the report"),
)
assert tuple(s.name for s in PIPELINE) == STAGES


class StageFailed(AdmdDeployError):
    """A stage raised; earlier stages' results are intact and the ledger records the error."""

    def __init__(self, stage: str, error: BaseException, log: Path | None = None) -> None:
        self.stage = stage
        self.log = log  # the full traceback
        text = str(error).strip()
        super().__init__(f"stage '{stage}' failed: {type(error).__name__}: {text.splitlines()[0] if text else ''}")


@dataclass(frozen=True)
class PipelineResult:
    run_dir: Path
    ran: list[str]
    skipped: list[str]
    report: dict[str, Any]

    @property
    def passed(self) -> bool:
        return bool(self.report.get("passed"))


def _say(msg: str) -> None:
    print(msg, flush=True)  # stage progress for people; training progress comes from Ultralytics' bars


@contextmanager
def removed_if_failed(run_dir: Path) -> Iterator[None]:
    """Remove ``run_dir`` when the body fails, if the body created it and no stage finished in it.

    A failed command then leaves no half-made run folder behind; a folder that existed before, or
    holds a finished stage (a trained teacher, say), is kept. A failed stage's traceback is moved to
    the log folder first, so the path the error message names still exists.
    """
    created = not run_dir.exists()
    try:
        yield
    except BaseException as err:
        if created and run_dir.is_dir() and not isinstance(err, KeyboardInterrupt) and not _any_done(run_dir):
            log = getattr(err, "log", None)
            if isinstance(err, StageFailed) and log is not None and log.is_file():
                err.log = _keep_log(log, run_dir.name)
            shutil.rmtree(run_dir, ignore_errors=True)
            LOGGER.info("removed %s: the command failed before any stage finished", run_dir)
        raise


def _any_done(run_dir: Path) -> bool:
    try:
        return any(r.status in {"done", "stale"} for r in Ledger(run_dir).records.values())
    except (OSError, ValueError, TypeError):
        return True  # an unreadable ledger: keep the folder


def _keep_log(log: Path, name: str) -> Path:
    from admd_deploy.ultra import env as yolo_env

    folder = yolo_env.home() / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    kept = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}-{log.parent.name}-error.txt"
    shutil.copyfile(log, kept)
    return kept


def _check_verifiable(ledger: Ledger, ctx: Context, run_dir: Path) -> None:
    """``verify`` only verifies: every stage before it must have a current result, nothing is trained."""
    for stage in PIPELINE[:STAGES.index("verify")]:
        if not ledger.is_current(stage.name, stable_hash(stage.inputs(ctx))):
            rec = ledger.records.get(stage.name)
            state = f"is {rec.status}" if rec and rec.status != "done" else "has no result" if not rec else \
                "changed since it ran (an override changes more than the gates?)"
            raise UsageError(f"{run_dir}: stage '{stage.name}' {state}; verify only re-checks existing exports. "
                             f"Fix: run `admd-deploy run` (or export) for this folder first")


def run_pipeline(recipe: Recipe, run_dir: str | Path | None = None, from_stage: str | None = None,
                 *, verify_only: bool = False) -> PipelineResult:
    """Run (or continue) ``recipe`` in ``run_dir`` (default ``runs/<name>``).

    With ``verify_only`` only the verify and report stages run, on the exports already in ``run_dir``;
    a stage before them without a current result is refused (:class:`UsageError`), never rerun.
    """
    if from_stage is not None and from_stage not in STAGES:
        raise UsageError(f"--from must be one of {', '.join(STAGES)}; got {from_stage!r}")
    from admd_deploy import checks

    checks.device_available("device", recipe.device)
    if "onnx_int8" in recipe.export.formats:  # before anything is written or trained
        from admd_deploy.pipeline.exporting import int8_quantizer

        int8_quantizer(recipe.export.int8_quantizer)
    run_dir = Path(run_dir or Path("runs") / recipe.name).resolve()
    if verify_only and not (run_dir / "ledger.json").is_file():
        raise UsageError(f"{run_dir} has no ledger.json: nothing was exported there to verify. "
                         "Fix: run `admd-deploy run` (or export) first")
    with removed_if_failed(run_dir):
        return _run(recipe, run_dir, from_stage, verify_only)


def _run(recipe: Recipe, run_dir: Path, from_stage: str | None, verify_only: bool) -> PipelineResult:
    run_dir.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(run_dir)
    ctx = Context(recipe=recipe, run_dir=run_dir, ledger=ledger)
    if verify_only:
        _check_verifiable(ledger, ctx, run_dir)
    save_recipe(recipe, run_dir / "recipe.yaml")  # the resolved recipe, overrides applied
    if from_stage:
        ledger.invalidate(list(STAGES[STAGES.index(from_stage):]))
    t0 = time.time()
    ran, skipped = run_stages(ctx, PIPELINE)
    _say(f"pipeline finished in {time.time() - t0:.0f}s: {run_dir}")
    return PipelineResult(run_dir=run_dir, ran=ran, skipped=skipped, report=ledger.outputs("report").get("report", {}))


def run_stages(ctx: Context, stages: Sequence[Stage], first: int = 1, total: int | None = None) -> tuple[list[str], list[str]]:
    """Run ``stages`` in order with :func:`run_stage`; returns the names that ran and those skipped.

    ``first`` and ``total`` number the progress lines (``[first/total]``) when a command runs its stages
    in more than one batch (``bench kd`` learns its student runs from the teacher stage's outputs).
    """
    ran, skipped = [], []
    total = total if total is not None else first - 1 + len(stages)
    for i, stage in enumerate(stages, first):
        (ran if run_stage(ctx, stage, f"[{i}/{total}] {stage.name:<9}") else skipped).append(stage.name)
    return ran, skipped


def run_stage(ctx: Context, stage: Stage, head: str | None = None) -> bool:
    """Run one stage unless the ledger has it done with the same key; True when it ran.

    The key is the hash of ``stage.inputs(ctx)``, taken when the stage's turn comes (upstream outputs
    included). A last attempt with the same key that did not finish is continued (``ctx.resumable``: an
    interrupted training resumes from its ``last.pt``). A stage that raises is recorded as failed in the
    ledger, its traceback written to ``error.txt`` in its folder, and :class:`StageFailed` raised; the
    results of earlier stages stay as they are. Ctrl-C records ``interrupted`` and propagates.
    """
    ledger = ctx.ledger
    head = head or stage.name
    key = stable_hash(stage.inputs(ctx))
    if ledger.is_current(stage.name, key):
        _say(f"{head} up to date, skipped")
        return False
    prior = ledger.records.get(stage.name)
    ctx.resumable = prior is not None and prior.key == key and prior.status in {"running", "failed"}
    _say(f"{head} {stage.what}{' (continuing the interrupted attempt)' if ctx.resumable else ''} ...")
    folder = ctx.stage_dir(stage.name if stage.folder is None else stage.folder)
    ledger.start(stage.name, key)
    t = time.time()
    try:
        outputs = stage.run(ctx, folder)
    except KeyboardInterrupt:
        ledger.fail(stage.name, "interrupted")
        _say(f"{head} interrupted; rerun the same command to continue from here")
        raise
    except Exception as err:  # noqa: BLE001 - recorded, then re-raised as a domain failure
        ledger.fail(stage.name, f"{type(err).__name__}: {err}")
        log = folder / "error.txt"
        log.write_text(traceback.format_exc())
        _say(f"{head} FAILED: {type(err).__name__}: {err} (traceback in {log})")
        raise StageFailed(stage.name, err, log) from err
    ledger.finish(stage.name, outputs)
    _say(f"{head} done in {time.time() - t:.0f}s")
    return True
