"""The report stage: ``report.json`` and ``report.md`` at the run folder's root, plots in ``report/``."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from admd_deploy.pipeline.context import Context

LOGGER = logging.getLogger(__name__)

MODELS_PROTOCOL = "ultralytics-val"  # the id of the evaluate stage's protocol in report.json's "protocols"
RECONSTRUCTION = ("ADMD here is reconstructed from the paper's abstract (Li, Cheng, Han, ISPRS J. 2025); "
                  "every choice the abstract leaves open is a recipe option.")


SINGLE_SEED_NOTE = ("One seed per model: a difference between the distilled and the baseline student smaller than the "
                    "seed-to-seed spread is noise (2-4 points mAP50-95 from scratch at the quickstart's budget). "
                    "What distillation does is measured by `admd-deploy bench kd`: see BENCHMARKS.md, \"KD from scratch, "
                    "50 epochs\" and \"KD comparison: pretrained start\" (paired seeds).")


def inputs(ctx: Context) -> dict[str, Any]:
    return {s: ctx.ledger.records[s].key for s in ("evaluate", "export", "verify") if s in ctx.ledger.records} | {
        "report": ctx.recipe.to_dict()["report"]}


def gap_closed(models: dict[str, Any], key: str = "map50_95") -> float | None:
    """(student - baseline) / (teacher - baseline): the share of the teacher-baseline gap KD closed."""
    try:
        t, b, s = models["teacher"][key], models["baseline"][key], models["student"][key]
    except KeyError:
        return None
    return None if abs(t - b) < 1e-9 else (s - b) / (t - b)


def build(ctx: Context) -> dict[str, Any]:
    from admd_deploy.kd.config import uses_teacher

    ev, ver, d = ctx.out("evaluate"), ctx.out("verify"), ctx.recipe.distill
    models = {k: {**{kk: vv for kk, vv in v.items() if kk != "weights"}, "protocol": MODELS_PROTOCOL}
              for k, v in ev["models"].items()}
    stages = {n: {"status": r.status, "seconds": r.seconds} for n, r in ctx.ledger.records.items()}
    return {
        "name": ctx.recipe.name, "task": ctx.recipe.task, "method": ctx.recipe.distill.method,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "protocol": ev["protocol"], "note": RECONSTRUCTION,
        "protocols": {MODELS_PROTOCOL: ev["protocol"], **ver.get("protocols", {})},
        "models": models, "exports": ver.get("exports", {}), "gates": ver.get("gates", []),
        "passed": bool(ver.get("passed")), "gap_closed_map50_95": gap_closed(models), "bundle": ver.get("bundle"),
        "kd_note": SINGLE_SEED_NOTE if "baseline" in models and "student" in models else None,
        "unlabelled_images": ctx.out("data").get("unlabelled_images") if uses_teacher(d.method, d.pseudo_conf) else None,
        "pseudo_conf": d.pseudo_conf,
        "stages": stages,
    }


def _pts(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}"


def summary_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str, str]]:
    """(model, mAP50, mAP50-95, params, CPU latency) rows of the final table."""
    student = "student" if report["method"] == "none" else f"{report['method']} student"
    label = {"teacher": "teacher", "baseline": "baseline student", "student": student}
    rows = []
    for k, m in report["models"].items():
        rows.append((label.get(k, k), _pts(m["map50"]), _pts(m["map50_95"]), f"{m['params'] / 1e6:.2f}M",
                     f"{m['cpu_latency_ms']:.1f} ms"))
    student_params = report["models"].get("student", {}).get("params")
    for k, e in report["exports"].items():
        if "skipped" in e:
            rows.append((f"exported {k}", "skipped", "", "", e["skipped"]))
            continue
        if "map50" not in e:  # a TensorRT plan: verify does not run it
            rows.append((f"exported {k}", "not measured", "", "", e.get("build_path", "")))
            continue
        lat, ratio = e.get("latency_ms"), e.get("speedup_vs_onnx")
        cell = "n/a" if not lat else f"{lat:.1f} ms" + (f" ({ratio:.2f}x onnx)" if ratio and k != "onnx" else "")
        rows.append((f"exported {k}", _pts(e["map50"]), _pts(e["map50_95"]),
                     f"{student_params / 1e6:.2f}M" if student_params else "", cell))
    return rows


def markdown_table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def plots(ctx: Context, report_dir: Path, report: dict[str, Any]) -> dict[str, str]:
    from admd_deploy import plots as P

    out: dict[str, str] = {}
    csvs = {n: ctx.out(n)["results_csv"] for n in ("teacher", "baseline", "student")
            if ctx.out(n).get("results_csv") and Path(ctx.out(n)["results_csv"]).is_file()}
    if csvs:
        out["training curves"] = str(P.plot_training_curves(csvs, report_dir / "training_curves.png"))
    bars = {**report["models"], **{f"exported {k}": v for k, v in report["exports"].items() if "map50" in v}}
    out["mAP per model"] = str(P.plot_map_bars(bars, report_dir / "map.png"))
    per_class = {k: v["per_class_ap50_95"] for k, v in report["models"].items() if v.get("per_class_ap50_95")}
    if per_class:
        out["per-class AP50-95"] = str(P.plot_per_class_ap(per_class, report_dir / "per_class_ap.png"))
    preds = json.loads(Path(ctx.out("evaluate")["predictions"]).read_text())
    if preds["images"]:
        import yaml

        names = yaml.safe_load(Path(ctx.out("data")["data_yaml"]).read_text())["names"]
        out["teacher vs student predictions"] = str(P.plot_prediction_grid(
            preds["images"], preds["predictions"], report_dir / "predictions.png", ctx.recipe.task, names,
            max_images=ctx.recipe.report.samples))
    snaps = sorted(Path(ctx.out("student").get("run_dir", "")).glob("kd_maps/epoch*.npz")) if ctx.out("student").get(
        "run_dir") else []
    if snaps:
        what = "ADMD mask" if ctx.recipe.distill.method == "admd" else "discrepancy"
        out["where the student is taught"] = str(P.plot_teaching_maps(snaps, report_dir / "kd_maps.png", what))
    if report["gates"]:
        out["gates"] = str(P.plot_gates(report["gates"], report_dir / "gates.png"))
    return out


def exports_protocol(report: dict[str, Any]) -> list[str]:
    """The report.md lines saying how the exports' mAP was measured (none without scored exports)."""
    used = {e["protocol"] for e in report["exports"].values() if e.get("protocol")}
    return [f"Exports, through the edge runtime: {report['protocols'].get(p, p)}. Their Ultralytics cross-check runs "
            f"Ultralytics val on the same file (the protocol above)." for p in sorted(used)] + [""] * bool(used)


