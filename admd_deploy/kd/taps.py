"""Feature taps: capture the feature maps a module receives, only while the tap is open.

A tap is a context manager around one forward pass. Its hook handles are removed on exit, so
no hook survives into a deep copy (the EMA), a pickle (a checkpoint), DDP or an export: a
checkpoint of the student never references this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import Tensor, nn


class FeatureTap:
    """Record the input feature list (and optionally the output) of ``module`` during a forward.

    Example:
        >>> with FeatureTap(model.model[-1]) as tap:  # the detection head
        ...     model(images)
        >>> p3, p4, p5 = tap.features

    Args:
        module: The module whose first positional input is a tensor or a list of tensors.
        keep_output: Also record the module's output (the teacher's class scores come from it).
    """

    def __init__(self, module: nn.Module, keep_output: bool = False) -> None:
        self.module = module
        self.keep_output = keep_output
        self.features: list[Tensor] | None = None
        self.output: Any = None
        self._handles: list[Any] = []

    def _pre_hook(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        # Copy the list: a head may replace its elements in place.
        self.features = list(x) if isinstance(x, Sequence) else [x]

    def _post_hook(self, module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        self.output = output

    def __enter__(self) -> FeatureTap:
        if self._handles:
            raise RuntimeError("FeatureTap is already open; taps are not re-entrant")
        self.features, self.output = None, None
        self._handles.append(self.module.register_forward_pre_hook(self._pre_hook))
        if self.keep_output:
            self._handles.append(self.module.register_forward_hook(self._post_hook))
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the hooks; safe to call twice."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def require(self) -> list[Tensor]:
        """Return the captured features, or raise if the tapped module never ran."""
        if self.features is None:
            raise RuntimeError(f"{type(self.module).__name__} did not run during the tapped forward pass")
        return self.features
