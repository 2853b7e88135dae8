"""benchmarks/fit_gap.py: the training split is scored by a YAML whose `val` is the training images."""

from __future__ import annotations

import pytest


def test_the_copy_points_val_at_train_and_keeps_everything_else(tmp_path, benchmark_script):
    src = tmp_path / "data.yaml"
    src.write_text("# header\npath: /d\ntrain: images/train\nval: images/val\nnc: 2\nnames:\n  0: a\n  1: b\n")
    out = benchmark_script("fit_gap").train_split_yaml(src)
    assert out != src and out.parent == src.parent
    assert out.read_text() == "# header\npath: /d\ntrain: images/train\nval: images/train\nnc: 2\nnames:\n  0: a\n  1: b\n"
    assert src.read_text().count("val: images/val") == 1  # the original is untouched


def test_a_yaml_without_both_splits_is_refused(tmp_path, benchmark_script):
    src = tmp_path / "data.yaml"
    src.write_text("path: /d\ntrain: images/train\n")
    with pytest.raises(SystemExit, match="no 'train:' and 'val:'"):
        benchmark_script("fit_gap").train_split_yaml(src)