def paper_section(report: dict[str, Any]) -> list[str]:
    """The report.md lines of the exports' paper metric (none when no export has one, e.g. an older verify)."""
    scored = {k: e["paper"] for k, e in report["exports"].items() if isinstance(e.get("paper"), dict)}
    if not scored:
        return []
    rows = [(f"exported {k}", _pts(p["map50"]), _pts(p["map50_present"]),
             f"{p['protocol']}: {p['ap_kind']} AP, {p['iou_kind']} IoU {p['iou']}, {p['level']} level")
            for k, p in scored.items()]
    described = sorted({p["description"] for p in scored.values()})
    return ["## Paper metric", "",
            "The mAP50 and mAP50-95 above are Ultralytics' metric (101-point AP at IoU 0.50:0.95, ProbIoU for "
            "oriented boxes), which papers do not report. The same edge-runtime predictions of each export, scored "
            f"again as papers score them: {'; '.join(described)}. Whole scenes: `admd-deploy evaluate` "
            "(recipe section `paper_eval`).", "",
            markdown_table(rows, ("model", "paper mAP@0.5 (all classes)", "paper mAP@0.5 (classes with objects)",
                                  "protocol")), ""]


def markdown(report: dict[str, Any], figures: dict[str, str], run_dir: Path) -> str:
    status = "PASSED" if report["passed"] else "FAILED: " + ", ".join(g["name"] for g in report["gates"] if g["passed"] is False)
    gc = report["gap_closed_map50_95"]
    gates = [(g["name"], "n/a" if g["value"] is None else f"{g['value']:.4g}",
              "" if g["limit"] is None else f"{g['limit']:.4g}",
              {True: "pass", False: "FAIL", None: g.get("skipped", "reported")}[g["passed"]]) for g in report["gates"]]
    parts = [
        f"# {report['name']}: {report['method']} distillation report ({report['task']})", "",
        f"**{status}**. Protocol: {report['protocol']}. mAP in points (0-100).", "",
        *exports_protocol(report),
        markdown_table(summary_rows(report), ("model", "mAP50", "mAP50-95", "params", "CPU latency (batch 1)")), "",
        "Latency: the models alone, PyTorch for the trained models and ONNX Runtime through the edge runtime for "
        "the exports. The exports were timed together in interleaved rounds, and `Nx onnx` is the median over "
        "rounds of their speed against the FP32 ONNX in the same round.", "",
        f"Share of the teacher-baseline gap closed by distillation (mAP50-95): "
        f"{'n/a' if gc is None else f'{100 * gc:.0f}%'}." + (f" {report['kd_note']}" if report.get("kd_note") else ""), "",
        *([unlabelled_line(report), ""] if report.get("unlabelled_images") else []),
        *paper_section(report),
        "## Gates", "", markdown_table(gates, ("gate", "value", "limit", "result")) if gates else "none", "",
    ]
    for title, path in figures.items():
        parts += [f"## {title[0].upper() + title[1:]}", "", f"![{title}]({Path(path).relative_to(run_dir)})", ""]
    stages = [(n, s["status"], "" if s["seconds"] is None else f"{s['seconds']:.0f}") for n, s in report["stages"].items()]
    parts += ["## Stages", "", markdown_table(stages, ("stage", "status", "seconds")), "", f"_{report['note']}_", ""]
    return "\n".join(parts)


def run(ctx: Context, out: Path) -> dict[str, Any]:
    report = build(ctx)
    figures = plots(ctx, out, report) if ctx.recipe.report.plots else {}
    report["figures"] = figures
    (ctx.run_dir / "report.json").write_text(json.dumps(report, indent=2, default=str))
    (ctx.run_dir / "report.md").write_text(markdown(report, figures, ctx.run_dir))
    return {"report": report, "json": str(ctx.run_dir / "report.json"), "markdown": str(ctx.run_dir / "report.md")}


def unlabelled_line(report: dict[str, Any]) -> str:
    """What the distilled student did with the unlabelled images (``data.unlabelled``)."""
    n, conf = report["unlabelled_images"], report.get("pseudo_conf")
    if conf is not None:
        return (f"The teacher pseudo-labelled {n} unlabelled images (`data.unlabelled`, its detections with confidence "
                f">= {conf:g}) and they joined the distilled student's training; the baseline saw the labelled images "
                "only.")
    return (f"The KD term also ran on {n} unlabelled images (`data.unlabelled`); the baseline and the detection loss "
            "saw the labelled images only.")
