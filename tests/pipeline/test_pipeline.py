"""The recipe pipeline end to end on a tiny synthetic OBB task (CPU, about a minute)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from admd_deploy.cli import main
from admd_deploy.pipeline import run_pipeline
from admd_deploy.pipeline.report import SINGLE_SEED_NOTE
from admd_deploy.recipe import STAGES, load_recipe

pytestmark = pytest.mark.slow

TINY = {
    "name": "tiny",
    "task": "obb",
    "data": {"source": "synthetic", "synthetic": {"n_train": 16, "n_val": 8, "imgsz": 128, "max_objects": 4}},
    "teacher": {"model": "yolo11s-obb.yaml", "epochs": 1, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0},
    "student": {"model": "yolo11n-obb.yaml"},
    "distill": {"method": "admd", "epochs": 2, "imgsz": 64, "batch": 8, "nbs": 8, "mosaic": 0.0, "close_mosaic": 0,
                "warmup_epochs": 0.5},
    "export": {"formats": ["onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu", "engine"], "calib_images": 8},
    "report": {"samples": 2, "latency_runs": 3},
}


def write_recipe(tmp_path: Path, **changes) -> Path:
    data = json.loads(json.dumps(TINY))
    for k, v in changes.items():
        data[k] = {**data.get(k, {}), **v} if isinstance(v, dict) else v
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pipeline")
    recipe = load_recipe(write_recipe(tmp))
    result = run_pipeline(recipe, tmp / "run")
    return tmp, recipe, result


def test_a_full_run_writes_the_report_schema_and_a_verified_bundle(finished):
    tmp, _, result = finished
    assert result.ran == list(STAGES)
    report = json.loads((result.run_dir / "report.json").read_text())
    # one seed per model: the report says its KD delta is within seed noise and where the paired benchmark is
    assert report["kd_note"] == SINGLE_SEED_NOTE and SINGLE_SEED_NOTE in (result.run_dir / "report.md").read_text()
    for name in ("teacher", "baseline", "student"):
        m = report["models"][name]
        assert 0 <= m["map50"] <= 1 and 0 <= m["map50_95"] <= 1 and m["params"] > 0 and m["cpu_latency_ms"] > 0
    assert report["models"]["teacher"]["params"] > report["models"]["student"]["params"]
    for name in ("onnx", "onnx_fp16", "onnx_int8", "onnx_int8_cpu"):
        e = report["exports"][name]
        assert {"map50", "map50_95", "checks"} <= set(e)
    assert report["exports"]["onnx"]["passes"] == {"fast_dfl": 1}
    # export latencies are timed together, interleaved: a speed-up against the FP32 ONNX for each
    assert report["exports"]["onnx"]["speedup_vs_onnx"] == 1.0
    assert all(report["exports"][k]["speedup_vs_onnx"] > 0 and report["exports"][k]["latency_rounds"] == 5
               for k in ("onnx_fp16", "onnx_int8", "onnx_int8_cpu"))
    assert "skipped" in report["exports"]["engine"]
    assert all({"name", "value", "limit", "passed"} <= set(g) for g in report["gates"])
    names = {g["name"] for g in report["gates"]}
    assert {"onnx_checker", "onnx_parity_max_abs", "onnx_int8_checker", "onnx_cross_check_vs_ultralytics",
            "onnx_map50_95_drop_vs_student", "onnx_int8_map50_95_drop_vs_student", "onnx_int8_cpu_checker",
            "onnx_int8_cpu_map50_95_drop_vs_student", "onnx_int8_cpu_cross_check_vs_ultralytics", "onnx_fp16_checker",
            "onnx_fp16_map50_95_drop_vs_student", "onnx_fp16_cross_check_vs_ultralytics",
            "student_min_map50_95", "onnx_min_map50_95", "onnx_int8_min_map50_95"} <= names
    fp16_drop = next(g for g in report["gates"] if g["name"] == "onnx_fp16_map50_95_drop_vs_student")
    assert fp16_drop["limit"] == 0.5  # gates.fp16_map_drop, not the FP32 or INT8 limit
    assert report["passed"] == all(g["passed"] is not False for g in report["gates"])
    assert "Ultralytics val, rect=False" in report["protocol"] and "multi-label" in report["protocol"]
    # every number says which protocol made it: the models by Ultralytics val, the exports by the edge runtime
    # decoding as the validator does
    assert report["models"]["student"]["protocol"] == "ultralytics-val"
    assert report["exports"]["onnx"]["protocol"] == "admd-edge-multi-label"
    assert "multi-label NMS" in report["protocols"]["admd-edge-multi-label"]

    md = (result.run_dir / "report.md").read_text()
    assert "| teacher |" in md and "| exported onnx |" in md and "![training curves]" in md
    for fig in report["figures"].values():
        assert Path(fig).stat().st_size > 5000

    deploy = Path(report["bundle"])
    manifest = json.loads((deploy / "manifest.json").read_text())
    assert set(manifest["files"]) == {"student.onnx", "student.fp16.onnx", "student.int8.onnx", "student.int8-cpu.onnx",
                                      "admd_edge-0.1.0-py3-none-any.whl"}
    from admd_deploy.pipeline.ledger import file_sha256

    assert all(file_sha256(deploy / f) == h for f, h in manifest["files"].items())
    assert manifest["model"]["task"] == "obb"
    # the default fp16 engine is built from the FP16 ONNX, which TensorRT 11 (strongly typed) needs
    assert manifest["engine"]["build_command"] == "admd-edge build-engine student.fp16.onnx --precision fp16"
    assert 'pip install "./admd_edge-0.1.0-py3-none-any.whl"' in (deploy / "README.md").read_text()
    assert not any(p.suffix == ".py" for p in deploy.rglob("*"))  # no script importing admd_deploy: the wheel only
    assert yaml.safe_load((result.run_dir / "recipe.yaml").read_text())["distill"]["epochs"] == 2


def test_a_rerun_skips_every_stage_and_from_reruns_the_tail(finished):
    _, recipe, first = finished
    again = run_pipeline(recipe, first.run_dir)
    assert again.ran == [] and again.skipped == list(STAGES)
    tail = run_pipeline(recipe, first.run_dir, from_stage="export")
    assert tail.ran == ["export", "verify", "report"]


def test_a_changed_setting_reruns_only_what_depends_on_it(tmp_path, finished):
    _, _, first = finished
    recipe = load_recipe(write_recipe(tmp_path), ["report.samples=1"])
    result = run_pipeline(recipe, first.run_dir)
    assert result.ran == ["evaluate", "report"]  # the report's sample grid changed; models and exports did not


def failed_gates(run_dir: Path) -> list[str]:
    return [g["name"] for g in json.loads((run_dir / "report.json").read_text())["gates"] if g["passed"] is False]


def test_a_model_with_map_0_fails_the_floor_gates_of_the_student_and_every_export(finished):
    _, _, first = finished
    report = json.loads((first.run_dir / "report.json").read_text())
    assert report["models"]["student"]["map50_95"] < 0.01  # two epochs on 16 images: the tiny student learned ~nothing
    assert report["passed"] is False
    assert failed_gates(first.run_dir) == ["student_min_map50_95", "onnx_min_map50_95", "onnx_int8_min_map50_95",
                                           "onnx_int8_cpu_min_map50_95", "onnx_fp16_min_map50_95"]


def test_a_failed_gate_exits_non_zero_and_the_report_says_which(finished, capsys):
    tmp, _, first = finished
    before = failed_gates(first.run_dir)  # the floor gates (the tiny student's mAP is below 1 point)
    code = main(["run", str(write_recipe(tmp)), "gates.parity_atol=1.0e-12", "--out", str(first.run_dir)])
    assert code == 1
    report = json.loads((first.run_dir / "report.json").read_text())
    assert report["passed"] is False
    assert [g for g in failed_gates(first.run_dir) if g not in before] == ["onnx_parity_max_abs"]
    assert "onnx_parity_max_abs" in (first.run_dir / "report.md").read_text().split("\n", 3)[2]
    assert "onnx_parity_max_abs" in capsys.readouterr().err


def test_an_interrupted_training_stage_resumes_and_earlier_stages_stay_done(tmp_path, monkeypatch):
    import admd_deploy.ultra.trainer as kd_yolo
    from admd_deploy.ultra.trainer import trainer_for_task

    def interrupting(task):
        base = trainer_for_task(task)

        class Interrupting(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                if self.distill.method == "admd":
                    self.add_callback("on_fit_epoch_end", stop_after_first_epoch)

        return Interrupting

    def stop_after_first_epoch(trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt("simulated power cut")

    recipe = load_recipe(write_recipe(tmp_path, distill={"baseline": False}))
    monkeypatch.setattr(kd_yolo, "trainer_for_task", interrupting)  # looked up when each stage trains
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(recipe, tmp_path / "run")
    ledger = json.loads((tmp_path / "run" / "ledger.json").read_text())["stages"]
    assert ledger["teacher"]["status"] == "done" and ledger["student"]["status"] == "failed"
    monkeypatch.undo()

    result = run_pipeline(recipe, tmp_path / "run")
    assert result.skipped[:4] == ["data", "pretrain", "teacher", "baseline"] and result.ran[0] == "student"
    rows = (tmp_path / "run" / "student" / "train" / "results.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # header + epoch 1 from the first attempt + epoch 2 from the resumed one


def test_export_command_exports_verifies_and_bundles_a_distilled_checkpoint(finished, tmp_path):
    _, _, first = finished
    best = first.run_dir / "student" / "train" / "weights" / "best.pt"
    data = first.run_dir / "data" / "synthetic" / "data.yaml"
    code = main(["export", str(best), "--data", str(data), "--formats", "onnx", "--out", str(tmp_path / "exp"),
                 "report.latency_runs=2", "report.samples=1"])
    assert code == 1  # the tiny student's mAP is below the 1-point floor (gates.min_map50_95)
    report = json.loads((tmp_path / "exp" / "report.json").read_text())
    assert set(report["models"]) == {"student"} and report["task"] == "obb"  # task read from the checkpoint
    assert report["exports"]["onnx"]["map50_95"] >= 0 and report["passed"] is False
    assert failed_gates(tmp_path / "exp") == ["student_min_map50_95", "onnx_min_map50_95"]
    assert json.loads((tmp_path / "exp" / "deploy" / "manifest.json").read_text())["files"].keys() == {
        "student.onnx", "admd_edge-0.1.0-py3-none-any.whl"}


def test_the_cpu_int8_model_quantises_the_body_and_keeps_the_decode_in_float(finished):
    import onnx

    from admd_deploy.pipeline.exporting import head_decode_nodes

    _, _, result = finished
    export = result.run_dir / "export"
    decode = set(head_decode_nodes(export / "student.onnx"))
    assert {"/model.23/Sigmoid", "/model.23/dfl/fast_dfl/Exp", "/model.23/dfl/fast_dfl/MatMul_num"} <= decode
    assert not any("/cv2." in n or "/cv3." in n or "/cv4." in n for n in decode)
    graph = onnx.load(str(export / "student.int8-cpu.onnx")).graph
    producer = {o: n for n in graph.node for o in n.output}
    ops = [n.op_type for n in graph.node]
    assert ops.count("QuantizeLinear") > 50 and ops.count("DequantizeLinear") > 50  # the body: activations too
    assert producer[graph.output[0].name].op_type == "Concat"  # the output is float, not dequantised
    decode_outputs = {o for n in graph.node if n.name in decode for o in n.output}
    assert decode_outputs and not any(n.op_type == "QuantizeLinear" and n.input[0] in decode_outputs for n in graph.node)
    # the pipeline's symmetric TensorRT-format model quantises Conv/MatMul inputs only
    trt_graph = onnx.load(str(export / "student.int8.onnx")).graph
    trt_ops = [n.op_type for n in trt_graph.node]
    assert trt_ops.count("QuantizeLinear") < ops.count("QuantizeLinear")
    # ... and not the decode's: the DFL expectation's MatMuls read float inputs, as in the CPU model
    trt_producer = {o: n for n in trt_graph.node for o in n.output}
    for n in trt_graph.node:
        if n.name in decode and n.op_type == "MatMul":
            assert all(trt_producer.get(i) is None or trt_producer[i].op_type != "DequantizeLinear" for i in n.input)


def test_an_engine_build_is_recorded_through_export_verify_bundle_and_report(finished, tmp_path, monkeypatch):
    """Where TensorRT would run: a stand-in ``engine_from_onnx`` returning the documented ``EngineBuild``.

    Nothing downstream may say more about the engine than the artifact does: no accuracy, no plan in the bundle.
    """
    import shutil

    from admd_deploy.pipeline import exporting
    from admd_edge import engine

    _, recipe, first = finished
    calls = []

    def stand_in(onnx_path, *, precision, out_dir, **kwargs):
        calls.append((Path(onnx_path).name, precision))
        plan = Path(out_dir) / f"{Path(onnx_path).stem}-{precision}-standin.plan"
        plan.write_bytes(b"not a real TensorRT plan")
        info = {"tensorrt_version": "0.0-stand-in", "gpu_name": "stand-in GPU", "build_path": "trt11-strongly-typed",
                "precision": precision, "onnx": Path(onnx_path).name}
        side = plan.with_suffix(".json")
        side.write_text(json.dumps(info))
        return engine.EngineBuild(plan, side, "trt11-strongly-typed", False, info)

    monkeypatch.setattr(exporting, "engine_status", lambda: None)
    monkeypatch.setattr(engine, "engine_from_onnx", stand_in)
    run_dir = tmp_path / "run"
    shutil.copytree(first.run_dir, run_dir)
    result = run_pipeline(recipe, run_dir, from_stage="export")
    assert result.ran == ["export", "verify", "report"]
    assert calls == [("student.fp16.onnx", "fp16")]  # built from the FP16 ONNX, as the bundle's command says

    report = json.loads((run_dir / "report.json").read_text())
    eng = report["exports"]["engine"]
    assert eng["path"].endswith("student.fp16-fp16-standin.plan") and eng["build_path"] == "trt11-strongly-typed"
    assert eng["tensorrt_version"] == "0.0-stand-in" and eng["cached"] is False and len(eng["sha256"]) == 64
    assert "map50" not in eng and eng["accuracy"].startswith("not measured")
    assert not any(g["name"].startswith("engine_") for g in report["gates"])  # no accuracy claim, no gate
    assert "| exported engine | not measured |" in (run_dir / "report.md").read_text()

    manifest = json.loads((Path(report["bundle"]) / "manifest.json").read_text())
    assert not any(f.endswith(".plan") for f in manifest["files"])  # not portable: the device builds its own
    assert manifest["engine"]["status"].startswith("built on the export machine, not shipped")
    assert manifest["engine"]["export_machine_build"]["tensorrt_version"] == "0.0-stand-in"
    assert manifest["engine"]["build_command"] == "admd-edge build-engine student.fp16.onnx --precision fp16"
