"""The report figures: data preparation, what gets drawn, and that valid PNGs come out."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from matplotlib.patches import Polygon, Rectangle

from admd_deploy import plots

BASE_COLS = ["epoch", "time", "train/box_loss", "train/cls_loss", "train/dfl_loss",
             "metrics/mAP50(B)", "metrics/mAP50-95(B)", "val/box_loss", "lr/pg0"]
KD_COLS = ["train/kd", "train/kd_w", "train/d_P3", "train/d_P4", "train/d_P5"]


def write_results(path: Path, kd: bool, epochs: int = 4) -> Path:
    """A results.csv like Ultralytics writes, with space-padded names; KD columns for a distilled run."""
    cols = BASE_COLS + (KD_COLS if kd else [])
    lines = [",".join(f"{c:>16}" for c in cols)]
    for e in range(1, epochs + 1):
        row = [e, 10.0 * e, 1.0 / e, 2.0 / e, 0.5 / e, 0.1 * e, 0.05 * e, 1.0, 0.01]
        if kd:
            row += [1.0 / e**2, float(e), 3.0 / e, 2.0 / e, 1.0 / e]
        lines.append(",".join(f"{v:>16.6g}" for v in row))
    path.write_text("\n".join(lines) + "\n")
    return path


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails unless the file is a PNG."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_png(path: Path, min_side: int = 200, max_side: int = 4000) -> None:
    assert path.is_file()
    w, h = png_size(path)
    assert min_side <= w <= max_side and min_side // 2 <= h <= max_side, (w, h)
    assert path.stat().st_size > 5_000  # something was drawn
    assert not list(path.parent.glob(".*.tmp"))  # atomic write left no temp file


@pytest.fixture()
def csvs(tmp_path: Path) -> dict[str, Path]:
    return {
        "baseline": write_results(tmp_path / "baseline.csv", kd=False),
        "student": write_results(tmp_path / "student.csv", kd=True),
    }


@pytest.fixture()
def images(tmp_path: Path) -> list[Path]:
    out = []
    for i in range(2):
        img = np.full((64, 64, 3), 90 + 40 * i, np.uint8)
        cv2.rectangle(img, (10, 10), (30, 25), (0, 0, 255), -1)
        path = tmp_path / f"img{i}.png"
        assert cv2.imwrite(str(path), img)
        out.append(path)
    return out


def axes_by_label(fig) -> dict:
    return {ax.get_label(): ax for ax in fig.axes}


# --- CSV reading and run curves ------------------------------------------------------------------
def test_results_csv_is_read_with_stripped_column_names(csvs):
    cols = plots.read_results_csv(csvs["student"])
    assert "train/kd" in cols and "epoch" in cols and " epoch" not in cols
    np.testing.assert_allclose(cols["epoch"], [1, 2, 3, 4])
    np.testing.assert_allclose(cols["train/kd_w"], [1, 2, 3, 4])


def test_empty_cells_become_nan(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("epoch,metrics/mAP50-95(B)\n1,\n2,0.5\n")
    cols = plots.read_results_csv(path)
    assert np.isnan(cols["metrics/mAP50-95(B)"][0]) and cols["metrics/mAP50-95(B)"][1] == 0.5


def test_a_results_csv_without_rows_is_rejected(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("epoch,train/box_loss\n")
    with pytest.raises(ValueError, match="no data rows"):
        plots.read_results_csv(path)


def test_a_missing_results_csv_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="results.csv not found"):
        plots.read_results_csv(tmp_path / "nope.csv")


def test_detection_loss_is_the_sum_of_box_cls_and_dfl_losses(csvs):
    run = plots.run_curves("baseline", plots.read_results_csv(csvs["baseline"]))
    np.testing.assert_allclose(run.det_loss, 3.5 / np.arange(1, 5), rtol=1e-5)
    np.testing.assert_allclose(run.map50_95, 0.05 * np.arange(1, 5))


def test_run_without_kd_columns_is_not_a_distilled_run(csvs):
    run = plots.run_curves("baseline", plots.read_results_csv(csvs["baseline"]))
    assert not run.has_kd and run.kd_weight is None and run.discrepancy == {}


def test_run_with_kd_columns_has_kd_series_and_levels_in_order(csvs):
    cols = plots.read_results_csv(csvs["student"])
    cols = {"train/d_P10": cols["train/d_P3"], **cols}  # level order is numeric, not column order
    run = plots.run_curves("student", cols)
    assert run.has_kd
    np.testing.assert_allclose(run.kd_raw, 1.0 / np.arange(1, 5) ** 2, rtol=1e-5)
    assert list(run.discrepancy) == ["P3", "P4", "P5", "P10"]


def test_kd_columns_that_are_all_empty_do_not_count_as_distillation():
    run = plots.run_curves("x", {"epoch": np.array([1.0, 2.0]), "train/kd": np.array([np.nan, np.nan])})
    assert not run.has_kd


# --- training curves figure -----------------------------------------------------------------------
def test_kd_panels_say_no_distilled_run_without_kd_columns(csvs):
    run = plots.run_curves("baseline", plots.read_results_csv(csvs["baseline"]))
    axes = axes_by_label(plots.training_curves_figure([run]))
    assert "kd_weight" not in axes  # no twin axis
    for label in ("kd", "discrepancy"):
        assert not axes[label].lines
        assert [t.get_text() for t in axes[label].texts] == [plots.NO_KD_TEXT]
    assert len(axes["det_loss"].lines) == 1 and len(axes["map"].lines) == 1


def test_kd_panel_draws_raw_loss_and_weight_on_twin_axes_for_the_distilled_run_only(csvs):
    runs = [plots.run_curves(n, plots.read_results_csv(p)) for n, p in csvs.items()]
    axes = axes_by_label(plots.training_curves_figure(runs))
    assert len(axes["det_loss"].lines) == 2 and len(axes["map"].lines) == 2
    assert len(axes["kd"].lines) == 2  # raw KD loss and raw x weight
    assert len(axes["kd_weight"].lines) == 1
    np.testing.assert_allclose(axes["kd_weight"].lines[0].get_ydata(), [1, 2, 3, 4])
    assert len(axes["discrepancy"].lines) == 3  # P3, P4, P5
    assert not axes["kd"].texts


def test_line_colours_follow_the_model_roles(csvs):
    runs = [plots.run_curves(n, plots.read_results_csv(p)) for n, p in csvs.items()]
    axes = axes_by_label(plots.training_curves_figure(runs))
    assert [line.get_color() for line in axes["det_loss"].lines] == [plots.ROLE_COLORS["baseline"], plots.ROLE_COLORS["student"]]


def test_plot_training_curves_writes_a_png(csvs, tmp_path):
    out = plots.plot_training_curves(csvs, tmp_path / "deep" / "curves.png")
    assert out == tmp_path / "deep" / "curves.png"
    assert_png(out, min_side=800)


def test_plot_training_curves_rejects_empty_results(tmp_path):
    with pytest.raises(ValueError, match="results is empty"):
        plots.plot_training_curves({}, tmp_path / "c.png")


def test_output_without_image_suffix_is_rejected(csvs, tmp_path):
    with pytest.raises(ValueError, match="image suffix"):
        plots.plot_training_curves(csvs, tmp_path / "curves")


# --- mAP bars ------------------------------------------------------------------------------------
def test_map_bars_draw_one_bar_per_value_and_na_for_none(tmp_path):
    models = {"teacher": {"map50": 0.7, "map50_95": 0.5, "speed": 3},
              "student": {"map50": 0.6, "map50_95": 0.42},
              "student_onnx_int8": {"map50": 0.58, "map50_95": None}}
    ax = plots.map_bars_figure(models).axes[0]
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 5
    labels = [t.get_text() for t in ax.texts]
    assert labels.count("n/a") == 1 and "70.0" in labels and "42.0" in labels
    assert {b.get_facecolor()[:3] for b in bars} == {
        tuple(int(plots.ROLE_COLORS[r][i:i + 2], 16) / 255 for i in (1, 3, 5)) for r in ("teacher", "student", "int8")
    }
    assert_png(plots.plot_map_bars(models, tmp_path / "map.png"))


@pytest.mark.parametrize("models", [{}, {"student": {"map50": 61.0, "map50_95": 0.4}}, {"student": {"map50": "high"}}],
                         ids=["empty", "percent-not-fraction", "not-a-number"])
def test_map_bars_reject_bad_input(models, tmp_path):
    with pytest.raises(ValueError):
        plots.plot_map_bars(models, tmp_path / "map.png")
    assert not (tmp_path / "map.png").exists()


# --- per-class AP --------------------------------------------------------------------------------
def test_per_class_ap_draws_one_horizontal_bar_per_model_and_class(tmp_path):
    per_class = {"teacher": {"plane": 0.8, "ship": 0.6, "car": 0.3}, "student": {"plane": 0.7, "ship": 0.5}}
    ax = plots.per_class_ap_figure(per_class, metric="AP50").axes[0]
    assert len(ax.patches) == 5  # the student has no 'car'
    assert [t.get_text() for t in ax.get_yticklabels()] == ["plane", "ship", "car"]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first class on top
    assert "AP50" in ax.get_xlabel()
    assert_png(plots.plot_per_class_ap(per_class, tmp_path / "pc.png"))


def test_per_class_ap_rejects_empty_input(tmp_path):
    with pytest.raises(ValueError, match="per_class is empty"):
        plots.plot_per_class_ap({}, tmp_path / "pc.png")
    with pytest.raises(ValueError, match="no classes"):
        plots.plot_per_class_ap({"student": {}}, tmp_path / "pc.png")


# --- prediction grid -----------------------------------------------------------------------------
def test_prediction_grid_draws_a_box_per_detection_in_each_cell(images, tmp_path):
    preds = {
        "teacher": [[{"cls": 0, "conf": 0.9, "xyxy": [10, 10, 30, 25]}, {"cls": 1, "conf": 0.4, "xyxy": [40, 40, 60, 60]}], []],
        "student": [[{"cls": 0, "conf": 0.8, "xyxy": [11, 10, 31, 26]}], [{"cls": 5, "conf": 0.3, "xyxy": [0, 0, 8, 8]}]],
    }
    fig = plots.prediction_grid_figure(images, preds, "detect", ["plane", "ship"])
    axes = axes_by_label(fig)
    counts = {k: len([p for p in ax.patches if isinstance(p, Rectangle)]) for k, ax in axes.items()}
    assert counts == {"0,0": 2, "0,1": 1, "1,0": 0, "1,1": 1}
    assert axes["0,0"].get_title() == "teacher" and axes["0,1"].get_title() == "student"
    texts = [t.get_text() for t in axes["0,0"].texts]
    assert "plane 0.90" in texts and "ship 0.40" in texts
    assert "5 0.30" in [t.get_text() for t in axes["1,1"].texts]  # unknown class id shown as number
    assert_png(plots.plot_prediction_grid(images, preds, tmp_path / "grid.png", "detect", {0: "plane", 1: "ship"}))


def test_prediction_grid_draws_polygons_for_obb_and_honours_max_images(images, tmp_path):
    corners = [[10, 10], [30, 12], [28, 25], [8, 23]]
    preds = {"teacher": [[{"cls": 0, "conf": 0.9, "corners": corners}]] * 2}
    fig = plots.prediction_grid_figure(images, preds, "obb", {0: "plane"}, max_images=1)
    axes = axes_by_label(fig)
    assert list(axes) == ["0,0"]
    assert len([p for p in axes["0,0"].patches if isinstance(p, Polygon)]) == 1
    assert_png(plots.plot_prediction_grid(images, preds, tmp_path / "obb.png", "obb", {0: "plane"}), min_side=150)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(task="segment"), "task must be one of detect, obb"),
        (dict(images=[]), "images is empty"),
        (dict(predictions={}), "predictions is empty"),
        (dict(predictions={"teacher": [[]]}), "1 entries but 2 images"),
        (dict(task="obb"), "no 'corners'.*is task='obb' right"),
        (dict(max_images=0), "max_images"),
    ],
    ids=["unknown-task", "no-images", "no-predictions", "too-few-lists", "wrong-shape-key", "max-images-0"],
)
def test_prediction_grid_rejects_bad_input(images, tmp_path, kwargs, match):
    args = dict(images=images, predictions={"teacher": [[{"cls": 0, "conf": 0.5, "xyxy": [1, 1, 5, 5]}], []]},
                out=tmp_path / "g.png", task="detect", names=["plane"])
    with pytest.raises(ValueError, match=match):
        plots.plot_prediction_grid(**{**args, **kwargs})


def test_prediction_grid_raises_file_not_found_for_an_unreadable_image(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot read image"):
        plots.plot_prediction_grid([tmp_path / "missing.png"], {"t": [[]]}, tmp_path / "g.png", "detect", [])


# --- gates ---------------------------------------------------------------------------------------
def test_gate_status_maps_passed_to_pass_fail_or_skipped():
    assert [plots.gate_status({"passed": p}) for p in (True, False, None)] == ["pass", "fail", "skipped"]
    assert plots.gate_status({"name": "x"}) == "skipped"


def test_gates_table_colours_results_green_red_and_grey(tmp_path):
    gates = [
        {"name": "student >= baseline", "value": 0.45, "limit": 0.40, "passed": True},
        {"name": "int8 drop", "value": 0.031, "limit": 0.01, "passed": False},
        {"name": "latency", "value": None, "limit": 5.0, "passed": None},
    ]
    fig = plots.gates_figure(gates)
    cells = fig.axes[0].tables[0].get_celld()
    assert [cells[(r, 3)].get_text().get_text() for r in (1, 2, 3)] == ["\u2713 PASS", "\u2717 FAIL", "\u2013 SKIPPED"]
    faces = [cells[(r, 3)].get_facecolor()[:3] for r in (1, 2, 3)]
    green, red, grey = faces
    assert green[1] > green[0] and red[0] > red[1] and abs(grey[0] - grey[1]) < 0.02
    assert cells[(3, 1)].get_text().get_text() == "\u2014"  # missing value
    assert "1 failed" in fig.axes[0].get_title(loc="left")
    assert_png(plots.plot_gates(gates, tmp_path / "gates.png"), min_side=150)


@pytest.mark.parametrize("gates", [[], [{"value": 1.0}]], ids=["empty", "no-name"])
def test_gates_reject_bad_input(gates, tmp_path):
    with pytest.raises(ValueError):
        plots.plot_gates(gates, tmp_path / "gates.png")


# --- colours and import hygiene ------------------------------------------------------------------
def test_model_colours_are_fixed_per_role_and_distinct_within_a_call():
    colors = plots.model_colors(["teacher", "baseline", "student", "student_onnx", "student_onnx_int8", "engine", "other", "student2"])
    assert colors["teacher"] == plots.ROLE_COLORS["teacher"]
    assert colors["baseline"] == plots.ROLE_COLORS["baseline"]
    assert colors["student"] == plots.ROLE_COLORS["student"]
    assert colors["student_onnx"] == plots.ROLE_COLORS["onnx"]
    assert colors["student_onnx_int8"] == plots.ROLE_COLORS["int8"]
    assert colors["engine"] == plots.ROLE_COLORS["engine"]
    assert len(set(colors.values())) == len(colors)
    assert plots.model_colors(["other"]) == plots.model_colors(["other"])


def test_importing_plots_selects_no_backend_and_skips_pyplot_and_torch():
    code = (
        "import sys, matplotlib; before = matplotlib.rcParams._get_backend_or_none();"
        "import admd_deploy.plots;"
        "assert matplotlib.rcParams._get_backend_or_none() == before, 'backend changed';"
        "bad = {'matplotlib.pyplot', 'torch', 'ultralytics'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_method_comparison_draws_one_bar_per_method_with_error_bars_and_refuses_empty(tmp_path):
    from matplotlib.patches import Rectangle

    from admd_deploy.plots import method_comparison_figure, plot_method_comparison

    rows = [{"method": "admd", "map50_95": 0.42, "map50_95_std": 0.02, "gap_closed": 0.5},
            {"method": "none", "map50_95": 0.32, "map50_95_std": 0.01, "gap_closed": 0.0}]
    ax = method_comparison_figure(rows).axes[0]
    assert len([p for p in ax.patches if isinstance(p, Rectangle)]) == 2
    assert any("+50% gap" in t.get_text() for t in ax.texts)
    out = plot_method_comparison(rows, tmp_path / "m.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows.append({"method": "admd:weight=constant", "map50_95": 0.40, "map50_95_std": 0.0, "gap_closed": 0.4})
    ax = method_comparison_figure(rows, per_seed={"admd": [0.40, 0.44], "none": [0.31, 0.33]}, teacher=0.52).axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["admd", "none\n(baseline)", "admd\nweight=constant"]
    from matplotlib.collections import PathCollection

    dots = np.concatenate([c.get_offsets() for c in ax.collections if isinstance(c, PathCollection)])
    assert sorted(np.round(dots[:, 1], 3)) == [31.0, 33.0, 40.0, 44.0]  # one dot per seed, in points
    lines = {ln.get_label(): ln.get_ydata()[0] for ln in ax.get_lines() if ln.get_label() in {"teacher 52.0", "baseline 32.0"}}
    assert lines == {"teacher 52.0": pytest.approx(52.0), "baseline 32.0": pytest.approx(32.0)}
    with pytest.raises(ValueError, match="rows is empty"):
        method_comparison_figure([])
