"""Package data and the bundle's edge wheel, without building anything (the wheel test is test_wheels.py)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_recipes_are_package_files_found_by_name():
    from admd_deploy.recipe import load_recipe

    packaged = ROOT / "admd_deploy" / "recipes"
    assert packaged.is_dir() and not packaged.is_symlink()  # the wheel carries real files, not a link
    assert (ROOT / "recipes").resolve() == packaged.resolve()  # the checkout's `recipes/` still works
    assert load_recipe("quickstart").name == load_recipe(ROOT / "recipes" / "quickstart.yaml").name


def test_a_recipe_name_that_is_not_shipped_is_still_not_found():
    import pytest

    from admd_deploy.recipe import load_recipe
    from admd_deploy.schema import RecipeError

    with pytest.raises(RecipeError, match="recipe not found"):
        load_recipe("no-such-recipe")


def test_the_bundle_edge_wheel_holds_the_runtime_its_metadata_and_a_valid_record(tmp_path):
    from admd_deploy.pipeline.edge_wheel import build_edge_wheel

    wheel = build_edge_wheel(tmp_path)
    assert wheel.name == "admd_edge-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        assert {"admd_edge/__init__.py", "admd_edge/cli.py", "admd_edge/py.typed"} <= names
        assert not any(n.startswith("admd_deploy") or "__pycache__" in n or "/tests/" in n for n in names)
        assert "admd-edge = admd_edge.cli:main" in zf.read("admd_edge-0.1.0.dist-info/entry_points.txt").decode()
        assert "Name: admd-edge" in zf.read("admd_edge-0.1.0.dist-info/METADATA").decode()
        record = zf.read("admd_edge-0.1.0.dist-info/RECORD").decode().splitlines()
        assert {line.split(",")[0] for line in record} == names
        for line in record:
            name, digest, size = line.split(",")
            if digest:
                data = zf.read(name)
                expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                assert digest == f"sha256={expected}" and int(size) == len(data), name
