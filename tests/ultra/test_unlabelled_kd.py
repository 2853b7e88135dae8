"""The KD term on unlabelled images: what KDModel computes with ``batch["kd_img"]``, and the trainer feeding it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from torch import nn

import admd_deploy
from admd_deploy.kd.criterion import KDCriterion, KDOutput
from admd_deploy.ultra.model import KD_IMAGES, KDModel, detection_head, feature_levels
from admd_deploy.kd.taps import FeatureTap


class Recording(nn.Module):
    """A stand-in criterion: records the maps it is given; its loss is the mean of the student maps' squares."""

    needs_score = False

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def forward(self, s_feats, t_feats, epoch, teacher_scores=None) -> KDOutput:
        self.calls.append(([f.detach().clone() for f in s_feats], [f.detach().clone() for f in t_feats]))
        loss = sum(f.pow(2).mean() for f in s_feats)
        return KDOutput(loss=loss, raw=loss.detach(), weight=torch.tensor(1.0), discrepancy=[loss.detach()] * 3)


def _models():
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import DetectionModel
    from ultralytics.utils import DEFAULT_CFG

    torch.manual_seed(0)
    student = DetectionModel("yolo11n.yaml", nc=2, verbose=False)
    student.args = get_cfg(DEFAULT_CFG, {})
    teacher = DetectionModel("yolo11s.yaml", nc=2, verbose=False).eval()
    return student, teacher


def _frames(folder, n: int):
    """``n`` grey 96x48 frames ``f00.jpg`` ... in ``folder`` (made), each a different shade."""
    folder.mkdir()
    for i in range(n):
        assert cv2.imwrite(str(folder / f"f{i:02d}.jpg"), np.full((48, 96, 3), 20 * i, np.uint8))
    return folder


def _batch(n: int) -> dict:
    g = torch.Generator().manual_seed(1)
    return {"img": torch.rand(n, 3, 64, 64, generator=g), "batch_idx": torch.arange(n).float(),
            "cls": torch.zeros(n, 1), "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.3]]).repeat(n, 1)}


def test_the_kd_term_runs_on_labelled_and_unlabelled_maps_together_and_detection_on_labelled_only():
    student, teacher = _models()
    criterion = Recording()
    kd = KDModel(student, teacher, criterion, feature_levels(student)).train()
    batch = _batch(2)
    extra = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    loss, items = kd.loss({**batch, KD_IMAGES: extra})

    (s_feats, t_feats), = criterion.calls
    assert [f.shape[0] for f in s_feats] == [5, 5, 5] and [f.shape[0] for f in t_feats] == [5, 5, 5]
    # The teacher's maps of the 5 images, in order: labelled first, then unlabelled.
    with torch.no_grad(), FeatureTap(detection_head(teacher)) as tap:
        teacher(torch.cat([batch["img"], extra]))
    for got, want in zip(t_feats, tap.require()):
        torch.testing.assert_close(got, want)
    # The student's: two passes in training mode (BatchNorm statistics per pass), concatenated.
    for images, rows in ((batch["img"], slice(0, 2)), (extra, slice(2, 5))):
        with torch.no_grad(), FeatureTap(detection_head(student)) as tap:
            student(images)
        for got, want in zip(s_feats, tap.require()):
            torch.testing.assert_close(got[rows], want)
    # Detection loss: the labelled batch alone, exactly as without unlabelled images.
    plain_loss, _ = KDModel(student, teacher, Recording(), feature_levels(student)).train().loss(_batch(2))
    torch.testing.assert_close(loss[:-1], plain_loss[:-1])
    # The KD term keeps the labelled batch's scale: loss * 2, the loss averaged over all 5 images' maps.
    want = sum(f.pow(2).mean() for f in s_feats) * 2
    torch.testing.assert_close(loss[-1], want)
    assert float(items["kd"]) == pytest.approx(float(want) / 2, rel=1e-5)


def test_validation_ignores_unlabelled_images():
    student, teacher = _models()
    criterion = Recording()
    kd = KDModel(student, teacher, criterion, feature_levels(student)).eval()
    loss, _ = kd.loss({**_batch(2), KD_IMAGES: torch.rand(3, 3, 64, 64)})
    assert criterion.calls == [] and float(loss[-1].detach()) == 0.0


@pytest.mark.slow
def test_distil_with_unlabelled_images_feeds_every_training_step_a_full_unlabelled_batch(
        detect_data, train_args, tmp_path, monkeypatch):
    frames = _frames(tmp_path / "frames", 11)
    seen: list[tuple] = []
    loss = KDModel.loss

    def spy(self, batch, preds=None):
        extra = batch.get(KD_IMAGES)
        seen.append((self.training, None if extra is None else (tuple(extra.shape), float(extra.min()),
                                                                 float(extra.max()), extra.dtype)))
        return loss(self, batch, preds)

    monkeypatch.setattr(KDModel, "loss", spy)
    result = admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", name="unl",
                                 unlabelled=str(frames), **{**train_args, "epochs": 1})
    training = [x for t, x in seen if t]
    assert len(training) == 2  # 16 labelled images, batch 8
    for shape, lo, hi, dtype in training:
        assert shape == (8, 3, 64, 64) and dtype == torch.float32
        assert 0.0 <= lo and hi <= 1.0
    assert result.best.is_file()
    import yaml

    args = yaml.safe_load((result.save_dir / "args.yaml").read_text())
    assert args["distill"]["unlabelled"] == str(frames.resolve())


