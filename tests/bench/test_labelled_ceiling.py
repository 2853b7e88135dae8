"""benchmarks/labelled_ceiling.py: the student alone on the bench's labelled tiles plus its unlabelled ones, labelled."""

from __future__ import annotations

import pytest


def test_the_recipe_labels_the_unlabelled_tiles_of_the_same_draw(benchmark_script):
    recipe = benchmark_script("labelled_ceiling").labelled_recipe(
        "bench-kd-pretrained", ["data.synthetic.seed=1", "data.unlabelled=900"], 900)
    assert recipe.data.synthetic["n_train"] == 1200 and recipe.data.synthetic["seed"] == 1
    assert recipe.data.synthetic["n_val"] == 100 and recipe.data.unlabelled is None
    assert recipe.pretrain is not None and recipe.distill.epochs == 10  # the bench's start and schedule


@pytest.mark.parametrize(("argv", "message"), [
    (["bench-kd-pretrained", "--extra", "0", "data.synthetic.seed=1", "--out", "x"], "--extra must be >= 1"),
    (["quickstart", "--extra", "5", "--out", "x"], "needs synthetic data and a pretrain section"),
])
def test_bad_arguments_are_refused_before_any_training(benchmark_script, tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        benchmark_script("labelled_ceiling").main([*argv[:-1], str(tmp_path / argv[-1])])
