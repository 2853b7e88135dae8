"""The stage ledger: what each stage of a run did, keyed by a hash of its inputs.

``runs/<name>/ledger.json`` holds one record per stage: ``status`` (running, done, failed,
skipped), ``key`` (sha256 of the stage's inputs and settings, upstream outputs included),
``outputs``, timings and the error of a failed stage. A stage whose record is ``done`` with the
same key is skipped on the next run; a changed input changes its key and every key downstream.
Writes are atomic (temp file + rename), so an interruption never corrupts the ledger.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


def stable_hash(obj: Any) -> str:
    """sha256 of a JSON-serialisable object, independent of dict order."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, by the edge runtime's own helper (the one its bundle manifests are checked with)."""
    from admd_edge.onnx_proto import sha256_file

    return sha256_file(path)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` whole or not at all (a temporary file renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


@dataclass
class StageRecord:
    status: str
    key: str
    outputs: dict[str, Any] = field(default_factory=dict)
    started: float | None = None
    finished: float | None = None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        return None if self.started is None or self.finished is None else self.finished - self.started


class Ledger:
    """Stage records of one run folder, persisted to ``ledger.json``."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / "ledger.json"
        self.records: dict[str, StageRecord] = {}
        if self.path.is_file():
            raw = json.loads(self.path.read_text())
            fields = set(StageRecord.__dataclass_fields__)
            self.records = {
                name: StageRecord(**{k: v for k, v in rec.items() if k in fields})  # 'seconds' is derived
                for name, rec in raw.get("stages", {}).items()
            }

    def save(self) -> None:
        data = {"stages": {n: {**asdict(r), "seconds": r.seconds} for n, r in self.records.items()}}
        write_json_atomic(self.path, data)

    def is_current(self, stage: str, key: str) -> bool:
        rec = self.records.get(stage)
        return rec is not None and rec.status == "done" and rec.key == key

    def start(self, stage: str, key: str) -> None:
        self.records[stage] = StageRecord(status="running", key=key, started=time.time())
        self.save()

    def finish(self, stage: str, outputs: dict[str, Any]) -> None:
        rec = self.records[stage]
        rec.status, rec.outputs, rec.finished, rec.error = "done", outputs, time.time(), None
        self.save()

    def fail(self, stage: str, error: str) -> None:
        rec = self.records[stage]
        rec.status, rec.finished, rec.error = "failed", time.time(), error
        self.save()

    def invalidate(self, stages: list[str]) -> None:
        """Forget the results of ``stages`` (``--from``): they rerun, their folders are kept until then."""
        for s in stages:
            if s in self.records and self.records[s].status == "done":
                self.records[s].status = "stale"
        self.save()

    def outputs(self, stage: str) -> dict[str, Any]:
        rec = self.records.get(stage)
        return rec.outputs if rec else {}
