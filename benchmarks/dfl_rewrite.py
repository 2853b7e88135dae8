"""The DFL decode alone, as Ultralytics exports it and after ``onnx_passes.fast_dfl``: time and agreement.

    python benchmarks/dfl_rewrite.py                 # anchors of 256 px (1344) and 640 px (8400) inputs

Builds Ultralytics' DFL subgraph, ``(1, 64, A) -> Reshape(1,4,16,A) -> Transpose(0,2,1,3) -> Softmax(axis=1)
-> Conv(arange(16)) -> Reshape(1,4,A)``, rewrites a copy with the pipeline's own pass, and times both with
ONNX Runtime on CPU, interleaved in rounds (the machine is noisy). The whole-model effect is in
``benchmarks/int8_speed.py``'s "as Ultralytics exports it" row.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def dfl_graph(anchors: int, bins: int = 16):
    from onnx import TensorProto, helper, numpy_helper

    inits = [numpy_helper.from_array(np.array([1, 4, bins, anchors], np.int64), "shape4"),
             numpy_helper.from_array(np.array([1, 4, anchors], np.int64), "shape3"),
             numpy_helper.from_array(np.arange(bins, dtype=np.float32).reshape(1, bins, 1, 1), "w")]
    nodes = [helper.make_node("Reshape", ["x", "shape4"], ["x4"], name="/model.23/dfl/Reshape"),
             helper.make_node("Transpose", ["x4"], ["t"], name="/model.23/dfl/Transpose", perm=[0, 2, 1, 3]),
             helper.make_node("Softmax", ["t"], ["p"], name="/model.23/dfl/Softmax", axis=1),
             helper.make_node("Conv", ["p", "w"], ["c"], name="/model.23/dfl/conv/Conv"),
             helper.make_node("Reshape", ["c", "shape3"], ["y"], name="/model.23/dfl/Reshape_1")]
    graph = helper.make_graph(nodes, "dfl", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4 * bins, anchors])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, anchors])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--anchors", type=int, nargs="+", default=[1344, 8400])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    import onnx
    import onnxruntime as ort

    from admd_deploy.pipeline.onnx_passes import fast_dfl

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    print(f"onnxruntime {ort.__version__}, {args.threads} threads, {args.rounds}x{args.runs} runs each, interleaved")
    print("| anchors | Ultralytics' DFL ms | rewritten ms | speed-up | max abs difference |\n|---|---|---|---|---|")
    for anchors in args.anchors:
        plain = dfl_graph(anchors)
        fast = onnx.ModelProto()
        fast.CopyFrom(plain)
        assert fast_dfl(fast) == 1
        sessions = [ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
                    for m in (plain, fast)]
        x = np.random.default_rng(0).normal(0, 4, (1, 64, anchors)).astype(np.float32)
        outs = [s.run(None, {"x": x})[0] for s in sessions]
        times: list[list[float]] = [[], []]
        for _ in range(args.rounds):
            for k, sess in enumerate(sessions):
                for _ in range(5):
                    sess.run(None, {"x": x})
                for _ in range(args.runs):
                    t = time.perf_counter()
                    sess.run(None, {"x": x})
                    times[k].append((time.perf_counter() - t) * 1e3)
        a, b = (statistics.median(t) for t in times)
        print(f"| {anchors} | {a:.3f} | {b:.3f} | {a / b:.1f}x | {float(np.abs(outs[0] - outs[1]).max()):.1e} |")


if __name__ == "__main__":
    main()
