"""Paired statistics of ``bench kd``: the t quantile, per-seed deltas, intervals and verdicts, by hand."""

from __future__ import annotations

import math

import pytest

from admd_deploy.bench.stats import (NO_DIFFERENCE, RESOLVED_GAIN, RESOLVED_LOSS, TOO_FEW, curves_markdown, markdown,
                                     paired_curve, paired_curves, paired_delta, paired_table, t_cdf, t_quantile)


@pytest.mark.parametrize("p, df, expected", [
    (0.975, 1, 12.7062047), (0.975, 2, 4.3026527), (0.975, 4, 2.7764451), (0.975, 9, 2.2621572),
    (0.975, 29, 2.0452296), (0.995, 3, 5.8409093), (0.5, 7, 0.0), (0.025, 2, -4.3026527),
])
def test_the_t_quantile_matches_published_tables(p, df, expected):
    assert t_quantile(p, df) == pytest.approx(expected, abs=1e-6)


def test_the_t_cdf_of_a_cauchy_is_its_closed_form():
    for t in (-3.0, -0.5, 0.25, 1.0, 7.0):  # df = 1 is the Cauchy distribution
        assert t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-12)


def test_a_consistent_small_gain_is_resolved():
    r = paired_delta("admd", {0: 0.50, 1: 0.511, 2: 0.522}, {0: 0.48, 1: 0.49, 2: 0.50}, teacher=0.70)
    assert r.deltas == pytest.approx((0.02, 0.021, 0.022))
    assert r.mean == pytest.approx(0.021) and r.std == pytest.approx(0.001)
    half = 4.3026527 * 0.001 / math.sqrt(3)
    assert (r.ci_low, r.ci_high) == pytest.approx((0.021 - half, 0.021 + half), abs=1e-7)
    assert r.gap_closed == pytest.approx(0.021 / (0.70 - 0.49))
    assert r.verdict == RESOLVED_GAIN


def test_a_noisy_gain_is_not_resolved_and_a_consistent_loss_is():
    noisy = paired_delta("cwd", {0: 0.50, 1: 0.52, 2: 0.55}, {0: 0.48, 1: 0.49, 2: 0.50})
    assert noisy.mean == pytest.approx(0.1 / 3) and noisy.std == pytest.approx(0.0152753, abs=1e-7)
    assert noisy.ci_low == pytest.approx(0.1 / 3 - 0.0379458, abs=1e-6) and noisy.ci_low < 0 < noisy.ci_high
    assert noisy.verdict == NO_DIFFERENCE and noisy.gap_closed is None
    loss = paired_delta("pkd", {0: 0.40, 1: 0.41, 2: 0.445}, {0: 0.45, 1: 0.47, 2: 0.50})
    assert loss.deltas == pytest.approx((-0.05, -0.06, -0.055)) and loss.verdict == RESOLVED_LOSS
    assert loss.ci_high == pytest.approx(-0.055 + 4.3026527 * 0.005 / math.sqrt(3), abs=1e-7)


def test_only_shared_seeds_are_paired_and_one_seed_has_no_interval():
    r = paired_delta("mse", {0: 0.5, 7: 0.9}, {0: 0.4, 1: 0.3})
    assert r.seeds == (0,) and r.deltas == pytest.approx((0.1,))
    assert r.ci_low is None and r.verdict == TOO_FEW
    with pytest.raises(ValueError, match="no seed in common with the baseline"):
        paired_delta("mse", {3: 0.5}, {0: 0.4})


def test_the_table_skips_the_baseline_and_prints_points():
    rows = paired_table({"none": {0: 0.48, 1: 0.49}, "admd": {0: 0.50, 1: 0.52}}, teacher=0.60)
    assert [r.method for r in rows] == ["admd"]
    text = markdown(rows)
    # 2 seeds: t(0.975, 1) = 12.706, half width 12.706 * 0.7071 / sqrt(2) = 6.35 points; gap 2.5 / 11.5 = 22%
    assert "| admd | 2 | +2.00, +3.00 | +2.50 ± 0.71 | [-3.85, +8.85] | +22% | no resolved difference |" in text
    assert paired_table({"admd": {0: 0.5}}) == []


def test_a_paired_curve_is_the_per_epoch_delta_of_each_seed_and_its_mean():
    method = {0: [0.50, 0.60, 0.70], 1: [0.40, 0.55, 0.66]}
    base = {0: [0.50, 0.58, 0.70], 1: [0.40, 0.50, 0.65]}
    c = paired_curve("admd", method, base)
    assert c.seeds == (0, 1) and c.epochs == (1, 2, 3)
    assert c.deltas[0] == pytest.approx((0.0, 0.02, 0.0)) and c.deltas[1] == pytest.approx((0.0, 0.05, 0.01))
    assert c.mean == pytest.approx((0.0, 0.035, 0.005))
    assert (c.lead, c.lead_epoch, c.final) == (pytest.approx(0.035), 2, pytest.approx(0.005))


def test_the_shortest_pair_sets_the_length_and_an_epoch_without_a_number_is_skipped():
    method = {0: [0.5, 0.6, 0.7, 0.8], 1: [0.5, math.nan, 0.7], 2: [0.9]}
    base = {0: [0.4, 0.6, 0.6, 0.6], 1: [0.4, 0.4, 0.9]}  # seed 2 has no baseline: not paired
    c = paired_curve("cwd", method, base)
    assert c.seeds == (0, 1) and c.epochs == (1, 2, 3)
    assert c.mean == pytest.approx((0.1, 0.0, -0.05))  # epoch 2: seed 1 is NaN, the mean is seed 0's alone
    assert (c.lead, c.lead_epoch, c.final) == (pytest.approx(0.1), 1, pytest.approx(-0.05))


def test_paired_curves_skip_the_baseline_and_methods_without_a_shared_seed_and_print_points():
    per_seed = {"none": {0: [0.5, 0.6]}, "admd": {0: [0.5, 0.63]}, "mse": {7: [0.1, 0.2]}}
    rows = paired_curves(per_seed)
    assert [r.method for r in rows] == ["admd"]
    assert paired_curves({"admd": {0: [0.5]}}) == []  # no baseline
    text = curves_markdown(rows)
    assert "| admd | 1 | +0.00, +3.00 | +3.00 (2) | +3.00 |" in text
