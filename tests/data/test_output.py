"""atomic_folder: the one atomic dataset writer (converters and the synthetic generator)."""

from __future__ import annotations

import os

import pytest

from admd_deploy.data import _output
from admd_deploy.data._output import atomic_folder


def _old(out):
    out.mkdir()
    (out / "a.txt").write_text("old")
    return out


def test_a_finished_body_replaces_the_folder_and_leaves_nothing_else(tmp_path):
    out = _old(tmp_path / "ds")
    with atomic_folder(out) as tmp:
        assert tmp.parent == tmp_path and tmp != out
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["b.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_a_failed_body_leaves_the_old_folder_as_it_was(tmp_path):
    out = _old(tmp_path / "ds")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_folder(out) as tmp:
            (tmp / "b.txt").write_text("half")
            raise RuntimeError("disk full")
    assert (out / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_a_failed_rename_puts_the_old_folder_back(tmp_path, monkeypatch):
    out = _old(tmp_path / "ds")
    real = os.rename

    def rename(src, dst):
        if str(src).startswith(str(tmp_path / ".ds.tmp-")):
            raise OSError("cross-device link")
        real(src, dst)

    monkeypatch.setattr(_output.os, "rename", rename)
    with pytest.raises(OSError, match="cross-device"):
        with atomic_folder(out) as tmp:
            (tmp / "b.txt").write_text("new")
    assert (out / "a.txt").read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_an_output_a_concurrent_run_already_made_is_kept(tmp_path):
    out = _old(tmp_path / "ds")
    with atomic_folder(out, already_there=lambda: True) as tmp:
        (tmp / "b.txt").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["a.txt"] and [p.name for p in tmp_path.iterdir()] == ["ds"]
