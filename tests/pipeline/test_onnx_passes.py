"""The DFL rewrite: hand-made graphs with hand-computed expectations, then real Ultralytics exports."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from admd_deploy.pipeline.onnx_passes import fast_dfl

C, A = 16, 6  # DFL bins, anchors


def _dfl_graph(opset: int = 17, *, weight: np.ndarray | None = None, perm=(0, 2, 1, 3), axis: int = 1) -> onnx.ModelProto:
    """Ultralytics' DFL as exported: (b, 4C, A) -> Reshape(b,4,C,A) -> Transpose -> Softmax -> Conv(arange) -> (b,4,A)."""
    w = np.arange(C, dtype=np.float32).reshape(1, C, 1, 1) if weight is None else weight
    inits = [numpy_helper.from_array(np.array([0, 4, C, -1], np.int64), "shape4"),
             numpy_helper.from_array(np.array([0, 4, -1], np.int64), "shape3"),
             numpy_helper.from_array(w, "dfl.conv.weight")]
    nodes = [helper.make_node("Reshape", ["x", "shape4"], ["x4"], name="/model.23/dfl/Reshape"),
             helper.make_node("Transpose", ["x4"], ["t"], name="/model.23/dfl/Transpose", perm=list(perm)),
             helper.make_node("Softmax", ["t"], ["p"], name="/model.23/dfl/Softmax", axis=axis),
             helper.make_node("Conv", ["p", "dfl.conv.weight"], ["c"], name="/model.23/dfl/conv/Conv"),
             helper.make_node("Reshape", ["c", "shape3"], ["y"], name="/model.23/dfl/Reshape_1")]
    graph = helper.make_graph(nodes, "dfl", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["b", 4 * C, A])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["b", 4, A])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"x": x})[0]


def _logits(batch: int, hot: dict[tuple[int, int], int] | None = None, value: float = 0.0) -> np.ndarray:
    """(batch, 4C, A) zeros, with ``value`` at bin ``hot[(side, anchor)]`` of those sides and anchors."""
    x = np.zeros((batch, 4, C, A), np.float32)
    for (side, anchor), b in (hot or {}).items():
        x[:, side, b, anchor] = value
    return x.reshape(batch, 4 * C, A)


@pytest.mark.parametrize("opset", [17, 18])
def test_the_rewrite_gives_the_expected_bin_hand_computed(opset):
    model = _dfl_graph(opset)
    assert fast_dfl(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node if "Softmax" in n.op_type or n.op_type == "Conv"] == []
    # equal logits: the mean of 0..15 is 7.5; one logit 1000 above the rest (exp overflows without the max
    # shift): exactly that bin; two equal hot bins 3 and 9: 6.
    x = _logits(2, {(0, 0): 5, (1, 1): 15, (2, 2): 3, (2, 3): 9}, value=1000.0)
    y = _run(model, x)
    assert y.shape == (2, 4, A)
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[:, 0, 0], 5.0, atol=1e-5)
    np.testing.assert_allclose(y[:, 1, 1], 15.0, atol=1e-5)
    np.testing.assert_allclose(y[:, 3, :], 7.5, atol=1e-5)
    np.testing.assert_allclose(y[:, 2, 4:], 7.5, atol=1e-5)
    assert y[0, 2, 2] == pytest.approx(3.0, abs=1e-5) and y[0, 2, 3] == pytest.approx(9.0, abs=1e-5)


def test_the_rewrite_matches_the_original_graph_on_random_logits():
    original = _dfl_graph()
    rewritten = _dfl_graph()
    fast_dfl(rewritten)
    x = np.random.default_rng(0).normal(0, 6, (3, 4 * C, A)).astype(np.float32)
    np.testing.assert_allclose(_run(rewritten, x), _run(original, x), rtol=1e-5, atol=1e-5)


def test_two_hot_bins_average():
    model = _dfl_graph()
    fast_dfl(model)
    x = _logits(1).reshape(1, 4, C, A)
    x[0, 0, [3, 9], 0] = 50.0  # two equal winners: their mean, 6
    assert _run(model, x.reshape(1, 4 * C, A))[0, 0, 0] == pytest.approx(6.0, abs=1e-5)


@pytest.mark.parametrize("change", ["weight", "perm", "axis", "opset"])
def test_a_graph_that_is_not_a_dfl_is_left_alone(change):
    # opset 12: Softmax(axis=1) normalises over dims 1.. together, so the graph is not a per-bin softmax
    kwargs = {"weight": {"weight": np.ones((1, C, 1, 1), np.float32)}, "perm": {"perm": (0, 1, 3, 2)},
              "axis": {"axis": 2}, "opset": {"opset": 12}}[change]
    model = _dfl_graph(**kwargs)
    before = model.SerializeToString()
    assert fast_dfl(model) == 0
    assert model.SerializeToString() == before


