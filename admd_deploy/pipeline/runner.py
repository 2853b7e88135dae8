"""Run a recipe's stages in order, skipping those whose inputs did not change."""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
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
    name: str
    inputs: Callable[[Context], dict[str, Any]]
    run: Callable[[Context, Path], dict[str, Any]]
    what: str


PIPELINE = (
    Stage("data", training.data_inputs, training.run_data, "prepare the dataset"),
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

    def __init__(self, stage: str, error: BaseException) -> None:
        self.stage = stage
        super().__init__(f"stage '{stage}' failed: {type(error).__name__}: {error}")


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


def run_pipeline(recipe: Recipe, run_dir: str | Path | None = None, from_stage: str | None = None) -> PipelineResult:
    """Run (or continue) ``recipe`` in ``run_dir`` (default ``runs/<name>``)."""
    if "onnx_int8" in recipe.export.formats:  # before anything is written or trained
        from admd_deploy.pipeline.exporting import int8_quantizer

        int8_quantizer(recipe.export.int8_quantizer)
    run_dir = Path(run_dir or Path("runs") / recipe.name).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if from_stage is not None and from_stage not in STAGES:
        raise UsageError(f"--from must be one of {', '.join(STAGES)}; got {from_stage!r}")
    save_recipe(recipe, run_dir / "recipe.yaml")  # the resolved recipe, overrides applied
    ledger = Ledger(run_dir)
    if from_stage:
        ledger.invalidate(list(STAGES[STAGES.index(from_stage):]))
    ctx = Context(recipe=recipe, run_dir=run_dir, ledger=ledger)
    ran, skipped = [], []
    t0 = time.time()
    for i, stage in enumerate(PIPELINE, 1):
        key = stable_hash(stage.inputs(ctx))
        head = f"[{i}/{len(PIPELINE)}] {stage.name:<9}"
        if ledger.is_current(stage.name, key):
            skipped.append(stage.name)
            _say(f"{head} up to date, skipped")
            continue
        prior = ledger.records.get(stage.name)
        ctx.resumable = prior is not None and prior.key == key and prior.status in {"running", "failed"}
        _say(f"{head} {stage.what}{' (continuing the interrupted attempt)' if ctx.resumable else ''} ...")
        ledger.start(stage.name, key)
        t = time.time()
        try:
            outputs = stage.run(ctx, ctx.stage_dir(stage.name))
        except KeyboardInterrupt:
            ledger.fail(stage.name, "interrupted")
            _say(f"{head} interrupted; rerun the same command to continue from here")
            raise
        except Exception as err:  # noqa: BLE001 - recorded, then re-raised as a domain failure
            ledger.fail(stage.name, f"{type(err).__name__}: {err}")
            (run_dir / stage.name / "error.txt").write_text(traceback.format_exc())
            _say(f"{head} FAILED: {type(err).__name__}: {err} (traceback in {run_dir / stage.name / 'error.txt'})")
            raise StageFailed(stage.name, err) from err
        ledger.finish(stage.name, outputs)
        ran.append(stage.name)
        _say(f"{head} done in {time.time() - t:.0f}s")
    _say(f"pipeline finished in {time.time() - t0:.0f}s: {run_dir}")
    return PipelineResult(run_dir=run_dir, ran=ran, skipped=skipped, report=ledger.outputs("report").get("report", {}))
