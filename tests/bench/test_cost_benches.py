"""admd-deploy bench step-cost / bench edge: the CLI, the step-cost summary, peak memory, the edge tables.

No timing is asserted: the edge bench runs on a hand-built 32x32 ONNX detector (FP32 and Q/DQ INT8) for
two iterations, to check the rows, tables and JSON, not the speed.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from admd_deploy.bench import step_cost
from admd_deploy.cli import build_parser, main

# --- CLI -------------------------------------------------------------------------------------------


def test_step_cost_parses_with_the_scripts_defaults_and_flags():
    ns = build_parser().parse_args(["bench", "step-cost"])
    assert (ns.bench_command, ns.teacher, ns.student, ns.method, ns.imgsz, ns.batch, ns.reps, ns.rounds) == (
        "step-cost", "yolo11s.yaml", "yolo11n.yaml", "admd", 256, 8, 10, 3)
    ns = build_parser().parse_args(["bench", "step-cost", "--teacher", "t.pt", "--student", "yolo11n-obb.yaml",
                                    "--method", "cwd", "--imgsz", "128", "--batch", "4", "--reps", "2", "--rounds", "1"])
    assert (ns.teacher, ns.student, ns.method, ns.imgsz, ns.batch, ns.reps, ns.rounds) == (
        "t.pt", "yolo11n-obb.yaml", "cwd", 128, 4, 2, 1)


def test_edge_parses_its_flags_and_int8_repeats():
    ns = build_parser().parse_args(["bench", "edge"])
    assert (ns.detect, ns.obb, ns.int8, ns.image, ns.threads, ns.runs, ns.no_ultralytics, ns.json) == (
        None, None, [], None, 2, 60, False, None)
    ns = build_parser().parse_args(["bench", "edge", "--detect", "d.onnx", "--obb", "o.onnx", "--int8", "a.onnx",
                                    "--int8", "b.onnx,c.onnx", "--image", "x.jpg", "--threads", "1", "--runs", "5",
                                    "--no-ultralytics", "--json", "out.json"])
    assert (ns.detect, ns.obb, ns.int8, ns.image, ns.threads, ns.runs, ns.no_ultralytics, ns.json) == (
        "d.onnx", "o.onnx", ["a.onnx", "b.onnx,c.onnx"], "x.jpg", 1, 5, True, "out.json")


def test_bench_edge_splits_int8_lists_and_writes_the_json(monkeypatch, tmp_path, capsys):
    pytest.importorskip("admd_edge")
    from admd_deploy.bench import edge

    seen = {}

    class Fake:
        def to_dict(self):
            return {"rows": [], "answer": 42}

    def fake_run(detect, obb, int8, image, threads, runs, ultralytics):
        seen.update(detect=detect, obb=obb, int8=int8, image=image, threads=threads, runs=runs, ultra=ultralytics)
        return Fake()

    monkeypatch.setattr(edge, "run_edge_bench", fake_run)
    monkeypatch.setattr(edge, "markdown", lambda result: "THE TABLES")
    out = tmp_path / "sub" / "edge.json"
    code = main(["bench", "edge", "--obb", "o.onnx", "--int8", "a.onnx, b.onnx", "--int8", "c.onnx", "--runs", "3",
                 "--no-ultralytics", "--json", str(out)])
    assert code == 0
    assert seen == {"detect": None, "obb": Path("o.onnx"), "int8": [Path("a.onnx"), Path("b.onnx"), Path("c.onnx")],
                    "image": None, "threads": 2, "runs": 3, "ultra": False}
    assert "THE TABLES" in capsys.readouterr().out
    assert json.loads(out.read_text())["answer"] == 42


def test_bench_step_cost_prints_the_scripts_table(monkeypatch, capsys):
    seen = {}

    def fake_run(*args):
        seen["args"] = args
        return _result(_times())

    monkeypatch.setattr(step_cost, "run_step_cost", fake_run)
    assert main(["bench", "step-cost", "--method", "cwd", "--reps", "4", "--rounds", "1"]) == 0
    assert seen["args"] == ("yolo11s.yaml", "yolo11n.yaml", "cwd", 256, 8, 4, 1)
    assert "| distilled | 20.0 | 0.0 |" in capsys.readouterr().out


def test_bench_edge_with_a_missing_model_exits_2_naming_it(tmp_path, capsys):
    pytest.importorskip("admd_edge")
    code = main(["bench", "edge", "--detect", str(tmp_path / "nope.onnx"), "--obb", str(tmp_path / "o.onnx")])
    err = capsys.readouterr().err
    assert code == 2 and "--detect: ONNX file not found" in err and "nope.onnx" in err and "Traceback" not in err


def test_bench_kd_is_still_dispatched_to_the_kd_bench(tmp_path, capsys):
    assert main(["bench", "kd", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


# --- step cost -------------------------------------------------------------------------------------


def _times() -> dict[str, list[float]]:
    return {"student": [10.0] * 4, "teacher": [5.0] * 4, "distilled": [20.0] * 4, "kd_loss": [1.0] * 4}


def _result(times: dict[str, list[float]]) -> dict:
    return {"torch": "2.x", "threads": 2, "teacher": "yolo11s.yaml", "student": "yolo11n.yaml", "method": "admd",
            "imgsz": 256, "batch": 8, "reps": 4, "rounds": 1, "times_ms": times, **step_cost.summarize(times)}


def test_step_cost_summary_gives_ratio_lower_bound_and_kd_share():
    times = _times()
    times["student"] = [8.0, 10.0, 10.0, 12.0, 30.0]  # median 10, quartiles 9 and 21 (exclusive method)
    s = step_cost.summarize(times)
    assert s["median_ms"]["student"] == 10.0 and s["iqr_ms"]["student"] == pytest.approx(12.0)
    assert s["distilled_over_student"] == pytest.approx(2.0)
    assert s["lower_bound"] == pytest.approx(1.5)
    assert s["kd_loss_share"] == pytest.approx(0.05)


def test_step_cost_markdown_is_the_scripts_output():
    text = step_cost.markdown(_result(_times()))
    assert text.splitlines() == [
        "torch 2.x, 2 threads, yolo11s.yaml -> yolo11n.yaml, method admd, batch 8, imgsz 256, 1x4 reps",
        "| step | median ms | IQR ms |",
        "|---|---|---|",
        "| student | 10.0 | 0.0 |",
        "| teacher | 5.0 | 0.0 |",
        "| distilled | 20.0 | 0.0 |",
        "| kd_loss | 1.0 | 0.0 |",
        "",
        "distilled / student = 2.00; lower bound (student + teacher) / student = 1.50; "
        "KD loss share of the distilled step = 5.0%",
    ]


def test_step_cost_refuses_too_few_samples():
    with pytest.raises(ValueError, match="too few for kd_loss"):
        step_cost.summarize({**_times(), "kd_loss": [1.0]})
    with pytest.raises(ValueError, match="--reps must be >= 1"):
        step_cost.run_step_cost(reps=0)
    with pytest.raises(ValueError, match="--reps x --rounds must be >= 2"):
        step_cost.run_step_cost(reps=1, rounds=1)


# --- peak memory ---------------------------------------------------------------------------------


def test_peak_rss_sees_a_200_mib_allocation():
    from admd_deploy.bench.edge import peak_rss_mib

    small = peak_rss_mib("import numpy as np\n")
    big = peak_rss_mib("""
        import numpy as np
        a = np.ones(200 * 2**20, dtype=np.uint8)  # written, so resident
        del a
    """)
    assert small > 5
    assert big - small > 150


def test_peak_rss_reports_a_failing_interpreter():
    from admd_deploy.bench.edge import MeasurementFailed, peak_rss_mib
    from admd_deploy.errors import AdmdDeployError

    with pytest.raises(MeasurementFailed, match=r"exit 1\): ZeroDivisionError"):
        peak_rss_mib("1 / 0")
    assert issubclass(MeasurementFailed, AdmdDeployError)


# --- edge tables on a tiny hand-built detector --------------------------------------------------


def tiny_detector(path: Path, *, qdq: bool = False) -> Path:
    """A 32x32 'YOLO' detector: (1, 3, 32, 32) -> (1, 4 + 2 classes, 16 anchors), boxes in pixels, sigmoid
    scores, with the metadata Ultralytics writes; ``qdq`` puts a Q/DQ pair on the input (an INT8 Q/DQ model)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper, save

    rng = np.random.default_rng(0)
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 32, 32])
    y = helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6, 16])
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (6, 3, 8, 8)).astype(np.float32), "w"),
        numpy_helper.from_array(rng.normal(0, 1.0, 6).astype(np.float32), "b"),
        numpy_helper.from_array(np.array([32, 32, 16, 16, 1, 1], np.float32).reshape(1, 6, 1, 1), "scale"),
        numpy_helper.from_array(np.array([1, 6, 16], np.int64), "shape"),
    ]
    src, nodes = "images", []
    if qdq:
        inits += [helper.make_tensor("s", TensorProto.FLOAT, [], [1 / 127]),
                  helper.make_tensor("z", TensorProto.INT8, [], [0])]
        nodes += [helper.make_node("QuantizeLinear", ["images", "s", "z"], ["q"]),
                  helper.make_node("DequantizeLinear", ["q", "s", "z"], ["dq"])]
        src = "dq"
    nodes += [
        helper.make_node("Conv", [src, "w", "b"], ["c"], kernel_shape=[8, 8], strides=[8, 8]),
        helper.make_node("Sigmoid", ["c"], ["sg"]),
        helper.make_node("Mul", ["sg", "scale"], ["m"]),
        helper.make_node("Reshape", ["m", "shape"], ["output0"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "tiny", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (("task", "detect"), ("imgsz", "[32, 32]"), ("names", "{0: 'a', 1: 'b'}"), ("stride", "8")):
        model.metadata_props.add(key=key, value=value)
    save(model, path)
    return path


def test_edge_bench_gives_fp32_and_int8_rows_memory_and_json(tmp_path):
    pytest.importorskip("admd_edge")
    from admd_edge.bench import synthetic_image

    from admd_deploy.bench.edge import ModelFile, bench_models, markdown

    fp32 = tiny_detector(tmp_path / "tiny.onnx")
    int8 = tiny_detector(tmp_path / "tiny.int8.onnx", qdq=True)
    result = bench_models([ModelFile(int8, "INT8"), ModelFile(fp32)], synthetic_image(48, 64), threads=1, runs=2,
                          ultralytics=False, memory_predictions=2, nms_boxes=200, nms_runs=2)
    names = [r.result.name for r in result.rows]
    assert names == [f"tiny FP32 ({s})" for s in ("64x48, conf 0.25", "64x48, 500 candidates", "32x24 frame, conf 0.25")] + [
        f"tiny.int8 INT8 ({s})" for s in ("64x48, conf 0.25", "64x48, 500 candidates", "32x24 frame, conf 0.25")]
    assert all(r.task == "detect" and r.ultralytics_ms is None for r in result.rows)
    assert result.rows[1].conf < 0.25  # 16 anchors < 500: every anchor's best score gets in
    assert [m.model.precision for m in result.memory] == ["FP32", "INT8"]
    assert all(m.edge_mib > 20 and m.ultralytics_mib is None for m in result.memory) and result.baseline_mib > 20

    text = markdown(result)
    assert "| tiny FP32 (64x48, conf 0.25) | detect | 32x32 |" in text
    assert "| tiny.int8 INT8 (32x24 frame, conf 0.25) | detect | 32x32 |" in text
    assert "other e2e" not in text  # no Ultralytics column asked for
    mem = [line for line in text.splitlines() if line.startswith("| tiny")][-2:]
    assert mem[0].startswith("| tiny | detect | FP32 |") and mem[0].endswith("| n/a |")
    assert mem[1].startswith("| tiny.int8 | detect | INT8 |")
    assert f"rotated NMS, 200 boxes (1024 px, 15 classes, IoU 0.7, {result.nms_kept} kept)" in text

    data = json.loads(json.dumps(result.to_dict()))
    assert len(data["rows"]) == 6 and data["rows"][0]["precision"] == "FP32" and data["rows"][3]["precision"] == "INT8"
    assert data["rows"][0]["end_to_end"]["median"] > 0 and data["memory"][1]["model"] == str(int8)
    assert data["rotated_nms"] == {"boxes": 200, "median_ms": result.nms_ms, "kept": result.nms_kept}


def test_edge_bench_refuses_bad_settings(tmp_path):
    pytest.importorskip("admd_edge")
    from admd_edge.bench import synthetic_image

    from admd_deploy.bench.edge import ModelFile, bench_models, resolve_models

    fp32 = tiny_detector(tmp_path / "tiny.onnx")
    with pytest.raises(ValueError, match="--runs must be >= 1"):
        bench_models([ModelFile(fp32)], synthetic_image(48, 64), runs=0)
    with pytest.raises(ValueError, match="precision must be one of FP32, INT8; got 'FP16'"):
        bench_models([ModelFile(fp32, "FP16")], synthetic_image(48, 64))
    with pytest.raises(FileNotFoundError, match="--int8: ONNX file not found"):
        resolve_models(fp32, fp32, [tmp_path / "missing.int8.onnx"], tmp_path)
    assert resolve_models(fp32, fp32, [fp32], tmp_path) == [ModelFile(fp32), ModelFile(fp32), ModelFile(fp32, "INT8")]
