"""The newcomer's docs say what the code does: the recipe reference is generated from the schema and fails
when stale, the README's first-hour commands parse with the real CLIs (and its predict step runs on a
bundle), and docs/data.md names the formats and classes the converters write."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from admd_deploy.recipe import GatesSection, Recipe

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA_DOC = ROOT / "docs" / "data.md"
RECIPE_DOC = ROOT / "docs" / "recipe.md"


# A recipe schema with one more gate, as a future change would add it: the reference must notice.
@dataclass
class GatesWithFloor(GatesSection):
    map_floor: float = 1.0


@dataclass
class RecipeWithFloor(Recipe):
    gates: GatesWithFloor = field(default_factory=GatesWithFloor)


# --------------------------------------------------------------------------------------------- docs/recipe.md
def test_the_recipe_reference_is_what_the_schema_renders(recipe_reference):
    stale = "docs/recipe.md is stale: run python docs/recipe_reference.py --write"
    assert RECIPE_DOC.read_text() == recipe_reference.render(), stale


def test_every_key_in_the_recipe_reference_has_a_description(recipe_reference):
    assert recipe_reference.undescribed(recipe_reference.render()) == []


def test_a_new_recipe_field_changes_the_reference_and_needs_a_description(recipe_reference):
    text = recipe_reference.render(RecipeWithFloor)
    assert text != recipe_reference.render()
    assert "| `map_floor` | number | `1.0` |" in text
    assert recipe_reference.undescribed(text) == ["`map_floor`"]


def _section_keys(text: str) -> dict[str, set[str]]:
    """``## `section``` heading -> the keys in its table (top level under ``""``)."""
    keys: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        heading = re.match(r"^#{2,4} (?:Top level|`([\w.]+)`)", line)
        if heading:
            current = heading.group(1) or ""
            keys.setdefault(current, set())
        elif current is not None and line.startswith("| `"):
            keys[current].add(line.split("`")[1])
    return keys


def test_the_reference_lists_each_section_and_top_level_key_of_the_recipe():
    documented = _section_keys(RECIPE_DOC.read_text())
    sections = {f.name for f in dataclasses.fields(Recipe) if f.name in documented}
    assert sections == {"teacher", "student", "data", "distill", "export", "gates", "report", "pretrain", "paper_eval"}
    assert documented[""] == {"name", "task", "seed", "device"}
    assert documented["gates"] == {f.name for f in dataclasses.fields(GatesSection)}


@pytest.mark.parametrize("recipe", sorted((ROOT / "recipes").glob("*.yaml")), ids=lambda p: p.name)
def test_every_key_a_shipped_recipe_uses_is_in_the_reference(recipe):
    documented = _section_keys(RECIPE_DOC.read_text())
    data = yaml.safe_load(recipe.read_text())
    missing = []
    for key, value in data.items():
        if isinstance(value, dict) and key in documented:
            nested = {"data": ("synthetic", "dota", "dior")}.get(key, ())
            for sub, subvalue in value.items():
                if sub not in documented[key]:
                    missing.append(f"{key}.{sub}")
                elif sub in nested:
                    missing += [f"{key}.{sub}.{k}" for k in subvalue if k not in documented[f"{key}.{sub}"]]
                elif key == "distill" and sub == "params":
                    method = value.get("method", "admd")
                    missing += [f"distill.params.{k}" for k in subvalue if k not in documented[method]]
        elif key not in documented[""]:
            missing.append(key)
    assert missing == []


def test_the_reference_check_mode_fails_on_a_stale_file(tmp_path, monkeypatch, capsys, recipe_reference):
    stale = tmp_path / "recipe.md"
    text = recipe_reference.render()
    stale.write_text(text.replace("| `fp32_map_drop` | number | `0.3` |", "| `fp32_map_drop` | number | `9` |"))
    monkeypatch.setattr(recipe_reference, "DOC", stale)
    assert recipe_reference.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().err
    monkeypatch.setattr(recipe_reference, "DOC", RECIPE_DOC)
    assert recipe_reference.main(["--check"]) == 0


# --------------------------------------------------------------------------------------------- README: first hour
def _first_hour() -> str:
    text = README.read_text()
    start = text.index("\n## First hour\n")
    return text[start:text.index("\n## ", start + 1)]


def _commands(section: str, program: str) -> list[list[str]]:
    """``program`` command lines of a README section: in its bash blocks, then in its inline code."""
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    lines = [line.split("#", 1)[0].strip() for block in blocks for line in block.splitlines()]
    lines += re.findall(r"(?<!`)`((?:\.venv/bin/)?" + program + r" [^`]+)`", re.sub(r"```.*?```", "", section, flags=re.S))
    return [shlex.split(line) for line in lines if re.match(rf"^(\.venv/bin/)?{program}\b", line)]


def test_the_first_hour_says_where_the_commands_live_and_links_the_guides():
    section = _first_hour()
    assert "source .venv/bin/activate" in section and ".venv/bin/admd-deploy" in section
    links = re.findall(r"\]\(([^)#]+)\)", section)
    assert {"docs/data.md", "docs/recipe.md", "docs/docker.md"} <= set(links)
    assert all((ROOT / link).is_file() for link in links), links