@pytest.mark.parametrize("yaml", ["yolo11n.yaml", "yolo11n-obb.yaml"])
def test_a_real_export_is_rewritten_with_the_same_outputs(tmp_path, yolo_home, yaml, monkeypatch):
    from admd_deploy.pipeline.exporting import applied_passes, head_decode_nodes, onnx_from_checkpoint

    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # Ultralytics exports a YAML-built model into the working directory

    kw = dict(imgsz=64, batch=1, dynamic=False, opset=17, simplify=True)
    plain = onnx_from_checkpoint(yaml, tmp_path / "plain.onnx", fast_dfl=False, **kw)
    fast = onnx_from_checkpoint(yaml, tmp_path / "fast.onnx", **kw)
    assert applied_passes(fast) == {"fast_dfl": 1} and applied_passes(plain) == {}
    assert list(workdir.iterdir()) == []  # the exporter ran in a scratch folder
    softmaxes = {p: [n.name for n in onnx.load(str(p)).graph.node if n.op_type == "Softmax"] for p in (plain, fast)}
    assert [n for n in softmaxes[plain] if n not in softmaxes[fast]] == ["/model.23/dfl/Softmax"]
    assert any("/dfl/fast_dfl/" in n for n in head_decode_nodes(fast))  # stays float in the INT8 CPU model
    # Same weights for the output check (two builds from a YAML differ in their random init): rewrite ``plain``.
    model = onnx.load(str(plain))
    model = onnx.shape_inference.infer_shapes(model)  # value_info present: stale shapes would fail the check
    assert fast_dfl(model) == 1
    onnx.checker.check_model(model, full_check=True)
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    run = [ort.InferenceSession(m, providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
           for m in (str(plain), model.SerializeToString())]
    np.testing.assert_allclose(run[1], run[0], rtol=1e-4, atol=1e-3)


def test_a_dynamic_export_is_rewritten_for_every_batch_and_size(tmp_path, yolo_home, monkeypatch):
    from admd_deploy.pipeline.exporting import onnx_from_checkpoint

    monkeypatch.chdir(tmp_path)
    plain = onnx_from_checkpoint("yolo11n-obb.yaml", tmp_path / "plain.onnx", imgsz=64, batch=1, dynamic=True, opset=17,
                                 simplify=True, fast_dfl=False)
    model = onnx.load(str(plain))
    assert fast_dfl(model) == 1
    onnx.checker.check_model(model, full_check=True)
    sessions = [ort.InferenceSession(m, providers=["CPUExecutionProvider"]) for m in (str(plain), model.SerializeToString())]
    for shape in ((2, 3, 64, 64), (1, 3, 96, 128)):
        x = np.random.default_rng(0).random(shape, dtype=np.float32)
        ref, new = (s.run(None, {"images": x})[0] for s in sessions)
        assert new.shape == ref.shape
        np.testing.assert_allclose(new, ref, rtol=1e-4, atol=1e-3)


def _cast_graph(*, x_type: int = TensorProto.FLOAT, second_reader: bool = False, at_output: bool = False) -> onnx.ModelProto:
    """x -> Sigmoid (or Identity for a non-float x) -> Cast(fp16) -> Cast(fp32) -> Exp -> y, as the float16
    converter leaves two float32 nodes in a row (``at_output``: the pair writes the graph output y)."""
    first = "Sigmoid" if x_type == TensorProto.FLOAT else "Identity"
    nodes = [helper.make_node(first, ["x"], ["s"], name="first"),
             helper.make_node("Cast", ["s"], ["s16"], name="down", to=TensorProto.FLOAT16),
             helper.make_node("Cast", ["s16"], ["y" if at_output else "s32"], name="up", to=TensorProto.FLOAT)]
    if not at_output:
        nodes.append(helper.make_node("Exp", ["s32"], ["y"], name="exp"))
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])]
    if second_reader:  # the float16 value is also read elsewhere: the pair must stay
        nodes.append(helper.make_node("Identity", ["s16"], ["z"], name="other"))
        outputs.append(helper.make_tensor_value_info("z", TensorProto.FLOAT16, [3]))
    graph = helper.make_graph(nodes, "casts", [helper.make_tensor_value_info("x", x_type, [3])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def test_a_float16_round_trip_between_float32_nodes_is_removed():
    from admd_deploy.pipeline.onnx_passes import drop_cast_round_trips

    model = _cast_graph()
    assert drop_cast_round_trips(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Sigmoid", "Exp"]
    x = np.array([0.1, 1.3, -2.7], np.float32)
    y = _run(model, x)
    # no float16 rounding left: the float32 chain exp(sigmoid(x)), not exp(float16(sigmoid(x)))
    exact = np.exp(1 / (1 + np.exp(-x)))
    rounded = np.exp(np.float16(1 / (1 + np.exp(-x))).astype(np.float32))
    assert np.abs(y - exact).max() < 1e-6 < np.abs(rounded - exact).max()


def test_a_round_trip_into_a_graph_output_becomes_an_identity():
    from admd_deploy.pipeline.onnx_passes import drop_cast_round_trips

    model = _cast_graph(at_output=True)
    assert drop_cast_round_trips(model) == 1
    onnx.checker.check_model(model, full_check=True)
    assert [n.op_type for n in model.graph.node] == ["Sigmoid", "Identity"]
    x = np.array([0.1, 1.3, -2.7], np.float32)
    assert np.abs(_run(model, x) - 1 / (1 + np.exp(-x))).max() < 1e-6  # float32, not rounded to float16


@pytest.mark.parametrize("case", ["int64 input", "second reader"])
def test_a_cast_pair_that_is_not_a_float32_round_trip_stays(case):
    from admd_deploy.pipeline.onnx_passes import drop_cast_round_trips

    model = _cast_graph(x_type=TensorProto.INT64) if case == "int64 input" else _cast_graph(second_reader=True)
    assert drop_cast_round_trips(model) == 0
    assert [n.op_type for n in model.graph.node].count("Cast") == 2


def test_toposort_orders_nodes_and_names_what_is_missing():
    from admd_deploy.pipeline.onnx_passes import toposort

    model = _cast_graph()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    toposort(model.graph)
    assert [n.name for n in model.graph.node] == ["first", "down", "up", "exp"]
    model.graph.node[0].input[0] = "nowhere"
    with pytest.raises(ValueError, match="nowhere"):
        toposort(model.graph)


@pytest.mark.parametrize("yaml", ["yolo11n.yaml", "yolo11n-obb.yaml"])
def test_the_fp16_export_keeps_float32_io_and_a_float32_decode(tmp_path, yolo_home, monkeypatch, yaml):
    from admd_deploy.pipeline.exporting import check_onnx, fp16_onnx_from_onnx, head_decode_nodes, onnx_from_checkpoint

    monkeypatch.chdir(tmp_path)
    fp32 = onnx_from_checkpoint(yaml, tmp_path / "m.onnx", imgsz=64, batch=1, dynamic=False, opset=17, simplify=True)
    fp16 = fp16_onnx_from_onnx(fp32, tmp_path / "m.fp16.onnx")
    assert check_onnx(fp16)["passed"]
    graph = onnx.load(str(fp16)).graph
    assert [i.type.tensor_type.elem_type for i in (*graph.input, *graph.output)] == [TensorProto.FLOAT] * 2
    weights = {t.name: t.data_type for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv" and "/dfl/" not in n.name]
    assert convs and all(weights[n.input[1]] == TensorProto.FLOAT16 for n in convs)
    # the decode runs in float32 from end to end: no float16 round trip is left between two decode nodes
    decode = set(head_decode_nodes(fp16))
    producer = {o: n for n in graph.node for o in n.output}
    casts = [n for n in graph.node if n.op_type == "Cast"]
    assert not any(producer.get(n.input[0]) is not None and producer[n.input[0]].op_type == "Cast" for n in casts)
    assert len(casts) < len(decode)
    assert producer[graph.output[0].name].op_type == "Identity"  # the float32 output is not rounded to float16
    # the edge package's engine builder takes it down TensorRT 11's strongly typed path for an fp16 engine
    from admd_edge.engine import TRT11_STRONG, build_path
    from admd_edge.onnx_proto import summarize_onnx

    summary = summarize_onnx(fp16)
    assert summary.has_fp16 and not summary.has_qdq
    assert build_path(11, "fp16", summary.has_qdq, summary.has_fp16) == TRT11_STRONG
    x = np.random.default_rng(0).random((1, 3, 64, 64), dtype=np.float32)
    ref, half = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"images": x})[0]
                 for p in (fp32, fp16))
    scores = slice(4, ref.shape[1] - (1 if "obb" in yaml else 0))  # class probabilities (obb: the last row is the angle)
    assert np.abs(half[:, scores] - ref[:, scores]).max() < 0.02
    np.testing.assert_allclose(half[:, :4], ref[:, :4], rtol=0.02, atol=0.5)
