"""The INT8 CPU model's exclusion list, on hand-made graphs (no export needed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from admd_deploy.pipeline.exporting import head_decode_nodes


def _graph(path, names):
    nodes = [helper.make_node("Identity", [f"t{i}"], [f"t{i + 1}"], name=n) for i, n in enumerate(names)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("t0", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info(f"t{len(names)}", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), path)
    return path


def test_the_decode_is_the_last_modules_nodes_outside_its_conv_branches(tmp_path):
    names = ["/model.0/conv/Conv", "/model.22/cv2/Conv", "/model.23/cv2.0/cv2.0.0/conv/Conv",
             "/model.23/cv3.2/cv3.2.2/Conv", "/model.23/cv4.1/cv4.1.2/Conv", "/model.23/dfl/Softmax",
             "/model.23/Sigmoid", "/model.23/Concat_5", "/model.3/cv2.0/Conv"]
    assert head_decode_nodes(_graph(tmp_path / "m.onnx", names)) == [
        "/model.23/dfl/Softmax", "/model.23/Sigmoid", "/model.23/Concat_5"]


def test_a_graph_without_ultralytics_names_is_refused(tmp_path):
    with pytest.raises(ValueError, match="needs an Ultralytics ONNX export"):
        head_decode_nodes(_graph(tmp_path / "m.onnx", ["conv1", "relu1"]))


def test_the_int8_quantizer_is_modelopt_where_installed_and_onnxruntime_elsewhere(monkeypatch):
    import importlib.util

    from admd_deploy.pipeline.exporting import int8_quantizer

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "modelopt" else real(name, *a))
    assert int8_quantizer("auto") == "onnxruntime" and int8_quantizer("onnxruntime") == "onnxruntime"
    with pytest.raises(ValueError, match="pip install 'nvidia-modelopt\\[onnx\\]'"):
        int8_quantizer("modelopt")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name == "modelopt" else real(name, *a))
    assert int8_quantizer("auto") == "modelopt" and int8_quantizer("onnxruntime") == "onnxruntime"


def test_a_run_asking_for_a_missing_modelopt_fails_before_training(tmp_path, monkeypatch):
    import importlib.util

    from admd_deploy.pipeline.runner import run_pipeline
    from admd_deploy.recipe import load_recipe

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "modelopt" else real(name, *a))
    recipe = load_recipe(Path(__file__).parents[2] / "recipes" / "quickstart.yaml", ["export.int8_quantizer=modelopt"])
    with pytest.raises(ValueError, match="int8_quantizer is modelopt"):
        run_pipeline(recipe, tmp_path / "run")
    assert not (tmp_path / "run" / "ledger.json").exists()  # no stage started


def test_modelopt_quantises_outside_the_decode_and_keeps_the_metadata(tmp_path, yolo_home, obb_data, monkeypatch):
    pytest.importorskip("modelopt.onnx.quantization", reason="NVIDIA ModelOpt is not installed (nvidia-modelopt[onnx])")
    import onnxruntime as ort

    from admd_deploy.pipeline.evaluate import val_images
    from admd_deploy.pipeline.exporting import letterboxed, modelopt_int8_from_onnx, onnx_from_checkpoint

    monkeypatch.chdir(tmp_path)
    fp32 = onnx_from_checkpoint("yolo11n-obb.yaml", tmp_path / "m.onnx", imgsz=64, batch=1, dynamic=False, opset=17,
                                simplify=True)
    calib = letterboxed(val_images(obb_data, 8), 64)
    int8 = modelopt_int8_from_onnx(fp32, tmp_path / "m.int8.onnx", calib)
    onnx.checker.check_model(str(int8), full_check=True)
    model = onnx.load(str(int8))
    ops = [n.op_type for n in model.graph.node]
    assert ops.count("QuantizeLinear") > 20 and ops.count("DequantizeLinear") > 20
    decode = set(head_decode_nodes(fp32))
    producer = {o: n for n in model.graph.node for o in n.output}
    for n in model.graph.node:  # nothing of the decode reads a dequantised value
        if n.name in decode:
            assert all(producer.get(i) is None or producer[i].op_type != "DequantizeLinear" for i in n.input), n.name
    props = {p.key for p in model.metadata_props}
    assert {"names", "letterbox", "admd_passes"} <= props
    x = calib[:1]
    ref, q = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
              for p in (fp32, int8))
    assert q.shape == ref.shape and np.isfinite(q).all()


def test_an_engine_build_becomes_a_json_artifact_of_what_its_sidecar_says(tmp_path):
    import json

    from admd_deploy.pipeline.exporting import engine_artifact
    from admd_deploy.pipeline.ledger import file_sha256
    from admd_edge.engine import EngineBuild

    plan, side = tmp_path / "s.plan", tmp_path / "s.json"
    plan.write_bytes(b"plan")
    info = {"tensorrt_version": "10.9", "gpu_name": "Orin", "build_seconds": 3.5, "cache_key": "k"}
    side.write_text(json.dumps(info))
    art = engine_artifact(EngineBuild(plan, side, "trt10-explicit-qdq", True, info), "onnx_int8", "int8", "cmd")
    assert json.loads(json.dumps(art)) == art  # the ledger stores it as JSON (a dataclass would not go)
    assert art == {"path": str(plan), "sha256": file_sha256(plan), "sidecar": str(side), "precision": "int8",
                   "source": "onnx_int8", "build_path": "trt10-explicit-qdq", "cached": True,
                   "tensorrt_version": "10.9", "gpu_name": "Orin", "build_seconds": 3.5, "checks": [], "command": "cmd"}