def test_unlabelled_images_are_refused_for_the_student_alone_and_a_wrong_folder_before_training(detect_data, tmp_path):
    from admd_deploy.errors import MissingFileError, UsageError

    with pytest.raises(MissingFileError, match="is not a folder"):
        admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", unlabelled=str(tmp_path / "nope"))
    (tmp_path / "f").mkdir()
    assert cv2.imwrite(str(tmp_path / "f" / "a.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(UsageError, match="method 'none' has no KD term"):
        admd_deploy.distill(None, "yolo11n.yaml", detect_data, "none", unlabelled=str(tmp_path / "f"))


@pytest.mark.parametrize("method", ["mse", "admd"])
def test_the_kd_loss_on_concatenated_maps_is_the_image_weighted_mean_of_its_parts(method):
    # Why one criterion call on labelled + unlabelled maps weighs every image alike.
    crit = KDCriterion(method, [8, 8, 8], [8, 8, 8], loss_weight=1.0, weighting={"mode": "constant"})
    g = torch.Generator().manual_seed(0)
    s = [torch.randn(5, 8, 4, 4, generator=g) for _ in range(3)]
    t = [torch.randn(5, 8, 4, 4, generator=g) for _ in range(3)]
    whole = crit(s, t, epoch=5.0).raw
    parts = [crit([x[:2] for x in s], [x[:2] for x in t], epoch=5.0).raw,
             crit([x[2:] for x in s], [x[2:] for x in t], epoch=5.0).raw]
    assert float(whole) == pytest.approx((2 * float(parts[0]) + 3 * float(parts[1])) / 5, rel=1e-5)


@pytest.mark.slow
def test_pseudo_labelled_images_join_the_training_split_and_feed_no_separate_kd_batch(
        detect_data, train_args, tmp_path, monkeypatch):
    import admd_deploy.ultra.validate as validate

    frames = _frames(tmp_path / "frames", 11)
    asked = {}

    def teacher_predicts(weights, images, *, imgsz, task, conf, device, with_sizes):  # one box per frame
        asked.update(weights=weights, n=len(images), imgsz=imgsz, task=task, conf=conf, with_sizes=with_sizes)
        dets = [[{"cls": 1, "conf": 0.9, "xyxy": [24.0, 12.0, 72.0, 36.0]}, {"cls": 0, "conf": 0.2, "xyxy": [0, 0, 9, 9]}]
                for _ in images]
        return dets, [(96, 48)] * len(images)

    monkeypatch.setattr(validate, "predict_detections", teacher_predicts)
    seen: list[tuple] = []
    loss = KDModel.loss

    def spy(self, batch, preds=None):
        seen.append((self.training, batch["img"].shape[0], KD_IMAGES in batch))
        return loss(self, batch, preds)

    monkeypatch.setattr(KDModel, "loss", spy)
    result = admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", name="pseudo",
                                 unlabelled=str(frames), pseudo_conf=0.5, **{**train_args, "epochs": 1})
    assert asked == {"weights": "yolo11s.yaml", "n": 11, "imgsz": train_args["imgsz"], "task": "detect", "conf": 0.5,
                     "with_sizes": True}
    training = [(n, extra) for t, n, extra in seen if t]
    assert sum(n for n, _ in training) == 16 + 11  # the labelled images and the 11 pseudo-labelled ones
    assert not any(extra for _, extra in training)  # the frames are in the split, not a second KD stream
    labels = result.save_dir / "pseudo" / "labels"
    assert (labels / "f03.txt").read_text() == "1 0.500000 0.500000 0.500000 0.500000\n"  # the 0.2 box left out


@pytest.mark.slow
def test_the_student_alone_trains_on_the_labelled_and_the_pseudo_labelled_images(detect_data, train_args, tmp_path,
                                                                                  monkeypatch):
    import admd_deploy.ultra.validate as validate
    from admd_deploy.ultra.trainer import KDTrainerMixin

    frames = _frames(tmp_path / "frames", 5)
    monkeypatch.setattr(validate, "predict_detections", lambda weights, images, **kw: (
        [[{"cls": 0, "conf": 0.8, "xyxy": [0.0, 0.0, 48.0, 24.0]}] for _ in images], [(96, 48)] * len(images)))
    sizes, kd = [], []
    final_eval = KDTrainerMixin.final_eval

    def record(self):
        sizes.append(len(self.train_loader.dataset))
        kd.append(self.kd_model)
        final_eval(self)

    monkeypatch.setattr(KDTrainerMixin, "final_eval", record)
    result = admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "none", name="alone-pseudo",
                                 unlabelled=str(frames), pseudo_conf=0.5, **{**train_args, "epochs": 1})
    assert sizes == [16 + 5] and kd == [None]  # every image, and no KD term
    assert (result.save_dir / "pseudo" / "labels" / "f04.txt").read_text() == "0 0.250000 0.250000 0.500000 0.500000\n"
    from admd_deploy.errors import UsageError

    with pytest.raises(UsageError, match="method 'none' has no teacher to draw pseudo-labels from"):
        admd_deploy.distill(None, "yolo11n.yaml", detect_data, "none", unlabelled=str(frames), pseudo_conf=0.5)


def test_pseudo_labels_need_unlabelled_images_and_a_teacher(detect_data):
    from admd_deploy.errors import UsageError

    with pytest.raises(UsageError, match="pass unlabelled= .--unlabelled. too"):
        admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", pseudo_conf=0.5)
    with pytest.raises(UsageError, match="pseudo_conf.*in \\(0, 1\\)"):
        admd_deploy.distill("yolo11s.yaml", "yolo11n.yaml", detect_data, "admd", pseudo_conf=1.0, unlabelled=".")


def test_the_teacher_predicts_with_each_image_size(tmp_path):
    from admd_deploy.ultra.validate import predict_detections

    files = [tmp_path / "wide.png", tmp_path / "tall.png"]
    cv2.imwrite(str(files[0]), np.zeros((30, 70, 3), np.uint8))
    cv2.imwrite(str(files[1]), np.zeros((90, 40, 3), np.uint8))
    dets, sizes = predict_detections("yolo11n.yaml", files, imgsz=64, task="detect", conf=0.25, with_sizes=True)
    assert sizes == [(70, 30), (40, 90)] and len(dets) == 2
    assert predict_detections("yolo11n.yaml", files[:1], imgsz=64, task="detect") == dets[:1]
