"""Distillation inside Ultralytics, end to end on tiny YAML-built models and synthetic data (CPU, seconds)."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import admd_deploy
from admd_deploy.ultra.trainer import sidecar_path
from admd_deploy.errors import IncompatibleModelsError

pytestmark = pytest.mark.slow

KD_COLUMNS = ["train/kd", "train/kd_w", "train/d_P3", "train/d_P4", "train/d_P5"]


def read_results(run: Path) -> list[dict[str, float]]:
    with open(run / "results.csv", newline="") as f:
        return [{k.strip(): float(v) for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """Record (and refuse) every outgoing connection attempt."""
    attempts: list = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError("network disabled in tests")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def run_in_plain_ultralytics(code: str, yolo_home: Path) -> dict:
    """Run code in a fresh interpreter that imports Ultralytics but never admd_deploy; returns its JSON print."""
    prologue = "import json, sys\nfrom ultralytics import YOLO\n"
    epilogue = "\nassert 'admd_deploy' not in sys.modules\nprint('RESULT=' + json.dumps(out))\n"
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(yolo_home), "PYTHONPATH": ""}
    proc = subprocess.run(
        [sys.executable, "-c", prologue + code + epilogue], capture_output=True, text=True, env=env, cwd="/", timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT="))
    return json.loads(line[len("RESULT="):])


def test_detect_distillation_logs_kd_columns_and_saves_plain_student_checkpoints(
    detect_data, train_args, yolo_home, no_network
):
    result = admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", name="admd",
                                 warmup_epochs=0.5, **train_args)
    baseline = admd_deploy.distill(None, "yolo11n.yaml", detect_data, "none", name="none", **train_args)
    assert no_network == []

    rows = read_results(result.save_dir)
    assert len(rows) == 2
    for col in KD_COLUMNS:
        assert col in rows[0] and all(r[col] > 0 for r in rows), col
    assert not any(k.startswith("val/kd") or k.startswith("val/d_") for k in rows[0])
    assert rows[1]["train/kd_w"] >= rows[0]["train/kd_w"] >= 1.0
    assert "train/kd" not in read_results(baseline.save_dir)[0]

    # where the student is taught: ADMD's mask on the first 4 val images at the first and last epoch
    snaps = sorted((result.save_dir / "kd_maps").glob("*.npz"))
    assert [p.name for p in snaps] == ["epoch001.npz", "epoch002.npz"]
    with np.load(snaps[-1]) as z:
        assert z["images"].shape == (4, 64, 64, 3) and int(z["epoch"]) == 2
        assert {k: z[k].shape for k in z.files if k.startswith("map_")} == {
            "map_P3": (4, 8, 8), "map_P4": (4, 4, 4), "map_P5": (4, 2, 2)}
        assert np.allclose(z["map_P3"].astype(np.float32).mean((1, 2)), 1.0, atol=1e-2)  # linear mask: mean 1
    assert not (baseline.save_dir / "kd_maps").exists()
    from admd_deploy.plots import plot_teaching_maps

    assert plot_teaching_maps(snaps, result.save_dir / "kd-maps.png").stat().st_size > 5000

    for ckpt in (result.best, result.last):
        keys = torch.load(ckpt, map_location="cpu", weights_only=False)["model"].state_dict().keys()
        assert not any(k.startswith(("kd.", "align", "teacher", "student_model.")) for k in keys)
        size, plain = ckpt.stat().st_size, baseline.best.stat().st_size
        assert abs(size - plain) / plain < 0.05, (size, plain)
    assert sidecar_path(result.last).is_file() and sidecar_path(result.best).is_file()

    out = run_in_plain_ultralytics(
        f"""
