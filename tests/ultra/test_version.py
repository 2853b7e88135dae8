"""The supported Ultralytics range: declared once in pyproject.toml, checked once, refused in one line."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from admd_deploy.cli import main
from admd_deploy.errors import UsageError
from admd_deploy.ultra import env, version

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def declared_range() -> str:
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    return version._spec_of([d for d in deps if d.startswith("ultralytics")])


def test_the_declared_range_is_the_ultralytics_dependency_of_pyproject():
    assert declared_range() == ">=8.4.190,<8.5"
    assert version.supported_range() == declared_range()  # read back from the installed Requires-Dist


def test_without_installed_metadata_the_range_comes_from_the_checkouts_pyproject(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "requires", not_installed)
    assert version.supported_range() == declared_range()


def test_the_pinned_ultralytics_is_inside_the_supported_range():
    assert version.check_version() == metadata.version("ultralytics")


@pytest.mark.parametrize(("installed", "inside"), [
    ("8.4.190", True), ("8.4.191", True), ("8.4.1900", True), ("8.4.19", False), ("8.4.189", False),
    ("8.5.0", False), ("8.5", False), ("9.0.0", False), ("8.3.250", False),
])
def test_versions_are_compared_by_release_numbers(installed, inside):
    assert version.in_range(installed, ">=8.4.190,<8.5") is inside


@pytest.mark.parametrize("installed", ["8.3.40", "8.5.1"])
def test_an_ultralytics_outside_the_range_is_refused_in_one_line_naming_version_range_and_fix(monkeypatch, installed):
    monkeypatch.setattr(version, "installed_version", lambda: installed)
    with pytest.raises(UsageError) as err:
        version.check_version()
    text = str(err.value)
    assert "\n" not in text
    assert f"ultralytics {installed} is installed" in text
    assert "supports ultralytics>=8.4.190,<8.5" in text
    assert text.endswith('Fix: pip install "ultralytics>=8.4.190,<8.5"')


def test_a_missing_ultralytics_is_refused_with_the_install_command(monkeypatch):
    monkeypatch.setattr(version, "installed_version", lambda: None)
    with pytest.raises(UsageError, match=r'ultralytics is not installed.*pip install "ultralytics>=8.4.190,<8.5"'):
        version.check_version()


def test_prepare_checks_the_version_once_per_process(monkeypatch):
    calls = []
    monkeypatch.setattr(env, "_prepared", False)
    monkeypatch.setattr(version, "check_version", lambda: calls.append(1))
    env.prepare()
    env.prepare()
    assert calls == [1]


def test_the_cli_exits_2_with_one_line_when_ultralytics_is_out_of_range(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(env, "_prepared", False)  # a fresh process: the first prepare() checks
    monkeypatch.setattr(version, "installed_version", lambda: "8.3.0")
    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "images" / split / "a.jpg").write_bytes(b"")
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"path": str(tmp_path), "train": "images/train", "val": "images/val",
                                    "names": {0: "car"}}))
    code = main(["data", "check", str(data)])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1
    assert "ultralytics 8.3.0 is installed" in err and 'pip install "ultralytics>=8.4.190,<8.5"' in err
