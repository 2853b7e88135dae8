"""The INT8 CPU model's exclusion list, on hand-made graphs (no export needed)."""

from __future__ import annotations

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
