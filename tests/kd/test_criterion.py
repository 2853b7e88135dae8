"""KDCriterion and build_align on toy feature pyramids."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from admd_deploy.kd import KDCriterion, KDOutput, LOSSES, available_methods, build_align

STUDENT = [4, 8]
TEACHER = [8, 8]
METHODS = [m for m in available_methods() if m != "none"]


def pyramid(channels, n=2, sizes=((4, 4), (2, 2)), seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, c, h, w, generator=g).to(dtype) for c, (h, w) in zip(channels, sizes)]


def scores(n=2, sizes=((4, 4), (2, 2))):
    return [torch.rand(n, 1, h, w) for h, w in sizes]


def test_align_is_identity_when_widths_match_and_a_1x1_conv_when_they_differ():
    align = build_align([4, 8, 16], [8, 8, 32])
    assert isinstance(align[1], nn.Identity)
    for conv, (cs, ct) in ((align[0], (4, 8)), (align[2], (16, 32))):
        assert isinstance(conv, nn.Conv2d) and conv.kernel_size == (1, 1) and conv.bias is not None
        assert (conv.in_channels, conv.out_channels) == (cs, ct)


def test_align_rejects_lists_of_different_lengths_naming_both():
    with pytest.raises(ValueError, match=r"student_channels \[4, 8\] and teacher_channels \[8\]"):
        build_align([4, 8], [8])


@pytest.mark.parametrize("widths", [[], [0, 8], [8.0]])
def test_align_rejects_non_positive_or_non_int_widths(widths):
    with pytest.raises(ValueError, match="positive ints"):
        build_align(widths, widths)


def test_criterion_builds_one_loss_per_level_at_teacher_width():
    criterion = KDCriterion("admd", [4, 8, 16], [8, 8, 32])
    assert [loss.channels for loss in criterion.losses] == [8, 8, 32]
    assert isinstance(criterion.align[1], nn.Identity) and isinstance(criterion.align[0], nn.Conv2d)


@pytest.mark.parametrize("method", METHODS)
def test_loss_is_lambda_times_weight_times_raw(method):
    criterion = KDCriterion(
        method, STUDENT, TEACHER, loss_weight=0.3, weighting={"mode": "linear", "w_max": 10.0}, total_epochs=4.0
    )
    torch.manual_seed(0)
    out = criterion(pyramid(STUDENT), pyramid(TEACHER, seed=1), epoch=2.0, teacher_scores=scores())
    assert isinstance(out, KDOutput)
    assert out.weight.item() == pytest.approx(5.5)  # 1 + 9 * 2/4
    assert out.loss.item() == pytest.approx(0.3 * 5.5 * out.raw.item(), rel=1e-6)
    assert out.loss.requires_grad and not out.raw.requires_grad and not out.weight.requires_grad
    assert out.loss.shape == () and out.loss.dtype == torch.float32
    assert len(out.discrepancy) == 2 and all(d.shape == () and not d.requires_grad for d in out.discrepancy)


@pytest.mark.parametrize("method", METHODS)
def test_loss_weight_defaults_to_the_loss_class_default(method):
    assert KDCriterion(method, STUDENT, TEACHER).loss_weight == LOSSES[method].default_weight


def test_raw_is_the_sum_of_levels_and_discrepancy_is_the_per_level_mse():
    criterion = KDCriterion("mse", [8, 8], [8, 8])  # identity align: A = S
    student, teacher = pyramid([8, 8]), pyramid([8, 8], seed=1)
    out = criterion(student, teacher, epoch=0.0)
    per_level = [(t - s).pow(2).mean() for s, t in zip(student, teacher)]
    assert [d.item() for d in out.discrepancy] == pytest.approx([v.item() for v in per_level])
    assert out.raw.item() == pytest.approx(sum(v.item() for v in per_level))


def test_gradient_reaches_the_student_maps_and_the_align_conv_not_the_teacher():
    criterion = KDCriterion("admd", STUDENT, TEACHER)
    student = [s.requires_grad_(True) for s in pyramid(STUDENT)]
    teacher = [t.requires_grad_(True) for t in pyramid(TEACHER, seed=1)]
    criterion(student, teacher, epoch=0.0).loss.backward()
    assert all(s.grad is not None and s.grad.abs().sum() > 0 for s in student)
    assert all(t.grad is None for t in teacher)
    assert criterion.align[0].weight.grad is not None


@pytest.mark.parametrize("method", ["admd", "mse", "mgd"])
def test_during_the_align_warmup_only_the_connectors_learn(method):
    criterion = KDCriterion(method, STUDENT, TEACHER, align_warmup_epochs=1.0)
    for epoch, student_learns in ((0.0, False), (0.99, False), (1.0, True), (3.5, True)):
        criterion.zero_grad()
        student = [s.requires_grad_(True) for s in pyramid(STUDENT)]
        out = criterion(student, pyramid(TEACHER, seed=1), epoch=epoch)
        out.loss.backward()
        assert out.raw > 0 and criterion.align[0].weight.grad.abs().sum() > 0  # the connector always learns
        assert all((s.grad is not None) == student_learns for s in student), (method, epoch)
    # the same loss value either way: only where the gradient goes changes
    a = KDCriterion(method, STUDENT, TEACHER, align_warmup_epochs=1.0)
    b = KDCriterion(method, STUDENT, TEACHER)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(0)
    ra = a(pyramid(STUDENT), pyramid(TEACHER, seed=1), epoch=0.0).raw
    torch.manual_seed(0)
    rb = b(pyramid(STUDENT), pyramid(TEACHER, seed=1), epoch=0.0).raw
    assert torch.allclose(ra, rb)


def test_the_student_share_is_zero_in_the_warmup_then_rises_linearly_over_the_ramp():
    criterion = KDCriterion("admd", STUDENT, TEACHER, align_warmup_epochs=1.0, ramp_epochs=2.0)
    shares = [criterion.student_share(e) for e in (0.0, 0.99, 1.0, 1.5, 2.0, 3.0, 7.0)]
    assert shares == [0.0, 0.0, 0.0, 0.25, 0.5, 1.0, 1.0]
    assert KDCriterion("admd", STUDENT, TEACHER, align_warmup_epochs=1.0).student_share(1.0) == 1.0  # no ramp


@pytest.mark.parametrize("method", ["admd", "mse", "mgd"])
def test_during_the_ramp_the_student_gets_its_share_of_the_gradient_and_the_rest_is_unchanged(method):
    full = KDCriterion(method, STUDENT, TEACHER)
    ramped = KDCriterion(method, STUDENT, TEACHER, align_warmup_epochs=1.0, ramp_epochs=4.0)
    ramped.load_state_dict(full.state_dict())
    outs, grads = [], []
    for criterion, epoch in ((full, 2.0), (ramped, 2.0)):  # the ramp is a quarter of the way: share 0.25
        student = [s.requires_grad_(True) for s in pyramid(STUDENT)]
        torch.manual_seed(0)  # MGD draws its mask
        out = criterion(student, pyramid(TEACHER, seed=1), epoch=epoch)
        out.loss.backward()
        outs.append(out)
        grads.append(([s.grad for s in student], [p.grad for p in criterion.align.parameters()]))
    assert torch.equal(outs[0].raw, outs[1].raw) and torch.equal(outs[0].loss, outs[1].loss)
    for g_full, g_ramp in zip(grads[0][0], grads[1][0]):
        assert torch.allclose(g_ramp, 0.25 * g_full, rtol=1e-5, atol=1e-12) and g_full.abs().sum() > 0
    for g_full, g_ramp in zip(grads[0][1], grads[1][1]):  # the connectors learn at the full rate
        assert torch.allclose(g_ramp, g_full, rtol=1e-5, atol=1e-12)


def _linear_teacher(student, weight, bias):
    """Teacher maps that are exactly ``weight @ s + bias`` at every location of level 0; level 1 as given."""
    t0 = torch.einsum("oc,nchw->nohw", weight, student[0]) + bias.view(1, -1, 1, 1)
    return [t0, student[1].clone()]


@pytest.mark.parametrize("method", ["mse", "admd"])
def test_lstsq_sets_the_connector_to_the_linear_map_behind_the_teacher_after_the_warmup(method):
    g = torch.Generator().manual_seed(3)
    weight, bias = torch.randn(8, 4, generator=g), torch.randn(8, generator=g)
    criterion = KDCriterion(method, STUDENT, TEACHER, align_warmup_epochs=1.0, align_init="lstsq", ridge=0.0)
    for step in range(4):  # the warm-up: statistics accumulate, the connector keeps its own (trained) weights
        student = pyramid(STUDENT, seed=10 + step)
        out = criterion(student, _linear_teacher(student, weight, bias), epoch=step / 4)
        assert out.raw > 0.1 and not bool(criterion.align_fitted)
    assert criterion.fit_gram0[-1, -1] == 4 * 2 * 16  # 4 steps of 2 images of 4x4 locations
    student = pyramid(STUDENT, seed=99)
    out = criterion(student, _linear_teacher(student, weight, bias), epoch=1.0)  # the first step after it: fitted
    assert bool(criterion.align_fitted)
    assert torch.allclose(criterion.align[0].weight[:, :, 0, 0], weight, atol=1e-4)
    assert torch.allclose(criterion.align[0].bias, bias, atol=1e-4)
    assert out.discrepancy[0] < 1e-8  # level 1 is an identity (8 -> 8) and is left alone
    assert isinstance(criterion.align[1], nn.Identity) and not hasattr(criterion, "fit_gram1")


def test_lstsq_reports_the_discrepancy_before_and_after_and_fits_once():
    criterion = KDCriterion("mse", [4], [3], align_warmup_epochs=1.0, align_init="lstsq", ridge=1e-6)
    s = [torch.tensor([[[[1.0, 2.0]], [[0.0, 1.0]], [[1.0, 1.0]], [[3.0, 0.0]]]])]  # 1 image, 4 channels, 1x2
    t = [torch.tensor([[[[2.0, 4.0]], [[1.0, 1.0]], [[0.0, 0.0]]]])]
    criterion(s, t, epoch=0.0)
    with torch.no_grad():  # a connector with zero weights and bias: (T - A)^2 = T^2, mean (4 + 16 + 1 + 1) / 6
        criterion.align[0].weight.zero_()
        criterion.align[0].bias.zero_()
    (before, after), = criterion.fit_align()
    assert before == pytest.approx(22 / 6) and after < 1e-3  # 2 locations, 5 unknowns a channel: an exact fit
    fitted = criterion.align[0].weight.clone()
    criterion(s, t, epoch=2.0)  # already fitted: the connector is left to the optimiser
    assert torch.equal(criterion.align[0].weight, fitted)


def test_lstsq_shrinks_the_map_by_the_ridge_relative_to_the_students_scale():
    # One student channel s = (1, -1) at two locations, teacher (2s, -s): G = [[2, 0], [0, 2]], C = [[4, -2], [0, 0]].
    # The ridge is r * mean diag(G[:1, :1]) = 2r on the weight only, so w = (2, -1) * 2 / (2 + 2r), bias 0.
    s = [torch.tensor([[[[1.0, -1.0]]]])]
    t = [torch.tensor([[[[2.0, -2.0]], [[-1.0, 1.0]]]])]
    for r in (0.1, 1.0):
        criterion = KDCriterion("mse", [1], [2], align_warmup_epochs=1.0, align_init="lstsq", ridge=r)
        criterion(s, t, epoch=0.0)
        criterion.fit_align()
        assert torch.allclose(criterion.align[0].weight.flatten(), torch.tensor([2.0, -1.0]) / (1 + r))
        assert torch.allclose(criterion.align[0].bias, torch.zeros(2), atol=1e-7)


def test_lstsq_accumulates_only_in_training_mode_and_survives_a_resume_inside_the_warmup():
    g = torch.Generator().manual_seed(4)
    weight, bias = torch.randn(8, 4, generator=g), torch.randn(8, generator=g)
    batches = [pyramid(STUDENT, seed=20 + k) for k in range(3)]
    whole = KDCriterion("mse", STUDENT, TEACHER, align_warmup_epochs=1.0, align_init="lstsq")
    first = KDCriterion("mse", STUDENT, TEACHER, align_warmup_epochs=1.0, align_init="lstsq")
    first.eval()
    first(batches[0], _linear_teacher(batches[0], weight, bias), epoch=0.0)
    assert first.fit_gram0.abs().sum() == 0  # validation passes do not count
    first.train()
    for k, crit in ((0, whole), (1, whole), (2, whole), (0, first), (1, first)):
        crit(batches[k], _linear_teacher(batches[k], weight, bias), epoch=k / 3)
    resumed = KDCriterion("mse", STUDENT, TEACHER, align_warmup_epochs=1.0, align_init="lstsq")
    resumed.load_state_dict(first.state_dict())  # what the sidecar checkpoint holds
    resumed(batches[2], _linear_teacher(batches[2], weight, bias), epoch=2 / 3)
    for crit in (whole, resumed):
        crit(batches[0], _linear_teacher(batches[0], weight, bias), epoch=1.0)
    assert torch.allclose(whole.align[0].weight, resumed.align[0].weight)
    again = KDCriterion("mse", STUDENT, TEACHER, align_warmup_epochs=1.0, align_init="lstsq")
    again.load_state_dict(whole.state_dict())
    kept = again.align[0].weight.clone()
    again(batches[1], _linear_teacher(batches[1], weight, bias), epoch=1.5)  # fitted before the resume: not again
    assert torch.equal(again.align[0].weight, kept)


def test_lstsq_without_a_warmup_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="align_init 'lstsq' fits the connectors .* align_warmup_epochs > 0"):
        KDCriterion("mse", STUDENT, TEACHER, align_init="lstsq")


def test_mgd_generators_are_among_the_criterion_parameters():
    criterion = KDCriterion("mgd", STUDENT, TEACHER)
    params = {id(p) for p in criterion.parameters()}
    generators = [p for loss in criterion.losses for p in loss.generator.parameters()]
    assert len(generators) == 8 and all(id(p) in params for p in generators)


def test_weighting_state_is_saved_with_the_criterion():
    keys = KDCriterion("admd", STUDENT, TEACHER).state_dict()
    assert {"weighting.ema", "weighting.ref", "weighting.weight", "weighting.steps"} <= set(keys)


def test_half_precision_maps_under_autocast_give_a_finite_float32_loss():
    criterion = KDCriterion("admd", STUDENT, TEACHER)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = criterion(pyramid(STUDENT, dtype=torch.float16), pyramid(TEACHER, dtype=torch.bfloat16), epoch=0.0)
    assert out.loss.dtype == torch.float32 and torch.isfinite(out.loss)


def test_score_l2_needs_scores_and_the_others_do_not():
    assert [m for m in METHODS if KDCriterion(m, STUDENT, TEACHER).needs_score] == ["score_l2"]
    with pytest.raises(ValueError, match="needs one teacher score map per level"):
        KDCriterion("score_l2", STUDENT, TEACHER)(pyramid(STUDENT), pyramid(TEACHER), epoch=0.0)


@pytest.mark.parametrize(
    ("student", "teacher", "words"),
    [
        (pyramid(STUDENT)[:1], pyramid(TEACHER), "built for 2 levels got 1 student and 2 teacher maps"),
        (pyramid(STUDENT), pyramid(TEACHER)[:1], "built for 2 levels got 2 student and 1 teacher maps"),
        (pyramid(STUDENT, sizes=((4, 4), (3, 3))), pyramid(TEACHER), r"level 1: .*student \(2, 8, 3, 3\)"),
        (pyramid(STUDENT, n=1), pyramid(TEACHER), r"level 0: .*same N, H, W"),
        (pyramid([6, 8]), pyramid(TEACHER), r"level 0: expected student \(N, 4, H, W\)"),
    ],
    ids=["fewer-student-levels", "fewer-teacher-levels", "spatial-size", "batch-size", "student-width"],
)
def test_mismatched_feature_maps_raise_naming_the_shapes(student, teacher, words):
    with pytest.raises(ValueError, match=words):
        KDCriterion("mse", STUDENT, TEACHER)(student, teacher, epoch=0.0)


@pytest.mark.parametrize(
    ("method", "kwargs", "words"),
    [
        ("none", {}, "trains the student alone"),
        ("admdd", {}, "must be one of admd, cwd, mgd, mse, none, pkd, score_l2"),
        ("admd", {"loss_params": {"taux": 1.0}}, "valid keys: discrepancy, eps, mask, normalize, tau"),
        ("admd", {"weighting": {"betta": 0.9}}, "valid keys: beta, mode, total_epochs, w_max, warmup_epochs"),
        ("admd", {"weighting": {"mode": "linear"}}, "pass total_epochs"),
        ("admd", {"loss_weight": 0.0}, "loss_weight must be > 0"),
        ("admd", {"align_warmup_epochs": -1.0}, "align_warmup_epochs must be >= 0"),
    ],
)
def test_invalid_construction_raises_with_the_fix(method, kwargs, words):
    with pytest.raises(ValueError, match=words):
        KDCriterion(method, STUDENT, TEACHER, **kwargs)


def test_mismatched_channel_lists_raise_at_construction():
    with pytest.raises(ValueError, match="same number of pyramid levels"):
        KDCriterion("admd", [4, 8, 16], [8, 8])


def test_eval_mode_leaves_the_weight_state_alone():
    criterion = KDCriterion("admd", STUDENT, TEACHER).eval()
    criterion(pyramid(STUDENT), pyramid(TEACHER), epoch=5.0)
    assert criterion.weighting.steps.item() == 0


def test_a_level_left_out_adds_nothing_to_the_loss_but_keeps_its_discrepancy():
    s, t = pyramid(STUDENT), pyramid(TEACHER, seed=1)
    every = KDCriterion("mse", STUDENT, TEACHER, weighting={"mode": "constant"})
    first = KDCriterion("mse", STUDENT, TEACHER, weighting={"mode": "constant"}, distilled=[True, False])
    first.load_state_dict(every.state_dict())  # the same connectors
    a0 = every.align[0](s[0])
    level0 = ((a0 - t[0]) ** 2).mean()  # FitNets' MSE of level 0, by hand
    level1 = ((s[1] - t[1]) ** 2).mean()  # level 1: identity connector (8 -> 8)
    out_every, out_first = every(s, t, epoch=2.0), first(s, t, epoch=2.0)
    assert out_every.raw.item() == pytest.approx((level0 + level1).item(), rel=1e-5)
    assert out_first.raw.item() == pytest.approx(level0.item(), rel=1e-5)
    assert [d.item() for d in out_first.discrepancy] == pytest.approx([d.item() for d in out_every.discrepancy])
    assert "distilled=[True, False]" in repr(first)


@pytest.mark.parametrize("distilled", [[False, False], [True], [True, True, True]])
def test_the_distilled_levels_need_one_flag_per_level_and_one_true(distilled):
    with pytest.raises(ValueError, match="one flag per level"):
        KDCriterion("mse", STUDENT, TEACHER, distilled=distilled)


def test_a_left_out_level_is_not_fitted_by_least_squares():
    criterion = KDCriterion("mse", [4, 4], [8, 8], align_warmup_epochs=1.0, align_init="lstsq", distilled=[False, True])
    before = criterion.align[0].weight.clone()
    criterion.train()
    s, t = pyramid([4, 4]), pyramid([8, 8], seed=1)
    criterion(s, t, epoch=0.5)
    criterion(s, t, epoch=1.5)  # fits
    assert torch.equal(criterion.align[0].weight, before) and not torch.equal(criterion.align[1].weight, before)
    assert not hasattr(criterion, "fit_gram0") and hasattr(criterion, "fit_gram1")
