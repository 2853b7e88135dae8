"""The distillation loss registry and the contract every registered loss follows.

A loss is registered under its recipe name (``distill.method``) with :func:`register_loss` and
built per pyramid level with :func:`build_loss`. ``none`` is reserved: it names the baseline
(the student trained alone) and has no loss.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import torch
from torch import Tensor, nn

LOGGER = logging.getLogger(__name__)

NONE = "none"
LOSSES: dict[str, type[nn.Module]] = {}

_M = TypeVar("_M", bound=type[nn.Module])


def register_loss(name: str) -> Callable[[_M], _M]:
    """Class decorator registering a loss under ``name``.

    The class must be an ``nn.Module`` whose constructor takes ``channels`` first, with the class
    attributes ``default_weight`` (float) and ``needs_score`` (bool).

    Args:
        name: The recipe name (``distill.method``).

    Raises:
        ValueError: The name is empty, reserved (``none``) or already registered.
        TypeError: The class is not an ``nn.Module`` or lacks the class attributes.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a loss name must be a non-empty string; got {name!r}")
    if name == NONE:
        raise ValueError(f"the loss name {NONE!r} is reserved for the student trained alone; pick another name")
    if name in LOSSES:
        raise ValueError(
            f"a loss named {name!r} is already registered ({LOSSES[name].__qualname__}); pick another name"
        )

    def decorator(cls: _M) -> _M:
        if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
            raise TypeError(f"register_loss({name!r}) decorates nn.Module subclasses; got {cls!r}")
        if not isinstance(getattr(cls, "default_weight", None), float) or not isinstance(
            getattr(cls, "needs_score", None), bool
        ):
            raise TypeError(
                f"loss {cls.__qualname__} must define class attributes default_weight (float) and needs_score (bool)"
            )
        if name in LOSSES:  # registered between the decorator call and its application
            raise ValueError(f"a loss named {name!r} is already registered; pick another name")
        LOSSES[name] = cls
        return cls

    return decorator


def _load_builtin() -> None:
    # Imported lazily: the loss modules import this module to register themselves.
    import admd_deploy.kd.losses  # noqa: F401


def available_methods() -> list[str]:
    """Sorted names of every registered loss plus ``none`` (the student trained alone)."""
    _load_builtin()
    return sorted([*LOSSES, NONE])


def check_params(owner: str, fn: Callable[..., Any], params: dict[str, Any], skip: int = 0) -> None:
    """Raise ``ValueError`` when ``params`` holds a key ``fn`` does not accept.

    Args:
        owner: What the parameters configure, for the message (e.g. ``"loss 'admd'"``).
        fn: The callable (a class checks its constructor).
        params: The keyword parameters to check.
        skip: How many leading positional parameters are supplied by the caller, not ``params``.
    """
    signature = inspect.signature(fn)
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    accepted = list(signature.parameters.values())[skip:]
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted):
        return
    valid = sorted(p.name for p in accepted if p.kind in kinds)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"{owner} got unknown parameter(s) {', '.join(repr(k) for k in unknown)}; "
            f"valid keys: {', '.join(valid) or '(none)'}"
        )


def build_loss(name: str, channels: int, **params: Any) -> nn.Module:
    """Build the registered loss ``name`` for one pyramid level.

    Args:
        name: A registered loss name (see :func:`available_methods`).
        channels: Teacher channels of that level.
        **params: The loss's keyword parameters (recipe ``distill.params``).

    Returns:
        The loss module (it may hold trainable parameters, e.g. MGD's generator).

    Raises:
        ValueError: Unknown name, ``none``, an unknown parameter or an invalid value.
    """
    _load_builtin()
    if name == NONE:
        raise ValueError(
            f"distill.method {NONE!r} trains the student alone and has no distillation loss; "
            "build no loss (and no KD criterion) for it"
        )
    if name not in LOSSES:
        raise ValueError(f"distill.method must be one of {', '.join(available_methods())}; got {name!r}")
    cls = LOSSES[name]
    check_params(f"distill.params of loss {name!r}", cls, params, skip=1)
    LOGGER.debug("building loss %s(channels=%s, %s)", name, channels, params)
    return cls(channels, **params)


def real_number(owner: str, key: str, value: Any) -> float:
    """Return ``value`` as a float, raising ``TypeError``/``ValueError`` unless it is a finite real number.

    Args:
        owner: What the value configures, for the message.
        key: The parameter name.
        value: The value given.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{owner}: {key} must be a number; got {type(value).__name__} {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{owner}: {key} must be finite; got {value!r}")
    return float(value)


def check_channels(owner: str, channels: Any) -> int:
    """Return ``channels`` if it is a positive int, else raise naming ``owner``."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"{owner}: channels must be a positive int (teacher channels of the level); got {channels!r}")
    return channels


class FeatureLoss(nn.Module):
    """Base of the built-in losses: stores ``channels`` and prepares the (student, teacher) pair.

    ``forward(student, teacher, teacher_score=None)`` checks the shapes, upcasts the aligned
    student map and the detached teacher map (both ``(N, C, H, W)``) to float32 with autocast off,
    and calls ``compute``, which each loss implements and which returns the raw 0-dim term.

    Args:
        channels: Teacher channels of the level.
    """

    default_weight: ClassVar[float] = 1.0
    needs_score: ClassVar[bool] = False

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = check_channels(type(self).__name__, channels)

    def prepare(self, student: Tensor, teacher: Tensor) -> tuple[Tensor, Tensor]:
        """Check the shapes; return the student upcast to float32 and the teacher detached, float32.

        Raises:
            ValueError: The maps are not 4-D, differ in shape, or have not ``channels`` channels.
        """
        if student.ndim != 4 or student.shape != teacher.shape or teacher.shape[1] != self.channels:
            raise ValueError(
                f"{type(self).__name__} expects aligned student and teacher maps of the same shape "
                f"(N, {self.channels}, H, W); got student {tuple(student.shape)}, teacher {tuple(teacher.shape)}"
            )
        return student.float(), teacher.detach().float()

    def forward(self, student: Tensor, teacher: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        """Return the raw loss of the aligned student and the teacher maps, float32 even under AMP.

        Args:
            student: Aligned student map ``(N, C, H, W)``.
            teacher: Teacher map ``(N, C, H, W)`` (detached here).
            teacher_score: Per-location teacher class score ``(N, 1, H, W)``, for losses that use it.
        """
        with fp32(student):
            a, t = self.prepare(student, teacher)
            return self.compute(a, t, teacher_score)

    def compute(self, a: Tensor, t: Tensor, teacher_score: Tensor | None = None) -> Tensor:
        raise NotImplementedError(f"{type(self).__name__} must implement compute(a, t, teacher_score)")


def fp32(tensor: Tensor) -> torch.autocast:
    """An autocast-off context for ``tensor``'s device, so a loss stays in float32 under AMP."""
    return torch.autocast(device_type=tensor.device.type, enabled=False)
