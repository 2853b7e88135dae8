"""What a model says about itself: task, input size, class names, stride.

Ultralytics' exporter writes ``metadata_props`` into the ONNX as ``str(value)`` (``imgsz`` ``"[640, 640]"``,
``names`` ``"{0: 'plane', ...}"``), so values are parsed with :func:`ast.literal_eval`. The same fields come
typed from a bundle's ``manifest.json`` or an engine sidecar; :class:`ModelInfo` accepts both.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LOGGER = logging.getLogger(__name__)

TASKS = ("detect", "obb")


def _literal(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return value


def parse_names(names: Any) -> dict[int, str]:
    """Class names as ``{id: name}`` from a dict (int or str keys), a list, or their string form.

    Raises:
        ValueError: If the names cannot be read as a mapping or list.
    """
    names = _literal(names)
    if isinstance(names, Mapping):
        try:
            return {int(k): str(v) for k, v in names.items()}
        except (TypeError, ValueError) as err:
            raise ValueError(f"class names must have integer ids; got keys {list(names)[:5]}") from err
    if isinstance(names, Sequence) and not isinstance(names, (str, bytes)):
        return {i: str(v) for i, v in enumerate(names)}
    raise ValueError(f"class names must be a dict {{id: name}} or a list; got {names!r}")


def parse_imgsz(imgsz: Any) -> tuple[int, int]:
    """Input size ``(h, w)`` from an int, a pair, or their string form.

    Raises:
        ValueError: If it is not one or two positive integers.
    """
    value = _literal(imgsz)
    if isinstance(value, int):
        value = (value, value)
    if isinstance(value, Sequence) and len(value) == 1:
        value = (value[0], value[0])
    if not (isinstance(value, Sequence) and len(value) == 2 and all(isinstance(v, int) and v > 0 for v in value)):
        raise ValueError(f"imgsz must be a positive int or [h, w]; got {imgsz!r}")
    return int(value[0]), int(value[1])


@dataclass(frozen=True)
class ModelInfo:
    """Model facts the runtime needs.

    Attributes:
        task: ``"detect"`` or ``"obb"``.
        names: Class names by id.
        imgsz: Network input ``(h, w)``, or None when only the runner's input shape knows it.
        stride: Largest model stride.
        end2end: Whether the model already ran NMS (outputs ``(N, K, 6 + extra)``).
        extra: Every other metadata field, parsed where possible.
    """

    task: str
    names: dict[int, str]
    imgsz: tuple[int, int] | None = None
    stride: int = 32
    end2end: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(
                f"task must be one of {', '.join(TASKS)}; got {self.task!r} (this runtime decodes detect/obb)"
            )

    @classmethod
    def from_metadata(cls, meta: Mapping[str, Any]) -> ModelInfo:
        """Read Ultralytics metadata (ONNX ``metadata_props`` strings or typed JSON values).

        Raises:
            ValueError: If ``names`` is missing or a field is malformed.
        """
        if "names" not in meta:
            raise ValueError(
                "model metadata has no 'names': export with Ultralytics (it writes names/imgsz/task/stride) "
                "or load the model from a bundle whose manifest.json carries them"
            )
        end2end = _literal(meta.get("end2end", False))
        return cls(
            task=str(meta.get("task", "detect")),
            names=parse_names(meta["names"]),
            imgsz=parse_imgsz(meta["imgsz"]) if meta.get("imgsz") is not None else None,
            stride=int(_literal(meta.get("stride", 32))),
            end2end=bool(end2end is True or str(end2end).lower() == "true"),
            extra={k: _literal(v) for k, v in meta.items() if k not in ("task", "names", "imgsz", "stride", "end2end")},
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (names keyed by strings, as JSON requires)."""
        return {
            "task": self.task,
            "imgsz": list(self.imgsz) if self.imgsz else None,
            "names": {str(k): v for k, v in self.names.items()},
            "stride": self.stride,
            "end2end": self.end2end,
        }
