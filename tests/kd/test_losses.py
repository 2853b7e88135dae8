"""Every registered loss: contract checks on a shared table, plus hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from admd_deploy.kd import build_loss
from admd_deploy.kd.losses import ADMDLoss, MGDLoss

# (method, params): every loss, and the ADMD variants, share the contract tests.
CASES = [
    ("admd", {}),
    ("admd", {"mask": "softmax", "tau": 0.5}),
    ("admd", {"discrepancy": "l1"}),
    ("admd", {"discrepancy": "cosine", "mask": "uniform"}),
    ("admd", {"normalize": "channel"}),
    ("mse", {}),
    ("score_l2", {}),
    ("cwd", {"tau": 2.0}),
    ("mgd", {}),
    ("pkd", {}),
]
IDS = [f"{m}-{'-'.join(f'{k}={v}' for k, v in p.items())}" if p else m for m, p in CASES]
ZERO_AT_MATCH = [(m, p) for m, p in CASES if m != "mgd"]  # MGD's generator rebuilds, it does not copy


def feature_pair(dtype: torch.dtype = torch.float32, seed: int = 0, channels: int = 3):
    g = torch.Generator().manual_seed(seed)
    student = torch.randn(2, channels, 4, 5, generator=g).to(dtype)
    teacher = torch.randn(2, channels, 4, 5, generator=g).to(dtype)
    score = torch.rand(2, 1, 4, 5, generator=g)
    return student, teacher, score


def run(loss, student, teacher, score):
    torch.manual_seed(0)  # MGD's random mask
    return loss(student, teacher, score)


@pytest.mark.parametrize(("method", "params"), CASES, ids=IDS)
def test_loss_returns_a_finite_float32_scalar(method, params):
    out = run(build_loss(method, 3, **params), *feature_pair())
    assert out.shape == () and out.dtype == torch.float32
    assert torch.isfinite(out) and out > 0


@pytest.mark.parametrize(("method", "params"), ZERO_AT_MATCH)
def test_loss_is_zero_when_student_equals_teacher(method, params):
    _, teacher, score = feature_pair()
    out = run(build_loss(method, 3, **params), teacher.clone(), teacher, score)
    assert out.item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("method", "params"), CASES, ids=IDS)
def test_gradient_reaches_the_student_and_not_the_teacher(method, params):
    student, teacher, score = feature_pair()
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    score.requires_grad_(True)
    run(build_loss(method, 3, **params), student, teacher, score).backward()
    assert student.grad is not None and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
    assert teacher.grad is None
    assert score.grad is None


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(("method", "params"), CASES, ids=IDS)
def test_half_precision_inputs_give_the_float32_loss_of_their_values(method, params, dtype):
    student, teacher, score = feature_pair(dtype)
    loss = build_loss(method, 3, **params)
    out = run(loss, student, teacher, score)
    reference = run(loss, student.float(), teacher.float(), score)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.mark.parametrize(("method", "params"), CASES, ids=IDS)
def test_loss_is_computed_in_float32_under_autocast(method, params):
    student, teacher, score = feature_pair()
    loss = build_loss(method, 3, **params)
    reference = run(loss, student, teacher, score)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = run(loss, student, teacher, score)
    assert out.dtype == torch.float32
    assert out.item() == pytest.approx(reference.item(), rel=1e-6)


@pytest.mark.parametrize(("method", "params"), CASES, ids=IDS)
def test_loss_rejects_maps_of_different_shapes(method, params):
    student, teacher, score = feature_pair()
    with pytest.raises(ValueError, match="same shape"):
        build_loss(method, 3, **params)(student[:, :, :3], teacher, score)


def test_score_l2_without_teacher_score_raises():
    student, teacher, _ = feature_pair()
    with pytest.raises(ValueError, match="teacher_score"):
        build_loss("score_l2", 3)(student, teacher)


def test_score_l2_rejects_a_score_of_another_grid():
    student, teacher, score = feature_pair()
    with pytest.raises(ValueError, match=r"teacher_score must be \(N, 1, H, W\)"):
        build_loss("score_l2", 3)(student, teacher, score[:, :, :2])


def test_score_l2_accepts_flattened_scores_like_ultralytics():
    student, teacher, score = feature_pair()
    loss = build_loss("score_l2", 3)
    assert loss(student, teacher, score.flatten(2)).item() == loss(student, teacher, score).item()


# ---- hand-computed values -------------------------------------------------------------------

# One channel, 2x2: T = 0 and A = [[0, 1], [2, 3]], so (T - A)^2 = [0, 1, 4, 9], mean 3.5.
A_RAMP = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
T_ZERO = torch.zeros(1, 1, 2, 2)

# Two channels, 2x2, chosen so that each location has an easy cosine:
#   loc (0,0): t=(1,0) a=(0,1)   cos 0    |T-A| = (1,1)  (T-A)^2 sum_c 2
#   loc (0,1): t=(1,0) a=(2,0)   cos 1    |T-A| = (1,0)  sum_c 1
#   loc (1,0): t=(1,1) a=(1,-1)  cos 0    |T-A| = (0,2)  sum_c 4
#   loc (1,1): t=(0,1) a=(0,-1)  cos -1   |T-A| = (0,2)  sum_c 4
T_PAIR = torch.tensor([[[[1.0, 1.0], [1.0, 0.0]], [[0.0, 0.0], [1.0, 1.0]]]])
A_PAIR = torch.tensor([[[[0.0, 2.0], [1.0, 0.0]], [[1.0, 0.0], [-1.0, -1.0]]]])


def test_mse_of_a_ramp_is_hand_computed():
    assert build_loss("mse", 1)(A_RAMP, T_ZERO).item() == pytest.approx(3.5)


def test_admd_linear_mask_and_loss_are_hand_computed():
    loss = ADMDLoss(1)
    d = loss.discrepancy_map(A_RAMP, T_ZERO)
    assert d.tolist() == [[[0.0, 1.0], [4.0, 9.0]]]
    mask = loss.mask_from(d)
    assert mask.flatten().tolist() == pytest.approx([0, 1 / 3.5, 4 / 3.5, 9 / 3.5], rel=1e-5)
    # mean(M * d2) = (1 + 16 + 81) / 3.5 / 4 = 7
    assert loss(A_RAMP, T_ZERO).item() == pytest.approx(7.0, rel=1e-5)


def test_admd_channel_normalisation_is_hand_computed():
    loss = ADMDLoss(1, normalize="channel")
    # ramp 0..3: mean 1.5, variance 1.25 -> standardised +-1.5 / sqrt(1.25), +-0.5 / sqrt(1.25); the zero
    # teacher stays 0. D = 1.8, 0.2, 0.2, 1.8 (mean 1, so M = D); loss = mean(D^2) = 1.64
    assert loss.discrepancy_map(A_RAMP, T_ZERO).flatten().tolist() == pytest.approx([1.8, 0.2, 0.2, 1.8], rel=1e-5)
    assert loss(A_RAMP, T_ZERO).item() == pytest.approx(1.64, rel=1e-5)


def test_admd_channel_normalisation_ignores_each_channels_scale_and_offset():
    student, teacher, _ = feature_pair(channels=4)
    scale = torch.tensor([0.1, 3.0, 10.0, 1.0]).view(1, 4, 1, 1)
    plain, normed = ADMDLoss(4), ADMDLoss(4, normalize="channel")
    assert normed(student * scale + 5.0, teacher * 7.0).item() == pytest.approx(normed(student, teacher).item(), rel=1e-4)
    assert plain(student * scale + 5.0, teacher).item() != pytest.approx(plain(student, teacher).item(), rel=1e-2)
    with pytest.raises(ValueError, match="normalize must be one of none, channel"):
        ADMDLoss(4, normalize="layer")


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_admd_softmax_mask_and_loss_are_hand_computed(tau):
    loss = ADMDLoss(1, mask="softmax", tau=tau)
    z = [0.0, 1 / 3.5, 4 / 3.5, 9 / 3.5]  # D / mean(D)
    e = [math.exp(v / tau) for v in z]
    expected_mask = [4 * v / sum(e) for v in e]  # H*W * softmax
    mask = loss.mask_from(loss.discrepancy_map(A_RAMP, T_ZERO))
    assert mask.flatten().tolist() == pytest.approx(expected_mask, rel=1e-5)
    expected_loss = sum(m * d2 for m, d2 in zip(expected_mask, [0, 1, 4, 9])) / 4
    assert loss(A_RAMP, T_ZERO).item() == pytest.approx(expected_loss, rel=1e-5)


@pytest.mark.parametrize(
    ("discrepancy", "mask", "expected_d", "expected_loss"),
    [
        # mse: mean_c (T-A)^2 = [1, .5, 2, 2], mean 1.375; loss = (2*1 + 1*.5 + 4*2 + 4*2) / 1.375 / 8
        ("mse", "linear", [1.0, 0.5, 2.0, 2.0], 18.5 / 1.375 / 8),
        # l1: mean_c |T-A| = [1, .5, 1, 1], mean .875; loss = (2 + .5 + 4 + 4) / .875 / 8 = 1.5
        ("l1", "linear", [1.0, 0.5, 1.0, 1.0], 1.5),
        # cosine: 1 - cos = [1, 0, 1, 2], mean 1; loss = (2 + 0 + 4 + 8) / 8 = 1.75
        ("cosine", "linear", [1.0, 0.0, 1.0, 2.0], 1.75),
        # uniform: plain mean of (T-A)^2 = 11 / 8
        ("cosine", "uniform", [1.0, 0.0, 1.0, 2.0], 11 / 8),
    ],
)
def test_admd_discrepancies_are_hand_computed(discrepancy, mask, expected_d, expected_loss):
    loss = ADMDLoss(2, discrepancy=discrepancy, mask=mask)
    assert loss.discrepancy_map(A_PAIR, T_PAIR).flatten().tolist() == pytest.approx(expected_d, abs=1e-6)
    assert loss(A_PAIR, T_PAIR).item() == pytest.approx(expected_loss, rel=1e-5)


def test_admd_mask_has_mean_one_per_image_and_no_gradient():
    student, teacher, _ = feature_pair()
    student.requires_grad_(True)
    loss = ADMDLoss(3)
    mask = loss.mask_from(loss.discrepancy_map(student, teacher))
    assert not mask.requires_grad
    assert mask.mean((1, 2)).tolist() == pytest.approx([1.0, 1.0], rel=1e-5)


def test_score_l2_is_hand_computed():
    # Channel 0 has (A-T)^2 = [0, 1, 4, 9], channel 1 matches. Scores [1, .5, .25, 0]:
    # sum(mse * s) = .5 + 1 = 1.5; sum(s) * C = 1.75 * 2 -> 3/7.
    student = torch.cat([A_RAMP, torch.ones(1, 1, 2, 2)], 1)
    teacher = torch.cat([T_ZERO, torch.ones(1, 1, 2, 2)], 1)
    score = torch.tensor([[[[1.0, 0.5], [0.25, 0.0]]]])
    assert build_loss("score_l2", 2)(student, teacher, score).item() == pytest.approx(3 / 7, rel=1e-6)


@pytest.mark.parametrize("tau", [1.0, 2.0])
def test_cwd_is_hand_computed(tau):
    # Teacher uniform over the 4 locations; student logits log([1, 1, 1, 5]).
    teacher = torch.zeros(1, 1, 2, 2)
    student = torch.tensor([[[[0.0, 0.0], [0.0, math.log(5.0)]]]])
    weights = [1.0, 1.0, 1.0, 5.0 ** (1 / tau)]
    p_s = [v / sum(weights) for v in weights]
    kl = sum(0.25 * math.log(0.25 / q) for q in p_s)
    assert build_loss("cwd", 1, tau=tau)(student, teacher).item() == pytest.approx(kl * tau**2, rel=1e-5)


def test_pkd_is_hand_computed_as_one_minus_pearson_r():
    # T = [0, 1, 2, 3], A = [0, 0, 0, 4]; Pearson r = 1.5 / sqrt(3.75).
    teacher = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]]])
    student = torch.tensor([[[[0.0, 0.0], [0.0, 4.0]]]])
    expected = 1 - 1.5 / math.sqrt(3.75)
    assert build_loss("pkd", 1)(student, teacher).item() == pytest.approx(expected, rel=1e-5)


def test_pkd_ignores_the_scale_of_either_map():
    student, teacher, _ = feature_pair()
    loss = build_loss("pkd", 3)
    assert loss(100 * student + 3, teacher).item() == pytest.approx(loss(student, 10 * teacher).item(), rel=1e-4)


def test_mgd_is_hand_computed_with_a_constant_generator():
    loss = MGDLoss(1, mask_ratio=0.0)
    for conv in (loss.generator[0], loss.generator[2]):
        torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(conv.bias)
    torch.nn.init.constant_(loss.generator[2].bias, 0.5)  # G(x) = 0.5 everywhere
    teacher = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[0.5, 0.5], [0.5, -0.5]]]])
    # sum((0.5 - T)^2) / N = ((.25 + .25 + 2.25 + 6.25) + (0 + 0 + 0 + 1)) / 2 = 5
    assert loss(torch.randn(2, 1, 2, 2), teacher).item() == pytest.approx(5.0)


def test_mgd_zeroes_the_mask_ratio_share_of_locations_in_every_channel():
    loss = MGDLoss(2, mask_ratio=0.65)
    seen = []
    loss.generator.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    torch.manual_seed(0)
    loss(torch.ones(4, 2, 32, 32), torch.zeros(4, 2, 32, 32))
    masked = seen[0] == 0
    assert torch.equal(masked[:, 0], masked[:, 1])  # one mask per location, shared by the channels
    assert masked.float().mean().item() == pytest.approx(0.65, abs=0.04)


def test_mgd_generator_is_a_trainable_submodule():
    loss = MGDLoss(3)
    params = list(loss.parameters())
    assert len(params) == 4 and all(p.requires_grad for p in params)
    student, teacher, _ = feature_pair()
    loss(student, teacher).backward()
    assert all(p.grad is not None for p in params)
