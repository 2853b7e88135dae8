"""Read what the runtime needs from an ONNX file without the ``onnx`` package.

A minimal protobuf walk over ``ModelProto``: ``metadata_props`` (field 14), and in ``graph`` (field 7) the
node op types and ``Cast`` targets, the initializer element types and the input element types. Enough to
take Ultralytics' metadata into an engine sidecar and to tell an FP16 or Q/DQ (explicitly quantized) ONNX
from a plain FP32 one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

FLOAT16 = 10  # onnx.TensorProto.FLOAT16
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})


def _varint(buf: memoryview, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[i]
        value |= (byte & 0x7F) << shift
        i += 1
        if not byte & 0x80:
            return value, i
        shift += 7


def fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` of a protobuf message: ints for varints, memoryviews for the rest."""
    i, n = 0, len(buf)
    while i < n:
        tag, i = _varint(buf, i)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, i = _varint(buf, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(buf, i)
            yield number, buf[i : i + size]
            i += size
        elif wire == 1:
            yield number, buf[i : i + 8]
            i += 8
        elif wire == 5:
            yield number, buf[i : i + 4]
            i += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}: not an ONNX model?")


@dataclass(frozen=True)
class OnnxSummary:
    """What :func:`summarize_onnx` found.

    Attributes:
        metadata: ``metadata_props`` as strings.
        op_types: Every node op type in the main graph.
        has_qdq: Q/DQ nodes present (explicit quantization).
        has_fp16: FP16 initializers, inputs or casts present.
        inputs: Graph inputs that are not initializers, as ``(name, dims)``; a dim is an int, or a str/None
            when dynamic.
    """

    metadata: dict[str, str]
    op_types: frozenset[str]
    has_qdq: bool
    has_fp16: bool
    inputs: tuple[tuple[str, tuple[int | str | None, ...]], ...] = ()


def _cast_to(node: memoryview) -> int | None:
    for number, attr in fields(node):
        if number == 5 and isinstance(attr, memoryview):
            parts = dict(fields(attr))
            if bytes(parts.get(1, b"")) == b"to":
                return int(parts.get(3, 0))
    return None


def summarize_onnx(path: str | Path) -> OnnxSummary:
    """Metadata, op types and precision markers of an ONNX file.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a protobuf ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"ONNX model not found: {path}")
    metadata: dict[str, str] = {}
    ops: set[str] = set()
    fp16 = False
    inputs: list[tuple[str, tuple[int | str | None, ...]]] = []
    model = memoryview(path.read_bytes())
    try:
        for number, value in fields(model):
            if number == 14 and isinstance(value, memoryview):
                entry = dict(fields(value))
                metadata[bytes(entry.get(1, b"")).decode()] = bytes(entry.get(2, b"")).decode()
            elif number == 7 and isinstance(value, memoryview):
                ops_found, fp16, inputs = _scan_graph(value)
                ops |= ops_found
    except (IndexError, UnicodeDecodeError) as err:
        raise ValueError(f"{path} is not a readable ONNX model: {err}") from err
    return OnnxSummary(metadata, frozenset(ops), bool(ops & QDQ_OPS), fp16, tuple(inputs))


def _scan_graph(graph: memoryview) -> tuple[set[str], bool, list[tuple[str, tuple[int | str | None, ...]]]]:
    """Node op types of a GraphProto, whether it holds FP16 initializers/inputs/casts, and its real inputs."""
    ops: set[str] = set()
    fp16 = False
    initializers: set[str] = set()
    inputs: list[tuple[str, tuple[int | str | None, ...]]] = []
    for number, value in fields(graph):
        if not isinstance(value, memoryview):
            continue
        if number == 1:  # node
            op = bytes(dict(fields(value)).get(4, b"")).decode()
            ops.add(op)
            fp16 |= op == "Cast" and _cast_to(value) == FLOAT16
        elif number == 5:  # initializer
            tensor = dict(fields(value))
            fp16 |= tensor.get(2) == FLOAT16
            initializers.add(bytes(tensor.get(8, b"")).decode())
        elif number == 11:  # input
            elem, name, dims = _value_info(value)
            fp16 |= elem == FLOAT16
            inputs.append((name, dims))
    return ops, fp16, [(name, dims) for name, dims in inputs if name not in initializers]


def _value_info(value_info: memoryview) -> tuple[int | None, str, tuple[int | str | None, ...]]:
    """Element type, name and dims of a ValueInfoProto (tensor types only)."""
    info = dict(fields(value_info))
    name = bytes(info.get(1, b"")).decode()
    type_proto = info.get(2)
    tensor = dict(fields(type_proto)).get(1) if isinstance(type_proto, memoryview) else None
    if not isinstance(tensor, memoryview):
        return None, name, ()
    tensor_fields = dict(fields(tensor))
    elem = tensor_fields.get(1)
    dims: list[int | str | None] = []
    shape = tensor_fields.get(2)
    if isinstance(shape, memoryview):
        for number, dim in fields(shape):
            if number == 1 and isinstance(dim, memoryview):
                d = dict(fields(dim))
                value = d.get(1)
                dims.append(int(value) if isinstance(value, int) else (bytes(d[2]).decode() if 2 in d else None))
    return (int(elem) if isinstance(elem, int) else None), name, tuple(dims)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
