"""Each Ultralytics branch that tests ``hasattr(model, "student_model")``: the behaviour we rely on or keep off.

The decision and the list are in ``admd_deploy/ultra/__init__.py``; numbers below follow that list.
Cheap: tiny YAML-built models and stand-in trainers, no training.
"""

from __future__ import annotations

import copy
import inspect
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from admd_deploy.ultra.model import KDModel, feature_levels
from admd_deploy.ultra.trainer import SIDECAR_FORMAT, KDDetectionTrainer, sidecar_path


@pytest.fixture()
def kd() -> KDModel:
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    student = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    student.args = get_cfg(DEFAULT_CFG, {})
    teacher = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    return KDModel(student, teacher, nn.Linear(1, 1), feature_levels(student))  # a stand-in criterion


def test_1_ultralytics_own_distillation_wrap_stays_off(detect_data, train_args):
    from ultralytics.engine.trainer import BaseTrainer

    source = inspect.getsource(BaseTrainer._setup_train)
    assert "self.args.distill_model is not None" in source  # the switch of Ultralytics' DistillationModel wrap
    trainer = KDDetectionTrainer(overrides={**train_args, "model": "yolo11n.yaml", "data": str(detect_data),
                                            "distill": {"method": "none"}})
    assert trainer.args.distill_model is None
    assert isinstance(trainer.args.distill, dict)  # our settings ride on their own key


def test_2_our_wrapper_is_never_rebuilt_as_ultralytics_distillation_model(kd):
    from ultralytics.nn.distill_model import DistillationModel

    assert not isinstance(kd, DistillationModel)  # setup_model / strip_optimizer unwrap only DistillationModel
    assert not hasattr(kd, "teacher_model") and not hasattr(kd, "projector")


def _stand_in_trainer(kd: KDModel, last):
    """A KDDetectionTrainer with only what NaN recovery reads, as Ultralytics' epoch loop leaves it."""
    from ultralytics.utils.torch_utils import ModelEMA

    t = KDDetectionTrainer.__new__(KDDetectionTrainer)
    t.__dict__.update(loss=torch.tensor(float("nan")), fitness=None, start_epoch=0, last=last, nan_recovery_attempts=0,
                      model=kd, ema=ModelEMA(kd), scheduler=SimpleNamespace(last_epoch=0))
    t._model_train = lambda: None

    def load_state(ckpt):  # BaseTrainer._load_checkpoint_state without optimizer/scaler/stopper
        t.ema = ModelEMA(t.model)
        t.ema.ema.load_state_dict(ckpt["ema"].float().state_dict())
        t.ema.updates = ckpt["updates"]

    t._load_checkpoint_state = load_state
    return t


def test_3_ultralytics_nan_recovery_branch_breaks_on_kdmodel_and_our_override_restores_student_and_kd_state(
        tmp_path, kd):
    from ultralytics.engine.trainer import BaseTrainer

    saved = copy.deepcopy(kd.student_model)
    with torch.no_grad():
        for p in saved.parameters():
            p.add_(0.5)  # last.pt's student differs from the live one
    last = tmp_path / "last.pt"
    torch.save({"epoch": 0, "model": None, "ema": saved.half(), "updates": 3, "train_args": {}}, last)  # plain student
    torch.save({"format": SIDECAR_FORMAT, "epoch": 0, "kd": {"weight": torch.full((1, 1), 5.0), "bias": torch.zeros(1)},
                "kd_ema": {"weight": torch.full((1, 1), 7.0), "bias": torch.zeros(1)}}, sidecar_path(last))

    with pytest.raises(AttributeError):  # the student_model branch, left on, reads a DistillationModel's layout
        BaseTrainer._handle_nan_recovery(_stand_in_trainer(kd, last), 1)

    trainer = _stand_in_trainer(kd, last)
    assert trainer._handle_nan_recovery(1) is True
    assert trainer.model is kd and trainer.kd_model is kd
    expected = saved.float().state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in kd.student_model.state_dict().items())
    assert kd.kd.weight.item() == 5.0
    assert isinstance(trainer.ema.ema, KDModel) and trainer.ema.ema.kd.weight.item() == 7.0 and trainer.ema.updates == 3
    assert all(torch.equal(v, expected[k]) for k, v in trainer.ema.ema.student_model.state_dict().items())


def test_4_5_10_the_student_model_expression_reaches_the_students_head_and_criterion(kd):
    target = getattr(kd, "student_model", kd)  # resume_training, build_optimizer (MuSGD), Exporter
    assert target.model[-1] is kd.student_model.model[-1]
    assert hasattr(target.model[-1], "cv3")  # build_optimizer boosts the head's class branch
    assert type(kd.init_criterion()) is type(kd.student_model.init_criterion())
    kd.criterion = "sentinel"
    assert kd.student_model.criterion == "sentinel"


def test_6_class_weights_land_on_the_students_criterion_model(kd):
    import numpy as np
    from ultralytics.models.yolo.detect import DetectionTrainer

    stand_in = SimpleNamespace(args=SimpleNamespace(cls_pw=1.0), model=kd, device=torch.device("cpu"),
                               get_class_counts=lambda: np.array([1.0, 3.0], dtype=np.float32))
    stand_in.compute_class_weights = lambda counts: DetectionTrainer.compute_class_weights(stand_in, counts)
    DetectionTrainer.set_class_weights(stand_in)
    assert torch.allclose(kd.student_model.class_weights, torch.tensor([1.5, 0.5]))


def test_7_quantisation_aware_training_sees_no_qat_state_on_kdmodel(kd):
    from ultralytics.utils.torch_utils import qat_state

    assert qat_state(kd) is None


def test_8_the_ema_copy_carries_no_teacher_without_ultralytics_teacher_model_branch(kd):
    from ultralytics.utils.torch_utils import ModelEMA

    ema = ModelEMA(kd).ema
    assert isinstance(ema, KDModel) and ema.teacher is None and kd.teacher is not None
    assert not hasattr(ema, "teacher_model")


def test_9_strip_optimizer_unwraps_only_ultralytics_distillation_model():
    from ultralytics.utils.torch_utils import strip_optimizer

    source = inspect.getsource(strip_optimizer)
    assert "isinstance(x[\"model\"], DistillationModel)" in source  # our plain-student checkpoint is left as is