def test_the_first_hour_commands_parse_with_the_real_command_lines():
    from admd_deploy.cli import build_parser as deploy_parser
    from admd_edge.cli import build_parser as edge_parser

    parsed = 0
    for program, parser in (("admd-deploy", deploy_parser()), ("admd-edge", edge_parser())):
        for argv in _commands(_first_hour(), program):
            if "--help" in argv or "-h" in argv:
                continue
            parser.parse_args(argv[1:])  # SystemExit(2) on an unknown flag or a missing argument
            parsed += 1
    assert parsed >= 3  # predict, recipe check, run


def _predict_argv() -> list[str]:
    (argv,) = [a for a in _commands(_first_hour(), "admd-edge") if a[1] == "predict" and "--help" not in a]
    return argv


def test_the_first_hour_predict_uses_the_bundle_the_quickstart_writes():
    argv = _predict_argv()
    bundle = argv[argv.index("--bundle") + 1]
    assert bundle == "runs/quickstart/deploy"
    from admd_deploy.pipeline import exporting

    assert f'"{argv[2]}"' in Path(exporting.__file__).read_text()  # the FP32 ONNX's name in the bundle


def _tiny_bundle(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An untrained yolo11n-obb (80 classes, the YAML's) exported at 64 px, in a bundle as the quickstart's."""
    from ultralytics import YOLO

    from admd_edge.manifest import write_manifest

    work = folder / "export"
    work.mkdir()
    monkeypatch.chdir(work)  # Ultralytics writes a YAML-built model's export into the working directory
    exported = Path(YOLO("yolo11n-obb.yaml").export(format="onnx", imgsz=64, device="cpu", simplify=False))
    bundle = folder / "runs" / "quickstart" / "deploy"
    bundle.mkdir(parents=True)
    (bundle / "student.onnx").write_bytes((work / exported).read_bytes())
    write_manifest(bundle, ["student.onnx"], {"task": "obb", "imgsz": 64, "stride": 32,
                                              "names": {i: f"class{i}" for i in range(80)}})
    return bundle


@pytest.mark.slow
def test_the_first_hour_predict_command_runs_on_a_bundle_as_written(tmp_path, monkeypatch, capsys):
    import cv2
    import numpy as np

    from admd_edge.cli import main

    _tiny_bundle(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    argv = _predict_argv()
    image = tmp_path / argv[3]
    rng = np.random.default_rng(0)
    cv2.imwrite(str(image), rng.integers(0, 255, (120, 160, 3), dtype=np.uint8))
    assert main(argv[1:]) == 0
    written = sorted(p for p in (tmp_path / "runs").rglob("*.json") if p.parent.name != "deploy")
    assert written, capsys.readouterr().out
    result = json.loads(written[0].read_text())
    assert result["source"].endswith(argv[3]) and isinstance(result["detections"], list)


# --------------------------------------------------------------------------------------------- docs/data.md
def test_the_data_guide_names_every_class_in_the_converters_order():
    from admd_deploy.data import CLASS_NAMES, DIOR_CLASSES, DOTA_CLASSES

    text = DATA_DOC.read_text()
    for names in (CLASS_NAMES, DOTA_CLASSES["1.5"], DIOR_CLASSES):
        at = text.find(f"`{names[0]}`, `{names[1]}`")
        assert at != -1, names[:2]
        for name in names:  # each one after the one before: the list is in id order
            at = text.find(f"`{name}`", at)
            assert at != -1, f"{name} missing or out of order"


def test_the_data_guide_describes_what_the_synthetic_generator_writes(tmp_path):
    from admd_deploy.data import SynthConfig, generate_synthetic

    text = DATA_DOC.read_text()
    documented = yaml.safe_load(re.search(r"## `data.yaml`\n\n```yaml\n(.*?)```", text, re.S).group(1))
    widths = {"detect": len("class x_center y_center width height".split()),
              "obb": len("class x1 y1 x2 y2 x3 y3 x4 y4".split())}
    for task, width in widths.items():
        data_yaml = generate_synthetic(tmp_path / task, SynthConfig(task=task, n_train=1, n_val=1, imgsz=64, seed=0))
        data = yaml.safe_load(data_yaml.read_text())
        assert {"path", "train", "val", "names"} <= set(documented) <= set(data) | {"test"}
        assert Path(data["path"]).is_absolute() and isinstance(data["names"], dict)
        root = Path(data["path"])
        for split in ("train", "val"):
            images = sorted((root / data[split]).iterdir())
            labels = [root / "labels" / split / f"{p.stem}.txt" for p in images]  # the guide's images -> labels rule
            rows = [line.split() for p in labels for line in p.read_text().splitlines()]
            assert rows and all(len(r) == width for r in rows), (task, rows[:2])
            assert all(0 <= float(v) <= 1 for r in rows for v in r[1:])
            assert all(int(r[0]) in data["names"] for r in rows)


def test_the_reports_kd_note_points_at_sections_that_exist_in_the_benchmarks():
    from admd_deploy.pipeline.report import SINGLE_SEED_NOTE

    headings = [line.lstrip("#").strip() for line in (ROOT / "BENCHMARKS.md").read_text().splitlines()
                if line.startswith("#")]
    named = re.findall(r'"([^"]+)"', SINGLE_SEED_NOTE)
    assert named, SINGLE_SEED_NOTE
    for name in named:
        assert any(h.startswith(name) for h in headings), f"BENCHMARKS.md has no section {name!r}"
