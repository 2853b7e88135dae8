"""Ultralytics trainers that distil: ``KDDetectionTrainer`` and ``KDOBBTrainer``.

They are Ultralytics' own ``DetectionTrainer`` / ``OBBTrainer`` plus :class:`KDTrainerMixin`:

- the distillation settings travel in ``trainer.args.distill`` (a plain dict), so they survive
  Ultralytics' multi-GPU relaunch, which rebuilds the trainer from ``vars(trainer.args)``;
- the student is wrapped in :class:`KDModel` right after Ultralytics sets its attributes and
  before the optimiser, EMA and DDP are built, so align/generator modules train from step one;
- ``last.pt`` / ``best.pt`` hold the plain student only (they load in plain ``ultralytics.YOLO``
  without this package); the KD state (align modules, loss modules, KD weight, their EMA) goes
  to ``distill_last.pt`` / ``distill_best.pt`` beside them, which ``resume`` reads back.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

import torch

from admd_deploy.ultra import env

env.prepare()  # before the first `import ultralytics` below

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.models.yolo.obb import OBBTrainer  # noqa: E402
from ultralytics.utils import DEFAULT_CFG, RANK, YAML  # noqa: E402
from ultralytics.utils.torch_utils import ModelEMA, unwrap_model  # noqa: E402

from admd_deploy.errors import UsageError  # noqa: E402
from admd_deploy.kd.config import DistillConfig, level_mask  # noqa: E402
from admd_deploy.kd.criterion import KDCriterion  # noqa: E402
from admd_deploy.ultra import snapshots  # noqa: E402
from admd_deploy.ultra.model import KD_IMAGES, KDModel, check_pair, feature_levels, load_teacher  # noqa: E402

LOGGER = logging.getLogger(__name__)

SIDECAR_FORMAT = "admd-deploy/distill-state/v1"


def sidecar_path(checkpoint: str | Path) -> Path:
    """Where the KD state of a training checkpoint lives (``last.pt`` -> ``distill_last.pt``)."""
    p = Path(checkpoint)
    return p.with_name(f"distill_{p.name}")


class KDTrainerMixin:
    """Distillation on top of an Ultralytics task trainer (see the module docstring)."""

    def __init__(self, cfg: Any = DEFAULT_CFG, overrides: dict[str, Any] | None = None, _callbacks: Any = None):
        overrides = dict(overrides or {})
        given = overrides.pop("distill", None)  # not an Ultralytics key: keep it out of get_cfg's check
        super().__init__(cfg, overrides, _callbacks)
        saved = getattr(self.args, "distill", None)  # present when resuming from a checkpoint
        if self.resume and saved is not None:
            if given is not None and DistillConfig.from_dict(given).to_dict() != saved:
                LOGGER.warning("resume uses the checkpoint's distillation settings; start a new run to change them")
            given = saved
        if given is None:
            raise ValueError(f"{type(self).__name__} needs distill=DistillConfig(...) or a dict of its fields")
        self.distill = DistillConfig.from_dict(given)
        self.args.distill = self.distill.to_dict()
        if self.distill.method != "none" and self.args.compile:
            LOGGER.warning("'compile' is not supported with distillation and is disabled")
            self.args.compile = False
        if RANK in {-1, 0}:
            YAML.save(self.save_dir / "args.yaml", vars(self.args))  # now with the distill section
        self._kd_resume_state: dict[str, Any] | None = None
        self._unlabelled: Any = None  # endless unlabelled batches for the KD term, made in _setup_train
        self._kd_epoch, self._kd_iter = -1, 0
        self.add_callback("on_fit_epoch_end", _snapshot_teaching_maps)

    def _setup_train(self) -> None:
        self._add_pseudo_labelled_split()  # before the dataloaders are built from self.data["train"]
        super()._setup_train()
        self._use_all_cpu_threads()
        self._unlabelled = self._unlabelled_batches()

    def _add_pseudo_labelled_split(self) -> None:
        """With ``distill.pseudo_conf``: the teacher labels the unlabelled images, which join the training split.

        Written to ``<run>/pseudo`` (rewritten on resume: the same teacher and images give the same labels)."""
        conf = self.distill.pseudo_conf
        if conf is None:
            return
        if self.distill.unlabelled is None:
            raise UsageError("distill.pseudo_conf needs unlabelled images to label: set data.unlabelled (a recipe), "
                             "--unlabelled or unlabelled= (the API), or remove pseudo_conf")
        if self.world_size > 1:
            raise UsageError("distill.pseudo_conf is not supported with multi-GPU training yet: train on one device")
        from admd_deploy.data.pseudo import write_split
        from admd_deploy.data.unlabelled import list_images
        from admd_deploy.ultra.validate import predict_detections

        root = Path(self.distill.unlabelled)
        files = list_images(root)
        LOGGER.info("distill: the teacher labels %d unlabelled images (detections with confidence >= %g)",
                    len(files), conf)
        device = str(self.device.index or 0) if self.device.type == "cuda" else self.device.type  # cpu, mps, or "0"
        detections, sizes = predict_detections(self.distill.teacher, files, imgsz=int(self.args.imgsz),
                                               task=self.args.task, conf=conf, device=device, with_sizes=True)
        counts = write_split(root, files, detections, sizes, self.save_dir / "pseudo", self.args.task, conf,
                             nc=int(self.data["nc"]))
        LOGGER.info("distill: %d pseudo-labels on %d images (%d without any) in %s", counts["boxes"],
                    counts["images"], counts["images_without_boxes"], self.save_dir / "pseudo")
        train = self.data["train"]
        self.data["train"] = [*(train if isinstance(train, list) else [train]), str(self.save_dir / "pseudo" / "images")]

    def _unlabelled_batches(self) -> Any:
        """Endless batches of the unlabelled images (``distill.unlabelled``), as many per step as labelled ones;
        none when they are pseudo-labelled (they are in the training split then)."""
        if self.distill.unlabelled is None or self.kd_model is None or self.distill.pseudo_conf is not None:
            return None
        from admd_deploy.data.unlabelled import UnlabelledImages, endless_batches

        images = UnlabelledImages(self.distill.unlabelled, int(self.args.imgsz), fliplr=float(self.args.fliplr),
                                  seed=int(self.args.seed))
        LOGGER.info("distill: the KD term also runs on %d unlabelled images from %s, %d per step",
                    len(images), self.distill.unlabelled, self.batch_size)
        return endless_batches(images, int(self.batch_size), seed=int(self.args.seed))

    def final_eval(self) -> None:
        super().final_eval()
        self._use_all_cpu_threads()  # the final validation's select_device lowered it again

    def _use_all_cpu_threads(self) -> None:
        # Ultralytics' select_device sets torch to cores - 1 threads (1 on a 2-core machine, measured
        # 1.7x slower epochs); use OMP_NUM_THREADS, which env.prepare defaults to every core.
        if self.device.type == "cpu":
            torch.set_num_threads(env.cpu_threads())

    @property
    def kd_model(self) -> KDModel | None:
        m = unwrap_model(self.model) if isinstance(self.model, torch.nn.Module) else None
        return m if isinstance(m, KDModel) else None

    # --- model ------------------------------------------------------------------------------------
    def set_model_attributes(self) -> None:
        super().set_model_attributes()
        if self.distill.method == "none" or isinstance(self.model, KDModel):
            return
        self.model = self._build_kd_model(self.model)

    def _build_kd_model(self, student: torch.nn.Module) -> KDModel:
        teacher = load_teacher(
            self.distill.teacher,
            task=self.args.task,
            nc=int(self.data["nc"]),
            build_from_yaml=self.get_model,
            device=next(student.parameters()).device,
        )
        t_levels, s_levels = feature_levels(teacher), feature_levels(student)
        check_pair(t_levels, s_levels)
        criterion = KDCriterion(
            self.distill.method,
            [lv.channels for lv in s_levels],
            [lv.channels for lv in t_levels],
            loss_weight=self.distill.loss_weight,
            loss_params=self.distill.params,
            weighting=self.distill.weighting(),
            total_epochs=float(self.epochs),
            align_warmup_epochs=self.distill.align_warmup_epochs,
            ramp_epochs=self.distill.ramp_epochs,
            align_init=self.distill.align_init_mode,
            distilled=level_mask(self.distill.levels, [lv.name for lv in s_levels]),
        ).to(next(student.parameters()).device)
        if self.resume:
            self._kd_resume_state = self._read_sidecar(Path(self.args.resume))
            criterion.load_state_dict(self._kd_resume_state["kd"])
        LOGGER.info(
            "distill: %s from %s, levels %s <- %s%s",
            self.distill.method,
            Path(str(self.distill.teacher)).name,
            ", ".join(map(str, s_levels)),
            ", ".join(map(str, t_levels)),
            "" if all(criterion.distilled) else
            "; distilled: " + ", ".join(lv.name for lv, d in zip(s_levels, criterion.distilled) if d),
        )
        return KDModel(student, teacher, criterion, s_levels)

    def get_validator(self) -> Any:
        """Ultralytics' validator re-checks the args against its own keys: hand it the args without ours."""
        distill = vars(self.args).pop("distill", None)
        try:
            return super().get_validator()
        finally:
            if distill is not None:
                self.args.distill = distill

    # --- per batch: the global fractional epoch the KD weight is scheduled on -----------------------
    def preprocess_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        batch = super().preprocess_batch(batch)
        kd = self.kd_model
        if kd is not None:
            epoch = getattr(self, "epoch", self.start_epoch)  # set by Ultralytics' epoch loop
            if epoch != self._kd_epoch:
                self._kd_epoch, self._kd_iter = epoch, 0
            kd.progress = epoch + self._kd_iter / max(len(self.train_loader), 1)
            self._kd_iter += 1
            if self._unlabelled is not None and kd.training:
                batch[KD_IMAGES] = next(self._unlabelled).to(self.device, non_blocking=True).float() / 255
        return batch

    def label_loss_items(self, loss_items: Any = None, prefix: str = "train") -> Any:
        """Keep KD columns for training only: validation computes no KD term, so no fake zeros in results.csv."""
        kd = self.kd_model or (self.ema.ema if self.ema and isinstance(self.ema.ema, KDModel) else None)
        if prefix == "val" and kd is not None:
            drop = set(kd.kd_item_names())
            if loss_items is None:
                return [f"{prefix}/{x}" for x in self.loss_names if x not in drop]
            loss_items = {k: v for k, v in loss_items.items() if k not in drop}
        return super().label_loss_items(loss_items, prefix)

    # --- checkpoints: plain student in last.pt/best.pt, KD state in the sidecar ---------------------
    def save_model(self) -> bool:
        kd_ema = self.ema.ema if isinstance(self.ema.ema, KDModel) else None
        if kd_ema is None:
            return super().save_model()
        self.ema.ema = kd_ema.student_model  # Ultralytics serialises the plain student
        try:
            saved = super().save_model()
        finally:
            self.ema.ema = kd_ema
        state = {
            "format": SIDECAR_FORMAT,
            "epoch": self.epoch,
            "config": self.distill.to_dict(),
            "levels": kd_ema.level_names,
            "kd": _cpu(self.kd_model.kd.state_dict()),
            "kd_ema": _cpu(kd_ema.kd.state_dict()),
        }
        last = sidecar_path(self.last)
        tmp = last.with_suffix(".tmp")
        torch.save(state, tmp)
        tmp.replace(last)  # atomic: an interruption leaves the previous state intact
        if self.best_fitness == self.fitness:
            shutil.copyfile(last, sidecar_path(self.best))
        return saved

    def _read_sidecar(self, checkpoint: Path) -> dict[str, Any]:
        path = sidecar_path(checkpoint)
        if not path.is_file():
            raise FileNotFoundError(
                f"cannot resume distillation: {path} is missing (it holds the align modules and the KD weight "
                f"of {checkpoint.name}). Restore it, or start a new run."
            )
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("format") != SIDECAR_FORMAT:
            raise ValueError(f"{path} is not an admd-deploy distillation state ({SIDECAR_FORMAT})")
        return state

    def _load_checkpoint_state(self, ckpt: dict[str, Any]) -> None:
        kd = self.kd_model
        if kd is None or self._kd_resume_state is None:
            return super()._load_checkpoint_state(ckpt)
        student_ema = ckpt.get("ema")
        super()._load_checkpoint_state({**ckpt, "ema": None})  # optimizer, scaler, best fitness, stopper
        if self.ema and student_ema is not None:
            self.ema = ModelEMA(self.model)
            self.ema.ema.student_model.load_state_dict(student_ema.float().state_dict())
            self.ema.ema.kd.load_state_dict(self._kd_resume_state["kd_ema"])
            self.ema.updates = ckpt["updates"]
        if self._kd_resume_state.get("epoch") != ckpt.get("epoch"):
            LOGGER.warning(
                "distillation state is from epoch %s but the checkpoint from epoch %s; continuing with it",
                self._kd_resume_state.get("epoch"),
                ckpt.get("epoch"),
            )

    def _handle_nan_recovery(self, epoch: int) -> bool:
        """Ultralytics' NaN recovery reloads last.pt assuming its own distillation wrapper; show it the
        plain student (what last.pt holds), then restore the KD state and the EMA from the sidecar.

        The private hook and its ``student_model`` branch are contracts (:mod:`admd_deploy.ultra.contracts`)."""
        kd = self.kd_model
        if kd is None:
            return super()._handle_nan_recovery(epoch)
        wrapped = self.model
        self.model = kd.student_model  # the same parameters DDP and the optimiser hold
        try:
            recovered = super()._handle_nan_recovery(epoch)
            student_ema, updates = self.ema.ema, self.ema.updates
        finally:
            self.model = wrapped
        if recovered:
            state = self._read_sidecar(self.last)
            kd.kd.load_state_dict(state["kd"])
            self.ema = ModelEMA(self.model)
            self.ema.ema.student_model.load_state_dict(student_ema.state_dict())
            self.ema.ema.kd.load_state_dict(state["kd_ema"])
            self.ema.updates = updates
        return recovered


