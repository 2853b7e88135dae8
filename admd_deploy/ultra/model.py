"""The student-with-teacher module that Ultralytics' trainer optimises.

``student_model`` is the attribute name Ultralytics' own distillation branches test for; see the
decision and the list of branches in :mod:`admd_deploy.ultra`.

:class:`KDModel` holds the student (``student_model``) and the distillation criterion (``kd``:
align convs, per-level losses incl. MGD's generator, the KD weight) as registered submodules,
so the optimiser (from step one), the EMA and DDP see them. The teacher is deliberately NOT a
registered submodule: it is not in ``parameters()`` / ``state_dict()`` (so never in the
optimiser, the EMA, DDP or a checkpoint), it is dropped on pickling/deep-copying, it stays in
eval mode through every ``train()`` call and runs under ``no_grad``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from admd_deploy.ultra import env

env.prepare()  # before the first `import ultralytics` below

from ultralytics.nn.modules.head import Detect  # noqa: E402
from ultralytics.nn.tasks import guess_model_task, load_checkpoint  # noqa: E402

from admd_deploy.errors import IncompatibleModelsError  # noqa: E402
from admd_deploy.kd.criterion import KDCriterion  # noqa: E402
from admd_deploy.kd.taps import FeatureTap  # noqa: E402

LOGGER = logging.getLogger(__name__)

KD_RAW, KD_WEIGHT = "kd", "kd_w"
KD_IMAGES = "kd_img"  # batch key of the unlabelled images the KD term also runs on (no labels, no detection loss)


@dataclass(frozen=True)
class Level:
    """One pyramid level feeding the detection head."""

    stride: int
    channels: int

    @property
    def name(self) -> str:
        return f"P{self.stride.bit_length() - 1}"  # stride 8 -> P3

    def __str__(self) -> str:
        return f"{self.name}(stride {self.stride}, {self.channels} ch)"


def detection_head(model: nn.Module) -> Detect:
    """Return the model's Detect/OBB head (the module whose inputs are distilled)."""
    for m in getattr(model, "model", []):
        if isinstance(m, Detect):
            return m
    raise IncompatibleModelsError(f"{type(model).__name__} has no Detect/OBB head; only detect and obb models can be distilled")


