"""One cheap test per Ultralytics contract (admd_deploy/ultra/contracts.py); no training.

A failure reads: the symbol, what broke, what admd-deploy relies on, the supported range and the fix.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from admd_deploy.ultra import contracts
from admd_deploy.ultra.contracts import CONTRACTS, broken, resolve

TESTED: dict[str, str] = {}  # symbol -> the test of its behaviour


def covers(*symbols: str):
    def mark(fn):
        for s in symbols:
            TESTED[s] = fn.__name__
        return fn

    return mark


def require(ok: bool, symbol: str, detail: str) -> None:
    if not ok:
        pytest.fail(broken(symbol, detail), pytrace=False)


@pytest.fixture(scope="module")
def tiny_detect():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    model = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    model.args = get_cfg(DEFAULT_CFG, {})
    return model


# ------------------------------------------------------------------------------------------- the list itself


@pytest.mark.parametrize("symbol", [c.symbol for c in CONTRACTS])
def test_every_listed_symbol_exists_in_the_installed_ultralytics(symbol):
    try:
        resolve(symbol)
    except (ImportError, AttributeError) as err:
        pytest.fail(broken(symbol, f"not found ({err})"), pytrace=False)


def test_every_listed_contract_has_a_behaviour_test_and_every_test_names_a_listed_contract():
    listed = {c.symbol for c in CONTRACTS}
    assert set(TESTED) == listed, f"untested: {sorted(listed - set(TESTED))}; unlisted: {sorted(set(TESTED) - listed)}"


def test_a_broken_contract_message_names_symbol_range_and_fix():
    text = broken("ultralytics.utils.metrics.ap_per_class", "returned 3 items")
    assert "\n" not in text
    assert text.startswith("Ultralytics contract broken: ultralytics.utils.metrics.ap_per_class: returned 3 items.")
    assert "Supported: ultralytics>=8.4.190,<8.5" in text and 'pip install "ultralytics>=8.4.190,<8.5"' in text
    with pytest.raises(KeyError, match="not a listed Ultralytics contract"):
        contracts.contract("ultralytics.nope")


# ------------------------------------------------------------------------------------------- match-and-AP


@covers("ultralytics.engine.validator.BaseValidator.match_predictions")
def test_match_predictions_runs_unbound_and_matches_in_confidence_order():
    from admd_deploy.ultra.metrics import match_predictions

    symbol = "ultralytics.engine.validator.BaseValidator.match_predictions"
    params = list(inspect.signature(resolve(symbol)).parameters)
    require(params[:4] == ["self", "pred_classes", "true_classes", "iou"], symbol, f"parameters are {params}")
    iou = torch.tensor([[0.80, 0.00, 0.90],   # gt 0 (class 0): pred 2 (lower confidence) overlaps it more than pred 0
                        [0.00, 0.52, 0.00]])  # gt 1 (class 1)
    tp = match_predictions(np.array([0, 1, 0]), np.array([0, 1]), iou)
    require(tp.shape == (3, 10) and tp.dtype == bool, symbol, f"returned {tp.shape} {tp.dtype}, not (3, 10) bool")
    require(tp[0].tolist() == [True] * 7 + [False] * 3, symbol,
            f"the most confident prediction (IoU 0.80) matched at {tp[0].tolist()}: not claimed in confidence order")
    require(tp[1].tolist() == [True] + [False] * 9, symbol, f"IoU 0.52 matched at {tp[1].tolist()}")
    require(tp[2].tolist() == [False] * 7 + [True, True, False], symbol,
            f"the later prediction (IoU 0.90) matched at {tp[2].tolist()}; it may only take what is still unclaimed")


@covers("ultralytics.utils.metrics.ap_per_class")
def test_ap_per_class_returns_ap_at_index_5_and_classes_at_index_6():
    from admd_deploy.ultra.metrics import ap_per_class

    symbol = "ultralytics.utils.metrics.ap_per_class"
    tp = np.array([[True] * 10, [False] * 10])
    args = (tp, np.array([0.9, 0.8]), np.array([0, 1]), np.array([0, 1]))
    raw = resolve(symbol)(*args)
    require(isinstance(raw, tuple) and len(raw) >= 7, symbol, f"returned {type(raw).__name__} of {len(raw)}")
    require(np.shape(raw[5]) == (2, 10), symbol, f"item 5 has shape {np.shape(raw[5])}, not (2, 10) AP")
    require(list(raw[6]) == [0, 1], symbol, f"item 6 is {raw[6]!r}, not the class ids")
    result = ap_per_class(*args)
    require(result.ap[0].min() > 0.99 and result.ap[1].max() == 0.0, symbol, f"AP {result.ap.mean(1)}")


@covers("ultralytics.utils.metrics.box_iou", "ultralytics.utils.metrics.batch_probiou")
def test_iou_matrices_are_ground_truth_by_prediction():
    from admd_deploy.ultra.metrics import iou_matrix

    iou = iou_matrix(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [50, 50, 60, 60]]), "detect")
    require(tuple(iou.shape) == (1, 3), "ultralytics.utils.metrics.box_iou", f"shape {tuple(iou.shape)}")
    require(np.allclose(iou.numpy(), [[1.0, 1 / 3, 0.0]], atol=1e-4), "ultralytics.utils.metrics.box_iou",
            f"values {iou.numpy()}")
    prob = iou_matrix(np.array([[5, 5, 10, 4, 0.3]]), np.array([[5, 5, 10, 4, 0.3], [90, 90, 10, 4, 0.3]]), "obb")
    require(tuple(prob.shape) == (1, 2), "ultralytics.utils.metrics.batch_probiou", f"shape {tuple(prob.shape)}")
    require(prob[0, 0] > 0.99 and prob[0, 1] < 0.01, "ultralytics.utils.metrics.batch_probiou", f"values {prob}")


@covers("ultralytics.utils.ops.xyxyxyxy2xywhr", "ultralytics.utils.ops.xywh2xyxy")
def test_box_conversions_keep_centres_and_sides():
    from admd_deploy.ultra.metrics import corners_to_xywhr, xywh2xyxy

    xywhr = corners_to_xywhr(np.array([[10.0, 10, 20, 10, 20, 30, 10, 30]]))  # 10 wide, 20 high, centre (15, 20)
    symbol = "ultralytics.utils.ops.xyxyxyxy2xywhr"
    require(xywhr.shape == (1, 5), symbol, f"shape {xywhr.shape}")
    require(np.allclose(xywhr[0, :2], [15, 20]) and np.allclose(sorted(xywhr[0, 2:4]), [10, 20]), symbol, f"{xywhr}")
    xyxy = xywh2xyxy(np.array([[5.0, 5, 10, 10]]))
    require(isinstance(xyxy, np.ndarray) and np.allclose(xyxy, [[0, 0, 10, 10]]), "ultralytics.utils.ops.xywh2xyxy",
            f"{xyxy!r}")


# ------------------------------------------------------------------------------------------- models


@covers("ultralytics.nn.tasks.load_checkpoint")
def test_load_checkpoint_returns_the_float_ema_model_in_eval_mode_and_the_dict(tmp_path, tiny_detect):
    import copy

    symbol = "ultralytics.nn.tasks.load_checkpoint"
    path = tmp_path / "last.pt"
    torch.save({"model": None, "ema": copy.deepcopy(tiny_detect).half(), "train_args": {"imgsz": 64}}, path)
    from admd_deploy.ultra.checkpoints import load_checkpoint

    model, ckpt = load_checkpoint(path)
    require(isinstance(ckpt, dict) and ckpt["train_args"] == {"imgsz": 64}, symbol, "the checkpoint dict is not returned")
    require(next(model.parameters()).dtype == torch.float32, symbol, "the model is not float32")
    require(not model.training and model.task == "detect", symbol, f"training={model.training}, task={model.task}")


@covers("ultralytics.nn.tasks.guess_model_task", "ultralytics.nn.tasks.yaml_model_load")
def test_tasks_are_read_from_models_and_model_yamls(tiny_detect):
    from admd_deploy.ultra.checkpoints import guess_task, model_yaml

    cfg = model_yaml("yolo11n-obb.yaml")
    require(isinstance(cfg, dict) and bool(cfg.get("head")), "ultralytics.nn.tasks.yaml_model_load", "no 'head'")
    require(guess_task(cfg) == "obb" and guess_task(tiny_detect) == "detect", "ultralytics.nn.tasks.guess_model_task",
            f"{guess_task(cfg)}, {guess_task(tiny_detect)}")
    try:
        model_yaml("no-such-model-xyz.yaml")
    except FileNotFoundError:
        pass
    else:
        pytest.fail(broken("ultralytics.nn.tasks.yaml_model_load", "an unknown name raised no FileNotFoundError"))


@covers("ultralytics.nn.modules.head.Detect")
def test_detect_and_obb_heads_are_detect_modules_with_score_logits_in_eval():
    from ultralytics.nn.tasks import OBBModel

    from admd_deploy.ultra.model import class_scores, detection_head, feature_levels

    symbol = "ultralytics.nn.modules.head.Detect"
    model = OBBModel("yolo11n-obb.yaml", nc=3, verbose=False).eval()
    require(detection_head(model) is model.model[-1], symbol, "the OBB head is not a Detect instance")
    levels = feature_levels(model)
    require([lv.stride for lv in levels] == [8, 16, 32], symbol, f"head inputs at strides {levels}")
    with torch.no_grad():
        out = model(torch.zeros(1, 3, 64, 64))
    require(isinstance(out, tuple) and isinstance(out[1], dict) and "scores" in out[1], symbol,
            f"eval output is {type(out).__name__}, not (y, dict with 'scores')")
    require(tuple(out[1]["scores"].shape) == (1, 3, 84), symbol, f"scores shape {tuple(out[1]['scores'].shape)}")
    maps = class_scores(out, [(8, 8), (4, 4), (2, 2)])
    require([tuple(m.shape) for m in maps] == [(1, 1, 8, 8), (1, 1, 4, 4), (1, 1, 2, 2)], symbol, "score maps")


@covers("ultralytics.nn.tasks.DetectionModel")
def test_the_model_protocol_kdmodel_forwards_is_on_ultralytics_models(tiny_detect):
    symbol = "ultralytics.nn.tasks.DetectionModel"
    for name in ("predict", "loss", "init_criterion", "set_head_attr", "fuse"):
        require(callable(getattr(tiny_detect, name, None)), symbol, f"no method {name}")
    tiny_detect.train()
    batch = {"img": torch.zeros(2, 3, 64, 64), "cls": torch.zeros(1, 1), "bboxes": torch.tensor([[0.5, 0.5, 0.2, 0.2]]),
             "batch_idx": torch.zeros(1)}
    loss, items = tiny_detect.loss(batch)
    require(tiny_detect.criterion is not None, symbol, "loss() left no criterion attribute")
    require(isinstance(loss, torch.Tensor) and loss.ndim == 1, symbol, f"loss is {type(loss).__name__} {loss.shape}")
    require(isinstance(dict(items), dict) and len(dict(items)) == len(loss), symbol, f"loss items {items!r}")


# ------------------------------------------------------------------------------------------- trainers


HOOKS = {"__init__": ["self", "cfg", "overrides", "_callbacks"], "_setup_train": ["self"], "final_eval": ["self"],
         "set_model_attributes": ["self"], "get_model": ["self", "cfg", "weights", "verbose"],
         "get_validator": ["self"], "preprocess_batch": ["self", "batch"],
         "label_loss_items": ["self", "loss_items", "prefix"], "save_model": ["self"],
         "_load_checkpoint_state": ["self", "ckpt"], "_handle_nan_recovery": ["self", "epoch"]}


@covers("ultralytics.models.yolo.detect.DetectionTrainer", "ultralytics.models.yolo.obb.OBBTrainer")
@pytest.mark.parametrize("symbol", ["ultralytics.models.yolo.detect.DetectionTrainer",
                                    "ultralytics.models.yolo.obb.OBBTrainer"])
def test_trainer_hooks_we_override_exist_with_the_same_parameters(symbol):
    cls = resolve(symbol)
    for hook, params in HOOKS.items():
        fn = getattr(cls, hook, None)
        require(callable(fn), symbol, f"hook {hook} is gone")
        got = list(inspect.signature(fn).parameters)
        require(got[: len(params)] == params, symbol, f"{hook} takes {got}, KDTrainerMixin expects {params}")


def test_a_trainer_has_the_attributes_the_mixin_reads(detect_data, train_args):
    from ultralytics.models.yolo.detect import DetectionTrainer

    symbol = "ultralytics.models.yolo.detect.DetectionTrainer"
    trainer = DetectionTrainer(overrides={**train_args, "model": "yolo11n.yaml", "data": str(detect_data)})
    for attr in ("args", "ema", "last", "best", "epochs", "start_epoch", "resume", "save_dir", "data", "world_size"):
        require(hasattr(trainer, attr), symbol, f"no attribute {attr} after __init__")
    require(isinstance(trainer.data.get("train"), (str, list)), symbol,
            f"data['train'] is {trainer.data.get('train')!r}, not the path(s) the training loader is built from")
    source = inspect.getsource(resolve("ultralytics.engine.trainer.BaseTrainer"))
    require('self.data["train"]' in source, symbol, "the training loader is no longer built from self.data['train']: "
            "revisit KDTrainerMixin._add_pseudo_labelled_split")
    require(Path(trainer.last).name == "last.pt" and Path(trainer.best).name == "best.pt", symbol,
            f"checkpoints {trainer.last}, {trainer.best}")


@covers("ultralytics.engine.trainer.BaseTrainer._handle_nan_recovery")
def test_nan_recovery_still_has_the_student_model_branch_our_override_undoes():
    symbol = "ultralytics.engine.trainer.BaseTrainer._handle_nan_recovery"
    fn = resolve(symbol)
    require(list(inspect.signature(fn).parameters) == ["self", "epoch"], symbol, "the signature changed")
    source = inspect.getsource(fn)
    require("student_model" in source and "projector" in source, symbol,
            "the student_model/projector branch is gone: revisit KDTrainerMixin._handle_nan_recovery")
    require("self.last" in source and "self._load_checkpoint_state" in source, symbol,
            "it no longer reloads last.pt through _load_checkpoint_state (the sidecar restore relies on it)")


@covers("ultralytics.cfg.get_cfg", "ultralytics.models.yolo.detect.DetectionValidator")
def test_distill_settings_ride_on_the_args_namespace_but_not_through_get_cfg():
    from ultralytics.cfg import get_cfg
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import DEFAULT_CFG

    symbol = "ultralytics.cfg.get_cfg"
    try:
        get_cfg(DEFAULT_CFG, {"distill": {"method": "admd"}})
    except SyntaxError:
        pass
    else:
        pytest.fail(broken(symbol, "it accepted an unknown key; KDTrainerMixin pops 'distill' for nothing"))
    args = get_cfg(DEFAULT_CFG, {})
    args.distill = {"method": "admd"}
    require(vars(args).get("distill") == {"method": "admd"}, symbol, "vars(args) does not carry a new attribute")
    try:
        DetectionValidator(args=dict(vars(args)))
    except SyntaxError:
        pass
    else:
        pytest.fail(broken("ultralytics.models.yolo.detect.DetectionValidator", "it accepted args carrying 'distill'"))


@covers("ultralytics.utils.torch_utils.ModelEMA", "ultralytics.utils.torch_utils.unwrap_model")
def test_the_ema_is_a_frozen_eval_copy_of_the_unwrapped_model():
    from ultralytics.utils.torch_utils import ModelEMA, unwrap_model

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    require(unwrap_model(model) is model, "ultralytics.utils.torch_utils.unwrap_model", "a plain module was changed")
    require(unwrap_model(torch.nn.DataParallel(model)) is model, "ultralytics.utils.torch_utils.unwrap_model",
            "DataParallel was not unwrapped")
    ema = ModelEMA(torch.nn.DataParallel(model))
    symbol = "ultralytics.utils.torch_utils.ModelEMA"
    require(isinstance(ema.ema, torch.nn.Sequential) and ema.ema is not model, symbol, "ema is not a copy of the module")
    require(not ema.ema.training and not any(p.requires_grad for p in ema.ema.parameters()), symbol,
            "ema is not a frozen eval copy")
    require(ema.updates == 0 and torch.equal(ema.ema[0].weight, model[0].weight), symbol, "ema state differs")


@covers("ultralytics.utils.torch_utils.strip_optimizer")
def test_strip_optimizer_keeps_our_plain_student_and_drops_the_distill_args(tmp_path, tiny_detect):
    import copy

    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils.torch_utils import strip_optimizer

    symbol = "ultralytics.utils.torch_utils.strip_optimizer"
    path = tmp_path / "best.pt"
    torch.save({"epoch": 3, "model": None, "ema": copy.deepcopy(tiny_detect).half(), "updates": 7,
                "optimizer": {"state": {}}, "train_args": {"imgsz": 64, "task": "detect", "distill": {"method": "admd"}}},
               path)
    strip_optimizer(path)
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    require(type(ckpt["model"]) is DetectionModel, symbol, f"'model' is {type(ckpt['model']).__name__}")
    require(next(ckpt["model"].parameters()).dtype == torch.float16, symbol, "the model is not FP16")
    require(all(ckpt[k] is None for k in ("optimizer", "ema", "updates")) and ckpt["epoch"] == -1, symbol,
            "training state kept")
    require(ckpt["train_args"]["imgsz"] == 64 and "distill" not in ckpt["train_args"], symbol,
            f"train_args {sorted(ckpt['train_args'])[:5]}... (distill kept: {'distill' in ckpt['train_args']})")


# ------------------------------------------------------------------------------------------- export


@covers("ultralytics.engine.exporter.Exporter")
def test_exported_onnx_nodes_are_named_after_module_paths_with_the_head_branches(tmp_path):
    import onnx

    from admd_deploy.ultra.export import NODE_MODULE, export_onnx, head_decode_nodes

    symbol = "ultralytics.engine.exporter.Exporter"
    out = export_onnx("yolo11n.yaml", tmp_path / "m.onnx", imgsz=64, batch=1, dynamic=False, opset=17, simplify=True)
    nodes = onnx.load(str(out)).graph.node
    names = [n.name for n in nodes]
    modules = sorted({int(m.group(1)) for n in names if (m := NODE_MODULE.match(n))})
    require(bool(modules), symbol, "no node is named /model.N/...")
    head = f"/model.{modules[-1]}/"
    for branch in ("cv2.0/", "cv3.0/"):
        require(any(n.startswith(head + branch) for n in names), symbol, f"no {head}{branch} nodes")
    decode = set(head_decode_nodes(names))
    ops = {n.op_type for n in nodes if n.name in decode}
    require({"Softmax", "Sigmoid"} <= ops, symbol, f"the head's decode nodes hold {sorted(ops)}, not DFL and sigmoid")
    require(not any(n.op_type == "Conv" and n.name in decode and "dfl" not in n.name for n in nodes), symbol,
            "a branch convolution is named outside cv2/cv3/cv4")
    from admd_deploy.pipeline import onnx_passes

    model = onnx.load(str(out))
    require(onnx_passes.fast_dfl(model) == 1, symbol, "the DFL Softmax/Transpose pattern was not found")
    names = [n.name for n in model.graph.node]
    rewritten = [n for n in names if "fast_dfl" in n]
    require(bool(rewritten) and set(rewritten) <= set(head_decode_nodes(names)), symbol,
            f"the fast_dfl nodes {rewritten[:2]} fall outside the head's decode (Softmax scope moved)")


# ------------------------------------------------------------------------------------------- data


def _image(path: Path, h: int = 48, w: int = 64) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8))
    return path


@covers("ultralytics.data.utils.verify_image_label")
def test_verify_image_label_marks_a_dropped_sample_with_none_and_a_reason(tmp_path):
    from admd_deploy.ultra.data import label_problem

    symbol = "ultralytics.data.utils.verify_image_label"
    image = _image(tmp_path / "images" / "a.jpg")
    label = tmp_path / "labels" / "a.txt"
    label.parent.mkdir()
    label.write_text("5 0.5 0.5 0.2 0.2\n")
    out = resolve(symbol)((str(image), str(label), "", False, 2, 0, 0, False))
    require(out[0] is None and "ignoring corrupt image/label: " in str(out[-1]), symbol, f"returned {out!r}")
    reason = label_problem(str(image), str(label), 2)
    require(reason is not None and "class" in reason.lower(), symbol, f"reason {reason!r}")
    label.write_text("1 0.5 0.5 0.2 0.2\n")
    require(label_problem(str(image), str(label), 2) is None, symbol, "a valid pair was dropped")


@covers("ultralytics.data.utils.img2label_paths", "ultralytics.data.utils.IMG_FORMATS",
        "ultralytics.utils.DATASETS_DIR")
def test_label_paths_image_formats_and_datasets_dir():
    from admd_deploy.ultra.data import datasets_dir, image_formats, img2label_paths

    got = img2label_paths(["/d/images/train/x.jpg"])
    require(got == ["/d/labels/train/x.txt"], "ultralytics.data.utils.img2label_paths", f"{got}")
    formats = image_formats()
    require({"jpg", "jpeg", "png", "bmp", "tif"} <= formats and all(f == f.lower() and "." not in f for f in formats),
            "ultralytics.data.utils.IMG_FORMATS", f"{sorted(formats)}")
    require(datasets_dir().is_absolute(), "ultralytics.utils.DATASETS_DIR", f"{datasets_dir()}")


@covers("ultralytics.data.utils.check_det_dataset")
def test_check_det_dataset_resolves_the_splits(detect_data):
    from admd_deploy.ultra.validate import dataset_info

    info = dataset_info(detect_data)
    require(Path(info["val"]).is_absolute() and Path(info["val"]).exists(), "ultralytics.data.utils.check_det_dataset",
            f"val {info['val']}")
    require(info["nc"] == len(info["names"]) >= 1, "ultralytics.data.utils.check_det_dataset", f"nc {info['nc']}")


@covers("ultralytics.data.split_dota.get_windows", "ultralytics.data.split_dota.crop_and_save",
        "ultralytics.utils.TQDM")
def test_dota_windows_cover_the_scene_and_patches_are_named_and_normalised(tmp_path):
    from admd_deploy.ultra.data import crop_and_save, progress, split_windows

    windows = split_windows(100, 150, [64], [16])
    symbol = "ultralytics.data.split_dota.get_windows"
    require(windows.ndim == 2 and windows.shape[1] == 4, symbol, f"shape {windows.shape}")
    require(windows[:, 2].max() >= 150 and windows[:, 3].max() >= 100 and windows[0].tolist() == [0, 0, 64, 64],
            symbol, f"windows {windows.tolist()}")
    image = _image(tmp_path / "P0001.png", 100, 150)
    objs = [np.zeros((0, 9)) for _ in windows]
    objs[0] = np.array([[3, 8, 8, 40, 8, 40, 24, 8, 24]], dtype=np.float64)
    (tmp_path / "im").mkdir()
    (tmp_path / "lb").mkdir()
    crop_and_save(image, windows, objs, tmp_path / "im", tmp_path / "lb")
    symbol = "ultralytics.data.split_dota.crop_and_save"
    require((tmp_path / "im" / "P0001__64__0___0.jpg").is_file(), symbol, f"wrote {sorted(p.name for p in (tmp_path / 'im').iterdir())}")
    rows = np.loadtxt(tmp_path / "lb" / "P0001__64__0___0.txt", ndmin=2)
    require(np.allclose(rows, [[3, 0.125, 0.125, 0.625, 0.125, 0.625, 0.375, 0.125, 0.375]], atol=1e-6), symbol,
            f"label {rows.tolist()}")
    require(list(progress([1, 2, 3], total=3, desc="x")) == [1, 2, 3], "ultralytics.utils.TQDM", "iteration changed")
