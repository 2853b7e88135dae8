"""What the trainer builds before the first step: optimiser membership, a hidden frozen teacher, DDP relaunch."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest
import torch

from admd_deploy.kd.config import DistillConfig
from admd_deploy.ultra.model import KDModel
from admd_deploy.ultra.trainer import KDDetectionTrainer

pytestmark = pytest.mark.slow


@pytest.fixture()
def trainer(detect_data, train_args):
    cfg = DistillConfig(method="mgd", teacher="yolo11s.yaml")
    t = KDDetectionTrainer(overrides={**train_args, "model": "yolo11n.yaml", "data": str(detect_data),
                                      "name": "setup", "distill": cfg.to_dict()})
    t._setup_train()  # Ultralytics' own setup: model, optimiser, EMA, dataloaders
    return t


def test_align_and_generator_modules_are_in_the_optimiser_and_the_teacher_is_not(trainer):
    model = trainer.model
    assert isinstance(model, KDModel)
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    kd_params = list(model.kd.parameters())
    assert any("generator" in n or "losses" in n for n, _ in model.kd.named_parameters())
    assert kd_params and all(id(p) in in_opt for p in kd_params)
    assert not any(id(p) in in_opt for p in model.teacher.parameters())
    assert all(not p.requires_grad for p in model.teacher.parameters())


def test_cpu_training_uses_every_configured_thread_not_ultralytics_cores_minus_one(trainer):
    from admd_deploy.ultra import env as yolo_env

    assert torch.get_num_threads() == yolo_env.cpu_threads()


def test_teacher_stays_in_eval_mode_and_out_of_state_dict_ema_and_pickles(trainer):
    model = trainer.model
    model.train()
    assert model.training and not model.teacher.training
    assert not any(k.startswith("teacher") or "_teacher" in k for k in model.state_dict())
    assert trainer.ema.ema.teacher is None  # the EMA copy carries no teacher
    assert pickle.loads(pickle.dumps(model)).teacher is None
    assert copy.deepcopy(model).teacher is None
    n_teacher = sum(p.numel() for p in model.teacher.parameters())
    n_model = sum(p.numel() for p in model.parameters())
    assert n_model < n_teacher  # student + align + generators, not the bigger teacher


def test_no_feature_hook_survives_a_training_step(trainer):
    batch = trainer.preprocess_batch(next(iter(trainer.train_loader)))
    loss, items = trainer.model(batch)
    loss.sum().backward()
    assert {"kd", "kd_w", "d_P3", "d_P4", "d_P5"} <= set(items)
    for m in (*trainer.model.student_model.modules(), *trainer.model.teacher.modules()):
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert all(p.grad is None for p in trainer.model.teacher.parameters())
    assert any(p.grad is not None for p in trainer.model.kd.parameters())


def test_distill_settings_survive_the_multi_gpu_relaunch(detect_data, train_args):
    """Ultralytics' DDP launcher pickles type(trainer) and vars(trainer.args); the child rebuilds from them."""
    from ultralytics.utils import DEFAULT_CFG_DICT
    from ultralytics.utils.dist import generate_ddp_file
    from ultralytics.utils.patches import torch_load

    cfg = DistillConfig(method="cwd", teacher="yolo11s.yaml", loss_weight=3.0, params={"tau": 2.0})
    parent = KDDetectionTrainer(overrides={**train_args, "model": "yolo11n.yaml", "data": str(detect_data),
                                           "name": "ddp", "distill": cfg.to_dict()})
    script = Path(generate_ddp_file(parent))
    state_file = script.with_suffix(".pt")
    try:
        state = torch_load(state_file, map_location="cpu")
        text = script.read_text()
    finally:
        script.unlink(missing_ok=True)
        state_file.unlink(missing_ok=True)
    assert "trainer = state[\"trainer\"](cfg=cfg, overrides=state[\"args\"]" in text
    child_cfg = DEFAULT_CFG_DICT.copy()
    child_cfg.update(save_dir="")
    child = state["trainer"](cfg=child_cfg, overrides=state["args"], _callbacks=state["callbacks"])
    assert type(child) is KDDetectionTrainer
    assert child.distill == cfg
    assert child.args.distill == cfg.to_dict()


def test_the_levels_knob_reaches_the_criterion_by_level_name_and_an_unknown_level_is_refused(detect_data, train_args):
    from admd_deploy.errors import UsageError

    def setup(levels, name):
        cfg = DistillConfig(method="admd", teacher="yolo11s.yaml", levels=levels)
        t = KDDetectionTrainer(overrides={**train_args, "model": "yolo11n.yaml", "data": str(detect_data),
                                          "name": name, "distill": cfg.to_dict()})
        t._setup_train()
        return t

    assert setup("P3,P5", "levels").model.kd.distilled == [True, False, True]
    with pytest.raises(UsageError, match=r"distill.levels: P2 is not a level of this student \(its levels: P3, P4, P5\)"):
        setup("P2", "nolevel")
