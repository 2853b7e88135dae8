"""Connectors mapping student feature maps to the teacher's widths (step 1 of docs/ADMD.md)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def build_align(student_channels: Sequence[int], teacher_channels: Sequence[int]) -> nn.ModuleList:
    """One connector per pyramid level: a 1x1 conv ``Cs -> Ct`` (with bias), identity when ``Cs == Ct``.

    The connectors are trained with the student and saved with the training checkpoint, never
    with the exported student.

    Args:
        student_channels: Student channels per level, e.g. ``[64, 128, 256]``.
        teacher_channels: Teacher channels per level, same length.

    Returns:
        The connectors, in level order.

    Raises:
        ValueError: The lists differ in length or hold a non-positive width.
    """
    student_channels, teacher_channels = list(student_channels), list(teacher_channels)
    if len(student_channels) != len(teacher_channels):
        raise ValueError(
            f"student_channels {student_channels} and teacher_channels {teacher_channels} must list the same "
            "number of pyramid levels; tap the same levels in both models"
        )
    for name, widths in (("student_channels", student_channels), ("teacher_channels", teacher_channels)):
        if not widths or any(isinstance(c, bool) or not isinstance(c, int) or c < 1 for c in widths):
            raise ValueError(f"{name} must be a non-empty list of positive ints; got {widths}")
    return nn.ModuleList(
        nn.Identity() if cs == ct else nn.Conv2d(cs, ct, 1) for cs, ct in zip(student_channels, teacher_channels)
    )
