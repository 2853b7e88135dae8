"""Graph rewrites applied to the exported ONNX: same outputs, faster on the runtimes we ship to.

``fast_dfl``: Ultralytics exports the head's Distribution Focal Loss decode as
``Reshape(b,4,c,A) -> Transpose(0,2,1,3) -> Softmax(axis=1) -> Conv(1x1, weight arange(c))``: a softmax
over a non-last axis, which ONNX Runtime's CPU kernel runs as transpose, per-row softmax over rows of
``c = 16`` and transpose back. On this project's 2-core CPU it is the single most expensive node of a
256-px nano model (about 0.5 ms of 5) and costs about 4.8 ms at 640 px. The pass computes the same
expectation, ``sum_i i * softmax(x)_i``, without the transposes:

    m = ReduceMax(x4, axis=2)         # (b,4,1,A), for a softmax that cannot overflow
    e = Exp(x4 - m)                   # (b,4,c,A), every value in (0, 1]
    y = MatMul(arange(c), e) / MatMul(ones(c), e)   # (b,4,1,A); the denominator is >= 1
    Transpose(0,2,1,3) -> (b,1,4,A)  # the Conv's output shape, so the graph after it is untouched

Matching is structural (op types, the Transpose's perm, the Softmax axis, the Conv's constant
arange weight and default attributes), not by node names, and the new nodes keep the Softmax's name
scope (``/model.23/dfl/...``) so that the INT8 CPU export still finds them in the head's decode. Every
export is parity-checked against PyTorch afterwards, so a wrong rewrite fails a gate.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np


def _attr(node: Any, name: str, default: Any) -> Any:
    from onnx import helper

    for a in node.attribute:
        if a.name == name:
            return helper.get_attribute_value(a)
    return default


def _opset(model: Any) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _arange_weight(conv: Any, inits: dict[str, Any]) -> int | None:
    """``c`` when ``conv`` is a bias-free 1x1 Conv from c channels to 1 whose weight is ``arange(c)``."""
    from onnx import numpy_helper

    if len(conv.input) != 2 or conv.input[1] not in inits:
        return None
    if any(_attr(conv, k, d) != d for k, d in (("group", 1), ("strides", [1, 1]), ("dilations", [1, 1]),
                                              ("pads", [0, 0, 0, 0]))):
        return None
    if _attr(conv, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        return None
    w = numpy_helper.to_array(inits[conv.input[1]])
    if w.dtype != np.float32 or w.ndim != 4 or w.shape[0] != 1 or w.shape[2:] != (1, 1):
        return None
    c = w.shape[1]
    return c if np.array_equal(w.reshape(c), np.arange(c, dtype=w.dtype)) else None


def fast_dfl(model: Any) -> int:
    """Rewrite every DFL decode of ``model`` (an ``onnx.ModelProto``, changed in place); returns how many."""
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = _opset(model)
    inits = {t.name: t for t in graph.initializer}
    producer = {out: n for n in graph.node for out in n.output}
    consumers: dict[str, list[Any]] = defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n)
    graph_outputs = {o.name for o in graph.output}

    rewrites: list[tuple[Any, Any, Any, int]] = []
    if opset < 13:  # before opset 13, Softmax(axis=1) normalises over all of dims 1.., not over one axis
        return 0
    for softmax in graph.node:
        if softmax.op_type != "Softmax" or _attr(softmax, "axis", -1) != 1:
            continue
        transpose = producer.get(softmax.input[0])
        if transpose is None or transpose.op_type != "Transpose" or list(_attr(transpose, "perm", [])) != [0, 2, 1, 3]:
            continue
        users = consumers[softmax.output[0]]
        if len(users) != 1 or users[0].op_type != "Conv" or len(consumers[transpose.output[0]]) != 1:
            continue
        if {transpose.output[0], softmax.output[0]} & graph_outputs:
            continue
        c = _arange_weight(users[0], inits)
        if c is not None:
            rewrites.append((transpose, softmax, users[0], c))

    for k, (transpose, softmax, conv, c) in enumerate(rewrites):
        scope = softmax.name.rsplit("/", 1)[0] + "/" if "/" in softmax.name else f"dfl{k}/"
        p, x4 = f"{scope}fast_dfl", transpose.input[0]
        weights = {f"{p}/arange": np.arange(c, dtype=np.float32).reshape(1, c),
                   f"{p}/ones": np.ones((1, c), dtype=np.float32)}
        reduce_max = (helper.make_node("ReduceMax", [x4], [f"{p}/max"], name=f"{p}/ReduceMax", axes=[2], keepdims=1)
                      if opset < 18 else
                      helper.make_node("ReduceMax", [x4, f"{p}/axes"], [f"{p}/max"], name=f"{p}/ReduceMax", keepdims=1))
        if opset >= 18:
            weights[f"{p}/axes"] = np.array([2], dtype=np.int64)
        nodes = [
            reduce_max,
            helper.make_node("Sub", [x4, f"{p}/max"], [f"{p}/shifted"], name=f"{p}/Sub"),
            helper.make_node("Exp", [f"{p}/shifted"], [f"{p}/exp"], name=f"{p}/Exp"),
            helper.make_node("MatMul", [f"{p}/arange", f"{p}/exp"], [f"{p}/num"], name=f"{p}/MatMul_num"),
            helper.make_node("MatMul", [f"{p}/ones", f"{p}/exp"], [f"{p}/den"], name=f"{p}/MatMul_den"),
            helper.make_node("Div", [f"{p}/num", f"{p}/den"], [f"{p}/mean"], name=f"{p}/Div"),
            helper.make_node("Transpose", [f"{p}/mean"], [conv.output[0]], name=f"{p}/Transpose", perm=[0, 2, 1, 3]),
        ]
        graph.initializer.extend(numpy_helper.from_array(v, name) for name, v in weights.items())
        at = list(graph.node).index(transpose)  # x4 is produced before the Transpose: a valid topological slot
        for node in (transpose, softmax, conv):
            graph.node.remove(node)
        for i, node in enumerate(nodes):
            graph.node.insert(at + i, node)
        if not any(conv.input[1] in n.input for n in graph.node):
            graph.initializer.remove(inits[conv.input[1]])
    removed = {name for transpose, softmax, _, _ in rewrites for name in (transpose.output[0], softmax.output[0])}
    for v in [v for v in graph.value_info if v.name in removed]:  # shapes of values that no longer exist
        graph.value_info.remove(v)
    return len(rewrites)


def toposort(graph: Any) -> None:
    """Reorder ``graph.node`` topologically (in place), keeping the original order among ready nodes.

    Raises:
        ValueError: A node reads a value that nothing produces (or the graph has a cycle).
    """
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            missing = sorted({i for n in waiting for i in n.input if i not in ready})
            raise ValueError(f"graph cannot be ordered: {len(waiting)} nodes wait on {missing[:5]}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def drop_cast_round_trips(model: Any) -> int:
    """Remove ``Cast(to=FLOAT16) -> Cast(to=FLOAT)`` pairs whose middle value has no other reader; returns how many.

    ``onnxruntime.transformers.float16`` keeps a blocked node in float32 by casting its inputs up and its
    outputs down, so two blocked nodes in a row (the head's decode) pass every value through float16 and
    back: a rounding at each step of what should be a float32 chain, and with ``keep_io_types`` the float32
    output too. Bypassing the pair only removes that rounding: the consumers read the float32 value the pair
    started from, and a graph output gets it through an ``Identity``.
    """
    from onnx import TensorProto, helper, shape_inference

    graph = model.graph
    inferred = shape_inference.infer_shapes(model).graph
    elem_type = {v.name: v.type.tensor_type.elem_type for v in [*inferred.value_info, *inferred.input, *inferred.output]}
    elem_type.update({t.name: t.data_type for t in graph.initializer})
    producer = {o: n for n in graph.node for o in n.output}
    readers: dict[str, int] = defaultdict(int)
    for n in graph.node:
        for i in n.input:
            readers[i] += 1
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    dead: list[Any] = []
    identities: list[Any] = []
    for up in graph.node:
        if up.op_type != "Cast" or _attr(up, "to", None) != TensorProto.FLOAT:
            continue
        down = producer.get(up.input[0])
        if down is None or down.op_type != "Cast" or _attr(down, "to", None) != TensorProto.FLOAT16:
            continue
        if elem_type.get(down.input[0]) != TensorProto.FLOAT or readers[down.output[0]] != 1:
            continue  # only a float32 value that nothing else reads in float16
        if down.output[0] in outputs:
            continue
        if up.output[0] in outputs:  # a graph output keeps its name: an Identity stands in for the pair
            identities.append(helper.make_node("Identity", [down.input[0]], [up.output[0]], name=up.name))
        else:
            rename[up.output[0]] = down.input[0]
        dead += [down, up]
    graph.node.extend(identities)  # last: after their input's producer (graph outputs are read by no node)
    for n in graph.node:
        for k, i in enumerate(n.input):
            while i in rename:  # chained pairs resolve to the first float32 value
                i = rename[i]
            n.input[k] = i
    for n in dead:
        graph.node.remove(n)
    gone = {o for n in dead for o in n.output} - {n.output[0] for n in identities}
    for v in [v for v in graph.value_info if v.name in gone]:
        graph.value_info.remove(v)
    return len(dead) // 2
