"""``admd-deploy verify`` re-checks a finished run's exports and never trains (issue 14, part 2)."""

from __future__ import annotations

import json

import pytest
import yaml

from admd_deploy.cli import main

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny-verify",
    "task": "obb",
    "data": {"source": "synthetic", "synthetic": {"n_train": 8, "n_val": 4, "imgsz": 128, "max_objects": 3}},
    "teacher": {"model": "yolo11n-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
    "student": {"model": "yolo11n-obb.yaml"},
    "distill": {"method": "admd", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0,
                "warmup_epochs": 0.5, "baseline": False},
    "export": {"formats": ["onnx"], "calib_images": 4},
    "report": {"plots": False, "samples": 1, "latency_runs": 2},
}


def test_verify_of_a_finished_run_runs_only_verify_and_report(tmp_path, capsys):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(TINY))
    run_dir = tmp_path / "run"
    main(["run", str(recipe), "--out", str(run_dir)])  # gates may fail on a 1-epoch model: only the stages matter
    before = json.loads((run_dir / "ledger.json").read_text())["stages"]
    capsys.readouterr()

    main(["verify", str(run_dir), "gates.cross_check=50"])
    out = capsys.readouterr().out
    after = json.loads((run_dir / "ledger.json").read_text())["stages"]
    for stage in ("data", "teacher", "baseline", "student", "evaluate", "export"):
        assert after[stage]["finished"] == before[stage]["finished"], stage  # not rerun
        assert f"{stage:<9} up to date, skipped" in out
    assert after["verify"]["finished"] > before["verify"]["finished"]
    assert after["report"]["finished"] > before["report"]["finished"]
