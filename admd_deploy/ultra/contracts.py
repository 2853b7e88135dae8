"""Every private or undocumented Ultralytics symbol admd-deploy relies on, what we rely on, and why.

One entry per symbol; ``tests/ultra/test_contracts.py`` holds a cheap test of each (no training)
that fails with :func:`broken`'s message: the symbol, what broke, the supported range and the fix.
A new reliance on Ultralytics internals is added here first. The ``student_model`` branches
(Ultralytics' own distillation) are listed in :mod:`admd_deploy.ultra` and tested in
``tests/ultra/test_student_model_protocol.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from admd_deploy.ultra import version


@dataclass(frozen=True)
class Contract:
    """One Ultralytics symbol we rely on beyond its documented API.

    Attributes:
        symbol: Dotted path (``module.Class.attribute``).
        relied_on: The behaviour we rely on.
        why: Why we rely on it, and where (the adapter module).
    """

    symbol: str
    relied_on: str
    why: str


_TRAINER_HOOKS = ("__init__(cfg, overrides, _callbacks), _setup_train(), final_eval(), set_model_attributes(), "
                  "get_model(cfg, weights, verbose), get_validator(), preprocess_batch(batch), "
                  "label_loss_items(loss_items, prefix), save_model(), _load_checkpoint_state(ckpt), "
                  "_handle_nan_recovery(epoch); attributes args, ema, last, best, epochs, start_epoch, resume, save_dir, "
                  "world_size, and data (its 'train' entry, a path or a list of them, is what _setup_train builds the "
                  "training loader from: the pseudo-labelled split is appended to it)")

CONTRACTS: tuple[Contract, ...] = (
    Contract("ultralytics.engine.validator.BaseValidator.match_predictions",
             "callable unbound with a stand-in self that has only `iouv`; (pred_classes (N,), true_classes (M,), "
             "iou (M, N)) -> bool (N, len(iouv)); detections, in the given (confidence) order, each claim their best "
             "unclaimed target per threshold",
             "scores exported models with Ultralytics' own matching (ultra.metrics.match_predictions)"),
    Contract("ultralytics.utils.metrics.ap_per_class",
             "(tp, conf, pred_cls, target_cls) -> tuple with AP (n_classes, 10) at index 5 and class ids at index 6",
             "the same 101-point AP as YOLO.val (ultra.metrics.ap_per_class unpacks it, by position, once)"),
    Contract("ultralytics.utils.metrics.box_iou",
             "(M, 4) xyxy x (N, 4) xyxy -> (M, N) IoU", "ultra.metrics.iou_matrix for detect"),
    Contract("ultralytics.utils.metrics.batch_probiou",
             "(M, 5) xywhr x (N, 5) xywhr -> (M, N) ProbIoU", "ultra.metrics.iou_matrix for obb"),
    Contract("ultralytics.utils.ops.xyxyxyxy2xywhr",
             "(N, 8) torch corners -> (N, 5) xywhr of the minimum-area rectangle",
             "ground truth of OBB label files as the validator reads it (ultra.metrics.corners_to_xywhr)"),
    Contract("ultralytics.utils.ops.xywh2xyxy",
             "numpy (N, 4) centre boxes -> numpy (N, 4) corner boxes", "ultra.metrics.xywh2xyxy"),
    Contract("ultralytics.nn.tasks.load_checkpoint",
             "(path) -> (model, ckpt dict): the EMA model if saved, float32, in eval mode",
             "teachers, parity references and latency (ultra.checkpoints, ultra.model.load_teacher)"),
    Contract("ultralytics.nn.tasks.guess_model_task",
             "model or model-YAML dict -> 'detect' / 'obb' from its head", "task checks (ultra.checkpoints.guess_task)"),
    Contract("ultralytics.nn.tasks.yaml_model_load",
             "model YAML path or shipped name -> dict with 'head'; FileNotFoundError for an unknown name",
             "recipe checks read a student's task without building it (ultra.checkpoints.model_yaml)"),
    Contract("ultralytics.nn.modules.head.Detect",
             "Detect and OBB heads are Detect instances whose forward inputs are the P3-P5 features; in eval the "
             "model returns a tuple whose second item is a dict with 'scores' (N, nc, sum H*W) logits",
             "features are tapped at the head's inputs and the teacher's class scores read (ultra.model)"),
    Contract("ultralytics.nn.tasks.DetectionModel",
             "the model protocol KDModel forwards: predict(x), loss(batch, preds) -> (1-D loss tensor, items dict), "
             "criterion, init_criterion(), end2end, set_head_attr(**kw), fuse(verbose)",
             "KDModel stands in for the student inside Ultralytics' trainer (ultra.model.KDModel)"),
    Contract("ultralytics.models.yolo.detect.DetectionTrainer",
             f"the hooks KDTrainerMixin overrides or calls: {_TRAINER_HOOKS}",
             "distillation is a mixin over Ultralytics' own trainer (ultra.trainer.KDDetectionTrainer)"),
    Contract("ultralytics.models.yolo.obb.OBBTrainer",
             "the same hooks as DetectionTrainer", "ultra.trainer.KDOBBTrainer"),
    Contract("ultralytics.engine.trainer.BaseTrainer._handle_nan_recovery",
             "private; (epoch) -> bool, reloads last.pt into self.model and self.ema; with a `student_model` "
             "attribute it loads ema.student_model and model.projector (Ultralytics' own distillation)",
             "KDTrainerMixin overrides it to show the base the plain student and restores the KD state itself"),
    Contract("ultralytics.cfg.get_cfg",
             "rejects keys it does not know (SyntaxError), but the namespace it returns takes a new attribute "
             "that vars(args) carries into args.yaml, last.pt's train_args and the multi-GPU relaunch file",
             "the distillation settings travel as trainer.args.distill, popped before get_cfg and the validator"),
    Contract("ultralytics.models.yolo.detect.DetectionValidator",
             "re-checks its args with get_cfg, so it refuses an args namespace that carries `distill`",
             "KDTrainerMixin.get_validator hands it the args without `distill`"),
    Contract("ultralytics.utils.torch_utils.ModelEMA",
             "ModelEMA(model): .ema a deep copy of unwrap_model(model) in eval mode without grads, .updates",
             "the EMA of a KDModel holds student and criterion, never the teacher (ultra.trainer)"),
    Contract("ultralytics.utils.torch_utils.unwrap_model",
             "returns the module inside DDP / compiled wrappers, a plain module unchanged", "ultra.trainer.kd_model"),
    Contract("ultralytics.utils.torch_utils.strip_optimizer",
             "on a checkpoint whose 'ema' is a plain model: writes it as 'model' in FP16, drops optimizer/ema/"
             "updates, epoch -1, cuts train_args to Ultralytics' keys (our 'distill' entry goes)",
             "final last.pt/best.pt are plain Ultralytics checkpoints that load without admd-deploy"),
    Contract("ultralytics.engine.exporter.Exporter",
             "ONNX nodes are named after module paths '/model.N/...'; the head is the highest N and its conv "
             "branches are '/model.N/cv2.i/', 'cv3.i', 'cv4.i' (matched by string); the DFL Softmax and the "
             "decode are named under '/model.N/' outside those branches",
             "the head's decode is kept in float when quantising (ultra.export.head_decode_nodes); "
             "pipeline.onnx_passes.fast_dfl names its replacement nodes after the Softmax's scope, so they "
             "stay in the decode"),
    Contract("ultralytics.data.utils.verify_image_label",
             "takes (im_file, lb_file, prefix, keypoint, num_cls, nkpt, ndim, single_cls); a dropped sample comes "
             "back with None first and the message last, ending 'ignoring corrupt image/label: <reason>'",
             "data check names the files training would drop (ultra.data.label_problem)"),
    Contract("ultralytics.data.utils.img2label_paths",
             "'.../images/x.jpg' -> '.../labels/x.txt'", "label files found as training finds them (ultra.data)"),
    Contract("ultralytics.data.utils.IMG_FORMATS",
             "the set of image suffixes (no dot, lower case) the loaders read", "ultra.data.image_formats"),
    Contract("ultralytics.data.utils.check_det_dataset",
             "data YAML -> dict with resolved 'train'/'val' paths, 'nc', 'names'", "ultra.validate.dataset_info"),
    Contract("ultralytics.utils.DATASETS_DIR",
             "the datasets_dir setting a missing relative data 'path:' resolves under", "ultra.data.datasets_dir"),
    Contract("ultralytics.data.split_dota.get_windows",
             "((h, w), crop_sizes, gaps) -> (K, 4) x0, y0, x1, y1 windows covering the scene",
             "DOTA scenes are cut like Ultralytics' split_dota (ultra.data.split_windows)"),
    Contract("ultralytics.data.split_dota.crop_and_save",
             "(anno {'filepath'}, windows, window_objs rows 'class x1 y1 .. x4 y4' in scene pixels, im_dir, lb_dir) "
             "writes '{stem}__{size}__{x0}___{y0}.jpg' and '.txt' with coordinates normalised by the patch size",
             "ultra.data.crop_and_save"),
    Contract("ultralytics.utils.TQDM", "TQDM(iterable, total=, desc=) iterates", "ultra.data.progress"),
)


def contract(symbol: str) -> Contract:
    """The contract of ``symbol``.

    Raises:
        KeyError: ``symbol`` is not listed; the message names the listed ones.
    """
    for c in CONTRACTS:
        if c.symbol == symbol:
            return c
    raise KeyError(f"{symbol} is not a listed Ultralytics contract; listed: {', '.join(c.symbol for c in CONTRACTS)}")


def broken(symbol: str, detail: str) -> str:
    """One line for a broken contract: the symbol, what broke, what we rely on, the supported range and the fix."""
    c = contract(symbol)
    spec = version.supported_range() or "(range not declared)"
    return (f"Ultralytics contract broken: {symbol}: {detail}. admd-deploy relies on: {c.relied_on}. "
            f"Supported: ultralytics{spec}, installed: {version.installed_version()}. "
            f"Fix: {version.fix_command(spec)}, or update admd_deploy/ultra for this version")


def resolve(symbol: str) -> Any:
    """Import the object at ``symbol`` (the longest importable module prefix, then attributes).

    Raises:
        ImportError: No prefix of ``symbol`` is an importable module.
        AttributeError: An attribute on the way is missing.
    """
    from admd_deploy.ultra import env

    env.prepare()
    parts = symbol.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no importable module in {symbol}")