MAP_IMAGES = 4  # validation images in the "where the student is taught" snapshots


def _snapshot_teaching_maps(trainer: KDTrainerMixin) -> None:
    """Ultralytics callback: save the teaching maps at the first, middle and last epoch (main process only)."""
    kd = trainer.kd_model
    if kd is None or RANK not in {-1, 0} or trainer.epoch not in snapshots.snapshot_epochs(trainer.epochs):
        return
    model = trainer.ema.ema if trainer.ema and isinstance(trainer.ema.ema, KDModel) else kd
    detach = model.teacher is None  # the EMA copy carries no teacher: lend it the training one
    if detach:
        model.attach_teacher(kd.teacher)
    try:
        images = snapshots.first_images(trainer.data.get("val"), MAP_IMAGES)
        out = Path(trainer.save_dir) / snapshots.FOLDER / f"epoch{trainer.epoch + 1:03d}.npz"
        snapshots.save_teaching_maps(model, images, int(trainer.args.imgsz), out, trainer.epoch + 1, kd.level_names)
    except Exception as err:  # noqa: BLE001 - a picture must never stop a training run
        LOGGER.warning("could not save the KD teaching maps of epoch %d: %s", trainer.epoch + 1, err)
    finally:
        if detach:
            model.attach_teacher(None)


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in state.items()}


class KDDetectionTrainer(KDTrainerMixin, DetectionTrainer):
    """Distillation for horizontal-box detection (DIOR-style)."""


class KDOBBTrainer(KDTrainerMixin, OBBTrainer):
    """Distillation for oriented boxes (DOTA-style)."""


def trainer_for_task(task: str) -> type[KDTrainerMixin]:
    """The trainer class of a task, with the valid tasks in the error."""
    trainers = {"detect": KDDetectionTrainer, "obb": KDOBBTrainer}
    if task not in trainers:
        raise ValueError(f"task must be one of {', '.join(trainers)}; got {task!r}")
    return trainers[task]