m = YOLO({str(result.best)!r})
metrics = m.val(data={str(detect_data)!r}, imgsz=64, batch=8, device='cpu', plots=False, verbose=False)
pred = m.predict({str(detect_data.parent / 'images' / 'val')!r}, imgsz=64, device='cpu', verbose=False)
onnx = m.export(format='onnx', imgsz=64, device='cpu')
out = dict(cls=type(m.model).__name__, map=float(metrics.box.map50), n=len(pred), onnx=str(onnx))
""",
        yolo_home,
    )
    assert out["cls"] == "DetectionModel" and out["n"] == 8 and Path(out["onnx"]).is_file()


def test_obb_distillation_resumes_with_its_kd_state(obb_data, train_args):
    from admd_deploy.kd.config import DistillConfig
    from admd_deploy.ultra.trainer import KDOBBTrainer

    train_args = {**train_args, "epochs": 3, "name": "obb"}
    cfg = DistillConfig(method="admd", teacher="yolo11s-obb.yaml", warmup_epochs=0.5)
    trainer = KDOBBTrainer(overrides={**train_args, "model": "yolo11n-obb.yaml", "data": str(obb_data),
                                      "distill": cfg.to_dict()})

    def interrupt(tr):
        if tr.epoch == 1:
            raise KeyboardInterrupt("simulated interruption after epoch 2")

    trainer.add_callback("on_fit_epoch_end", interrupt)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    last = Path(trainer.last)
    saved = torch.load(sidecar_path(last), weights_only=False)
    assert saved["epoch"] == 1 and saved["config"] == cfg.to_dict()
    steps_per_epoch = int(saved["kd"]["weighting.steps"]) // 2

    resumed = admd_deploy.distill(None, "yolo11n-obb.yaml", obb_data, resume=last)
    rows = read_results(resumed.save_dir)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    weights = [r["train/kd_w"] for r in rows]
    assert weights == sorted(weights)  # the KD weight never restarts from 1 after resume
    final = torch.load(sidecar_path(last), weights_only=False)
    assert int(final["kd"]["weighting.steps"]) == 3 * steps_per_epoch  # the step count continued, not restarted
    assert float(final["kd"]["weighting.ref"]) == pytest.approx(float(saved["kd"]["weighting.ref"]))


def test_cross_family_teacher_distils_with_the_builtin_score_loss(detect_data, train_args):
    result = admd_deploy.distill("yolov8s.yaml", "yolo11n.yaml", detect_data, "score_l2", name="xfam",
                                 **{**train_args, "epochs": 1})
    row = read_results(result.save_dir)[0]
    assert row["train/kd"] > 0 and row["train/kd_w"] == 1.0  # peers use a constant weight by default


def test_teacher_with_other_pyramid_levels_fails_naming_both_level_lists(detect_data, train_args):
    with pytest.raises(IncompatibleModelsError) as err:
        admd_deploy.distill("yolov8s-p2.yaml", "yolo11n.yaml", detect_data, "admd", name="p2", **train_args)
    msg = str(err.value)
    assert "P2(stride 4" in msg and "P5(stride 32" in msg and "teacher levels" in msg and "student levels" in msg


def test_missing_teacher_checkpoint_fails_before_training_and_never_downloads(detect_data, train_args, no_network):
    with pytest.raises(FileNotFoundError, match="never downloads weights|not found"):
        admd_deploy.distill("/nonexistent/yolo11x.pt", "yolo11n.yaml", detect_data, "admd", **train_args)
    assert no_network == []


def test_a_nan_loss_recovers_from_last_pt_with_the_kd_state(detect_data, train_args):
    """Ultralytics' NaN recovery reloads last.pt; with a distilled run it must restore the KD state too."""
    from admd_deploy.kd.config import DistillConfig
    from admd_deploy.ultra.trainer import KDDetectionTrainer

    trainer = KDDetectionTrainer(overrides={**train_args, "epochs": 3, "name": "nan", "model": "yolo11n.yaml",
                                            "data": str(detect_data), "distill": DistillConfig(
                                                method="admd", teacher="yolo11s.yaml", warmup_epochs=0.5).to_dict()})
    seen = {}

    def poison(tr):
        if tr.epoch == 1 and not seen:
            seen["steps_before"] = int(tr.kd_model.kd.weighting.steps)
            tr.loss = torch.tensor(float("nan"))

    def record(tr):
        if tr.epoch == 1 and "steps_after" not in seen and seen:
            seen["steps_after"] = int(tr.kd_model.kd.weighting.steps)

    trainer.add_callback("on_train_epoch_end", poison)
    trainer.add_callback("on_train_epoch_start", record)
    trainer.train()
    assert seen["steps_after"] < seen["steps_before"]  # the KD step count was rolled back to last.pt's
    saved = torch.load(sidecar_path(trainer.last), weights_only=False)
    assert saved["epoch"] == 2 and len(read_results(trainer.save_dir)) == 3
