"""The edge runtime scores an ONNX under Ultralytics' validator protocol (multi-label NMS, unclipped boxes).

The model is a hand-built ONNX whose head output is a fixed raw YOLO tensor ``(1, 4 + nc, A)`` with
Ultralytics' metadata, so Ultralytics' ``val()`` and the runtime run the very same file. A tiny trained
YOLO would not do here: after the few epochs a test affords its class scores are all tied and its boxes
overhang the image, so mAP is 0 on both sides whatever the protocol. The fixed head has distinct scores,
boxes inside the image and boxes with a second class above conf 0.001, where the protocols differ.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.slow  # about a minute: Ultralytics val and imports

SIZE, NC, ANCHORS = 64, 3, 40


def raw_head(rng: np.random.Generator) -> np.ndarray:
    """``(1, 4 + NC, ANCHORS)``: boxes (cx, cy, w, h) inside the 64x64 input; each anchor has a best class and,
    for half of them, a second class also above 0.001."""
    pred = np.zeros((4 + NC, ANCHORS), np.float32)
    wh = rng.uniform(8, 24, (2, ANCHORS))
    pred[0:2] = rng.uniform(wh / 2 + 1, SIZE - wh / 2 - 1)
    pred[2:4] = wh
    scores = rng.uniform(0.0001, 0.0009, (NC, ANCHORS))
    best, second = rng.integers(0, NC, ANCHORS), rng.integers(0, NC, ANCHORS)
    scores[best, np.arange(ANCHORS)] = rng.uniform(0.05, 0.95, ANCHORS)
    has_second = (np.arange(ANCHORS) % 2 == 0) & (second != best)
    scores[second[has_second], np.flatnonzero(has_second)] = rng.uniform(0.01, 0.6, has_second.sum())
    pred[4:] = scores
    return pred[None]


def constant_head_onnx(path: Path, head: np.ndarray) -> Path:
    """An ONNX taking ``images`` (1, 3, 64, 64) and returning ``head`` (plus 0 x the input, so it is used)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["head", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes, "constant_head",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, list(head.shape))],
        [numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.zeros(1, np.float32), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    meta = {"task": "detect", "stride": "32", "batch": "1", "imgsz": f"[{SIZE}, {SIZE}]",
            "names": str({i: f"c{i}" for i in range(NC)}), "args": "{'batch': 1, 'half': False, 'nms': False}"}
    for key, value in meta.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="module")
def labelled(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(ONNX, data.yaml): 4 grey 64x64 images, each labelled with a different half of the head's detections,
    second-class ones included, jittered by a pixel."""
    from admd_edge import load_model

    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("edge-protocol")
    onnx = constant_head_onnx(root / "head.onnx", raw_head(rng))
    images, labels = root / "images" / "val", root / "labels" / "val"
    images.mkdir(parents=True)
    labels.mkdir(parents=True)
    det = load_model(onnx, conf=0.001, multi_label=True, clip=False, threads=1)(np.full((SIZE, SIZE, 3), 114, np.uint8))
    for k in range(4):
        cv2.imwrite(str(images / f"{k}.png"), np.full((SIZE, SIZE, 3), 100 + k, np.uint8))
        rows = []
        for cls, box in list(zip(det.class_ids.tolist(), det.boxes))[k % 2 :: 2]:
            x1, y1, x2, y2 = np.clip(box + rng.normal(0, 1.0, 4), 0, SIZE)
            rows.append(f"{cls} {(x1 + x2) / 2 / SIZE:.6f} {(y1 + y2) / 2 / SIZE:.6f} {(x2 - x1) / SIZE:.6f} "
                        f"{(y2 - y1) / SIZE:.6f}")
        (labels / f"{k}.txt").write_text("\n".join(rows) + "\n")
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(root), "train": "images/val", "val": "images/val",
                                    "names": {i: f"c{i}" for i in range(NC)}}))
    return onnx, data


def test_edge_multi_label_map_equals_ultralytics_val_of_the_same_onnx(labelled):
    from admd_deploy.pipeline.evaluate import val_metrics
    from admd_deploy.pipeline.verify import EDGE_VAL, edge_metrics
    from admd_edge import load_model

    onnx, data = labelled
    ultralytics = val_metrics(onnx, str(data), SIZE, 1, "cpu")
    multi = edge_metrics(onnx, str(data), "detect", SIZE)
    single = edge_metrics(onnx, str(data), "detect", SIZE, multi_label=False)
    assert 0.2 < ultralytics["map50_95"] < 0.99  # a real score, neither two zeros nor two perfect scores agreeing
    for key in ("map50", "map50_95"):
        assert multi[key] == pytest.approx(ultralytics[key], abs=1e-4), key
    # the one-label decode is the other protocol: it misses the second-class boxes the labels hold
    assert ultralytics["map50"] - single["map50"] > 0.05
    # the paper metric scores the very same predictions again (every multi-label detection, no second run)
    det = load_model(onnx, **EDGE_VAL, multi_label=True, clip=False, threads=1)
    n_dets = sum(len(det(cv2.imread(str(p))).scores) for p in sorted((data.parent / "images" / "val").iterdir()))
    paper = multi["paper"]
    assert sum(c["ndet"] for c in paper["per_class"].values()) == n_dets
    assert (paper["protocol"], paper["iou_kind"], paper["ap_kind"]) == ("dior", "box", "voc07")
    assert 0.2 < paper["map50"] <= 1.0