@torch.no_grad()
def feature_levels(model: nn.Module) -> list[Level]:
    """Discover the levels feeding the head, their strides and channel widths, by one tiny forward pass."""
    head = detection_head(model)
    param = next(model.parameters())
    size = int(max(getattr(model, "stride", torch.tensor([32.0])).max().item(), 32)) * 2
    ch = getattr(model, "yaml", {}).get("channels", 3)
    was_training = model.training
    model.eval()
    try:
        with FeatureTap(head) as tap:
            model(torch.zeros(1, ch, size, size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
    return [Level(stride=size // f.shape[-1], channels=f.shape[1]) for f in tap.require()]


def check_pair(teacher: list[Level], student: list[Level]) -> None:
    """Raise unless teacher and student heads see the same number of levels at the same strides."""
    if [lv.stride for lv in teacher] != [lv.stride for lv in student]:
        raise IncompatibleModelsError(
            "teacher and student heads must read the same pyramid levels to be distilled level by level; "
            f"teacher levels: {', '.join(map(str, teacher))}; student levels: {', '.join(map(str, student))}. "
            "Pick a teacher of the same head layout (e.g. both P3-P5, or both p2 models)."
        )


def load_teacher(spec: str | Path, *, task: str, nc: int, build_from_yaml: Any, device: torch.device) -> nn.Module:
    """Load a frozen, fused, eval-mode teacher from a local checkpoint, or build one from a YAML.

    Args:
        spec: A local ``.pt`` checkpoint, or a model YAML (an untrained teacher, for plumbing tests).
        task: The student's task; the teacher must match it.
        nc: Number of classes of the dataset; the teacher must match it.
        build_from_yaml: ``trainer.get_model``, used to build a YAML teacher for the dataset.
        device: Where the student lives.
    """
    path = Path(spec).expanduser()
    if path.suffix == ".pt":
        if not path.is_file():
            raise FileNotFoundError(
                f"teacher checkpoint not found: {path.resolve()}. admd-deploy never downloads weights: "
                "pass the path of a local .pt file (train one with `yolo train` or copy it onto this machine)."
            )
        teacher, _ = load_checkpoint(path)
    elif path.suffix in {".yaml", ".yml"}:
        teacher = build_from_yaml(cfg=str(path), weights=None, verbose=False)
        LOGGER.warning("teacher built from %s is untrained: use this only to test the plumbing", path.name)
    else:
        raise ValueError(f"teacher must be a local .pt checkpoint or a model .yaml; got {str(spec)!r}")
    teacher_task = getattr(teacher, "task", None) or guess_model_task(teacher)
    if teacher_task != task:
        raise IncompatibleModelsError(f"teacher {path.name} is a {teacher_task!r} model but the student is {task!r}")
    if int(getattr(teacher, "nc", nc)) != nc:
        raise IncompatibleModelsError(
            f"teacher {path.name} predicts {teacher.nc} classes but the dataset has {nc}; "
            "distil from a teacher trained on the same classes"
        )
    teacher = teacher.float().to(device)
    if hasattr(teacher, "fuse"):
        teacher = teacher.fuse(verbose=False)  # Conv+BN folded: same features, a cheaper forward
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def class_scores(head_output: Any, sizes: list[tuple[int, int]]) -> list[Tensor]:
    """Per-location max class probability of an eval-mode head output, split into levels (N, 1, H, W)."""
    preds = head_output[1] if isinstance(head_output, tuple) else head_output
    if isinstance(preds, dict) and "one2many" in preds:  # end-to-end heads: average both branches
        logits = (preds["one2many"]["scores"] + preds["one2one"]["scores"]) / 2
    elif isinstance(preds, dict) and "scores" in preds:
        logits = preds["scores"]
    else:
        raise TypeError(f"cannot read class scores from a head output of type {type(preds).__name__}")
    parts = torch.split(logits, [h * w for h, w in sizes], dim=-1)
    return [p.float().sigmoid().amax(1, keepdim=True).view(p.shape[0], 1, h, w) for p, (h, w) in zip(parts, sizes)]


class KDModel(nn.Module):
    """Student plus distillation criterion, with an unregistered frozen teacher.

    ``forward(batch_dict)`` returns ``(loss_vector, loss_items)`` like an Ultralytics model, with
    the KD term appended to the loss vector (``lambda * w_t * L_kd * batch_size``) and the raw KD
    loss, the KD weight and the mean discrepancy per level added to ``loss_items``. When the batch
    carries unlabelled images (``batch["kd_img"]``, float in [0, 1] like ``img``), the KD loss is
    computed over the labelled and the unlabelled images together (one criterion call, every image
    weighted alike), while the detection loss sees the labelled ones only; ``batch_size`` stays
    the labelled batch's, so the KD term keeps its scale against the detection terms.
    ``forward(images)`` runs the student alone.
    """

    _ATTRS = ("yaml", "nc", "names", "stride", "args", "task", "pt_path", "class_weights")

    def __init__(self, student: nn.Module, teacher: nn.Module, criterion: KDCriterion, levels: list[Level]) -> None:
        super().__init__()
        self.student_model = student
        self.kd = criterion
        self.level_names = [lv.name for lv in levels]
        self.progress = 0.0  # global fractional epoch, set by the trainer before every training batch
        self._teacher: nn.Module | None = None
        self.attach_teacher(teacher)
        for k in self._ATTRS:
            if hasattr(student, k):
                setattr(self, k, getattr(student, k))

    # --- the teacher: frozen, eval, unregistered, never pickled -----------------------------------
    def attach_teacher(self, teacher: nn.Module | None) -> None:
        object.__setattr__(self, "_teacher", teacher)  # bypass nn.Module registration on purpose
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    @property
    def teacher(self) -> nn.Module | None:
        return self._teacher

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_teacher"] = None  # EMA deep copies, DDP pickles and checkpoints never carry the teacher
        return state

    def train(self, mode: bool = True) -> KDModel:
        super().train(mode)
        if self._teacher is not None:
            self._teacher.eval()
        return self

    # --- Ultralytics model protocol, forwarded to the student -------------------------------------
    @property
    def criterion(self) -> Any:
        return self.student_model.criterion

    @criterion.setter
    def criterion(self, value: Any) -> None:
        self.student_model.criterion = value

    def init_criterion(self) -> Any:
        return self.student_model.init_criterion()

    @property
    def end2end(self) -> bool:
        return getattr(self.student_model, "end2end", False)

    @end2end.setter
    def end2end(self, value: bool) -> None:
        self.student_model.end2end = value

    def set_head_attr(self, **kwargs: Any) -> None:
        self.student_model.set_head_attr(**kwargs)

    def fuse(self, verbose: bool = True, **kwargs: Any) -> nn.Module:
        return self.student_model.fuse(verbose=verbose, **kwargs)

    # --- forward / loss ---------------------------------------------------------------------------
    def forward(self, x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, dict):
            return self.loss(x, *args, **kwargs)
        return self.student_model.predict(x, *args, **kwargs)

    @torch.no_grad()
    def teaching_maps(self, img: Tensor) -> list[Tensor]:
        """The criterion's per-level teaching maps (``(N, H, W)``) for a batch of images, student in eval mode."""
        if self._teacher is None:
            raise RuntimeError("KDModel has no teacher attached; it cannot compute teaching maps")
        was_training = self.training
        self.eval()
        try:
            with FeatureTap(detection_head(self._teacher)) as tap_t:
                self._teacher(img)
            with FeatureTap(detection_head(self.student_model)) as tap_s:
                self.student_model(img)
            return self.kd.teaching_maps(tap_s.require(), tap_t.require())
        finally:
            self.train(was_training)

    def kd_item_names(self) -> list[str]:
        return [KD_RAW, KD_WEIGHT, *(f"d_{n}" for n in self.level_names)]

    def loss(self, batch: dict[str, Any], preds: Any = None) -> tuple[Tensor, dict[str, Tensor]]:
        img = batch["img"]
        if not self.training:  # validation during training: detection loss only
            preds = self.student_model(img) if preds is None else preds
            det, items = self.student_model.loss(batch, preds)
            return torch.cat([det, det.new_zeros(1)]), items
        if self._teacher is None:
            raise RuntimeError("KDModel has no teacher attached; it cannot compute a training loss")
        extra = batch.get(KD_IMAGES)
        extra = None if extra is None else extra.to(img.dtype)
        head_t, head_s = detection_head(self._teacher), detection_head(self.student_model)
        with torch.no_grad(), FeatureTap(head_t, keep_output=self.kd.needs_score) as tap_t:
            self._teacher(img if extra is None else torch.cat([img, extra]))
        with FeatureTap(head_s) as tap_s:
            preds = self.student_model(img)
        det, items = self.student_model.loss(batch, preds)
        s_feats, t_feats = tap_s.require(), tap_t.require()
        if extra is not None:  # a second student pass: its head output is not needed, only the maps feeding it
            with FeatureTap(head_s) as tap_u:
                self.student_model(extra)
            s_feats = [torch.cat([a, b]) for a, b in zip(s_feats, tap_u.require())]
        scores = class_scores(tap_t.output, [f.shape[-2:] for f in t_feats]) if self.kd.needs_score else None
        out = self.kd(s_feats, t_feats, epoch=self.progress, teacher_scores=scores)
        items = dict(items)
        items[KD_RAW] = out.raw.to(det.device)
        items[KD_WEIGHT] = out.weight.to(det.device)
        for name, d in zip(self.level_names, out.discrepancy):
            items[f"d_{name}"] = d.to(det.device)
        kd_term = (out.loss * img.shape[0]).to(det.dtype).view(1)  # scaled by batch size like Ultralytics' terms
        return torch.cat([det, kd_term]), items
