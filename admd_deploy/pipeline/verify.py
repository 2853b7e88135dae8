"""The verify stage: accuracy of every export through the edge runtime, gates, and the deploy bundle."""

from __future__ import annotations

import json
import logging
import platform
import shutil
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from admd_deploy.pipeline.context import Context
from admd_deploy.pipeline.edge_wheel import build_edge_wheel
from admd_deploy.pipeline.evaluate import VAL_ARGS
from admd_deploy.pipeline.exporting import engine_command, engine_source

LOGGER = logging.getLogger(__name__)

PACKAGES = ("admd-deploy", "admd-edge", "ultralytics", "torch", "onnx", "onnxruntime", "onnxslim", "numpy",
            "opencv-python-headless", "tensorrt")


EDGE_VAL = {"conf": VAL_ARGS["conf"], "iou": VAL_ARGS["iou"], "max_det": 300}  # Ultralytics' validator settings
EDGE_PROTOCOL = "admd-edge-multi-label"  # the id of edge_protocol(True) in report.json's "protocols"
PAPER_PROTOCOL = "paper-voc07-patch"  # the id of the exports' "paper" scores in report.json's "protocols"


def edge_protocol(multi_label: bool = True) -> str:
    """How :func:`edge_metrics` scored an export, for the report."""
    nms = ("multi-label NMS as Ultralytics' validator (every class above conf of a box is a detection)"
           if multi_label else "single-label NMS (one class per box, the runtime's predict default)")
    return (f"admd-edge runtime (ONNX Runtime), letterboxed, conf={EDGE_VAL['conf']}, NMS IoU {EDGE_VAL['iou']}, "
            f"max_det={EDGE_VAL['max_det']}, {nms}, boxes unclipped as the validator matches them; "
            "scored with Ultralytics' matching and 101-point AP")


def gate(name: str, value: float | None, limit: float | None, passed: bool | None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "value": value, "limit": limit, "passed": passed, **extra}


def floor_gate(name: str, value: float, limit: float) -> dict[str, Any]:
    """``value`` (0-1) in points must reach ``limit`` points: a model that learned nothing (mAP 0) fails."""
    pts = round(100 * value, 3)
    return gate(name, pts, limit, pts >= limit)


def drop_gate(name: str, reference: float, value: float, limit: float | None) -> dict[str, Any]:
    """A drop in points (0-100) of ``value`` below ``reference``; passes when at most ``limit``."""
    drop = round(100 * (reference - value), 3)
    return gate(name, drop, limit, None if limit is None else drop <= limit)


def edge_metrics(onnx_path: Path, data_yaml: str, task: str, imgsz: int, *, multi_label: bool = True) -> dict[str, Any]:
    """mAP of an ONNX model run through the edge runtime (admd_edge) on the val split (its latency is timed with
    the other exports' in :func:`interleaved_latency`).

    ``multi_label`` (the default) decodes as Ultralytics' validator does (every class above conf of a box
    is a detection), so the number compares with ``YOLO.val()`` of the student and of the same ONNX; False
    is the runtime's prediction decode (one label per box). Boxes are scored unclipped, as the validator
    matches them (prediction clips them to the image).

    The same predictions are scored a second time with the paper metric (VOC07 11-point AP at IoU 0.5,
    :func:`admd_deploy.evaluation.patches.paper_metric`), returned under ``"paper"``: no second model run.
    """
    import cv2

    from admd_deploy.ultra import env as yolo_env
    from admd_deploy.pipeline.evaluate import val_images
    from admd_deploy.evaluation.patches import paper_metric
    from admd_deploy.pipeline.scoring import Sample, ground_truth, score
    from admd_edge import load_model

    det = load_model(onnx_path, conf=EDGE_VAL["conf"], iou=EDGE_VAL["iou"], max_det=EDGE_VAL["max_det"],
                     multi_label=multi_label, clip=False, threads=yolo_env.cpu_threads())
    samples = []
    for img_path in val_images(data_yaml, 10**9):
        img = cv2.imread(str(img_path))
        label = Path(str(img_path).replace("/images/", "/labels/")).with_suffix(".txt")
        gt_cls, gt_boxes = ground_truth(label, img.shape[1], img.shape[0], task)
        d = det(img)
        boxes = d.xywhr if task == "obb" else d.boxes
        samples.append(Sample(gt_cls, gt_boxes, d.class_ids.astype(np.int64), d.scores, boxes))
    return {**score(samples, task, det.names), "paper": paper_metric(samples, task, det.names)}


def interleaved_latency(dets: dict[str, Any], image: np.ndarray, runs: int, rounds: int = 5,
                        reference: str = "onnx") -> dict[str, dict[str, float]]:
    """Model-only and end-to-end latency of several loaded models (``predict_timed``) on one image, timed in
    interleaved rounds.

    This machine class changes speed within minutes, so models timed one after the other are not
    comparable. Each round times every model for ``runs`` calls, and the speed-up of a model over
    ``reference`` is the median over rounds of the ratio of the two models' medians in that round.
    Latencies are medians over all calls.
    """
    import statistics

    calls: dict[str, list[tuple[float, ...]]] = {name: [] for name in dets}
    per_round: dict[str, list[float]] = {name: [] for name in dets}
    for _ in range(rounds):
        for name, det in dets.items():
            for _ in range(2):
                det.predict_timed([image])
            timings = [det.predict_timed([image])[1] for _ in range(max(1, runs))]
            calls[name] += timings
            per_round[name].append(statistics.median(t[1] for t in timings))
    out = {}
    for name in dets:
        entry = {"latency_ms": 1e3 * statistics.median(t[1] for t in calls[name]),
                 "end_to_end_ms": 1e3 * statistics.median(sum(t) for t in calls[name]), "latency_rounds": rounds}
        if reference in per_round:
            entry[f"speedup_vs_{reference}"] = statistics.median(
                r / m for r, m in zip(per_round[reference], per_round[name]))
        out[name] = entry
    return out


def inputs(ctx: Context) -> dict[str, Any]:
    models = ctx.out("evaluate").get("models", {})
    accuracy = {m: {k: v.get(k) for k in ("map50", "map50_95")} for m, v in models.items()}  # not latency noise
    return {"export": ctx.ledger.records["export"].key if "export" in ctx.ledger.records else None,
            "gates": ctx.recipe.to_dict()["gates"], "accuracy": accuracy, "protocol": EDGE_PROTOCOL}


def run(ctx: Context, out: Path) -> dict[str, Any]:
    import cv2

    from admd_deploy.ultra import env as yolo_env
    from admd_deploy.pipeline.evaluate import val_images, val_metrics
    from admd_edge import load_model

    r, g = ctx.recipe, ctx.recipe.gates
    data_yaml, imgsz = ctx.out("data")["data_yaml"], ctx.out("export")["imgsz"]
    models = ctx.out("evaluate")["models"]
    student, teacher = models["student"], models.get("teacher")
    artifacts = ctx.out("export")["artifacts"]
    gates: list[dict[str, Any]] = []
    exports: dict[str, Any] = {}
    timed: dict[str, Path] = {}  # the ONNX exports, timed together after the loop
    if "baseline" in models and teacher and g.teacher_over_baseline is not None:
        lead = round(100 * (teacher["map50_95"] - models["baseline"]["map50_95"]), 3)
        gates.append(gate("teacher_over_baseline_map50_95", lead, g.teacher_over_baseline, lead >= g.teacher_over_baseline))
    gates.append(floor_gate("student_min_map50_95", student["map50_95"], g.min_map50_95))
    for name, art in artifacts.items():
        if "skipped" in art:
            exports[name] = {"skipped": art["skipped"], "command": art.get("command")}
            gates.append(gate(f"{name}_built", None, None, None, skipped=art["skipped"]))
            continue
        path = Path(art["path"])
        for c in art.get("checks", []):
            gates.append(gate(f"{name}_{c['name']}", c["value"], c["limit"], c["passed"]))
        if not path.suffix == ".onnx":  # a TensorRT plan: recorded as the export stage left it, not run here
            exports[name] = {**{k: v for k, v in art.items() if k != "checks"},
                             "accuracy": "not measured (verify runs ONNX only; the engine runs on its GPU)"}
            continue
        LOGGER.info("verify: %s through the edge runtime", name)
        edge = edge_metrics(path, data_yaml, r.task, imgsz)  # multi-label: the validator's protocol, like `student`
        timed[name] = path
        ul = val_metrics(path, data_yaml, imgsz, 1, "cpu")
        limit = {"int8": g.int8_map_drop, "fp16": g.fp16_map_drop}.get(art["precision"], g.fp32_map_drop)
        gates.append(floor_gate(f"{name}_min_map50_95", edge["map50_95"], g.min_map50_95))
        for key in ("map50", "map50_95"):
            gates.append(drop_gate(f"{name}_{key}_drop_vs_student", student[key], edge[key], limit))
            if teacher:
                gates.append(drop_gate(f"{name}_{key}_gap_to_teacher", teacher[key], edge[key], g.teacher_gap))
        diff = round(100 * abs(edge["map50_95"] - ul["map50_95"]), 3)
        gates.append(gate(f"{name}_cross_check_vs_ultralytics", diff, g.cross_check, diff <= g.cross_check))
        exports[name] = {**edge, "protocol": EDGE_PROTOCOL,
                         "ultralytics_map50": ul["map50"], "ultralytics_map50_95": ul["map50_95"],
                         "path": str(path), "sha256": art["sha256"], "precision": art["precision"],
                         "checks": art["checks"], **{k: art[k] for k in ("passes", "runtime", "quantizer") if k in art}}
    if timed:
        LOGGER.info("verify: latency of %s, interleaved", ", ".join(timed))
        image = cv2.imread(str(val_images(data_yaml, 1)[0]))
        dets = {name: load_model(path, threads=yolo_env.cpu_threads()) for name, path in timed.items()}
        for name, lat in interleaved_latency(dets, image, max(1, r.report.latency_runs // 4)).items():
            exports[name].update(lat)
    passed = all(x["passed"] is not False for x in gates)
    bundle = write_bundle(ctx, out.parent / "deploy", artifacts, gates, passed)
    protocols = {EDGE_PROTOCOL: edge_protocol(True)}
    if any("paper" in e for e in exports.values()):
        from admd_deploy.evaluation.patches import describe

        protocols[PAPER_PROTOCOL] = describe(r.task)
    return {"exports": exports, "gates": gates, "passed": passed, "bundle": str(bundle), "protocols": protocols}


def versions() -> dict[str, str | None]:
    found = {}
    for pkg in PACKAGES:
        try:
            found[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            found[pkg] = None
    if found["tensorrt"] is None:  # NVIDIA images name the distribution tensorrt-cu12/-cu13, or ship bindings via apt
        try:
            import tensorrt

            found["tensorrt"] = tensorrt.__version__
        except ImportError:
            pass
    found["python"] = platform.python_version()
    return found


def write_bundle(ctx: Context, deploy: Path, artifacts: dict[str, Any], gates: list[dict], passed: bool) -> Path:
    """``deploy/``: the ONNX files, the edge runtime's wheel, a device README and ``manifest.json`` (sha256 of
    all)."""
    import yaml

    if deploy.exists():
        shutil.rmtree(deploy)
    deploy.mkdir(parents=True)
    files = {}
    for art in artifacts.values():
        if "path" in art and Path(art["path"]).suffix == ".onnx":  # engines are not portable: built on the device
            dst = deploy / Path(art["path"]).name
            shutil.copy2(art["path"], dst)
            files[dst.name] = dst
    wheel = build_edge_wheel(deploy)  # the runtime the device installs, from the installed distribution
    files[wheel.name] = wheel
    data = yaml.safe_load(Path(ctx.out("data")["data_yaml"]).read_text())
    names = data["names"] if isinstance(data["names"], dict) else dict(enumerate(data["names"]))
    onnx_name = Path(artifacts["onnx"]["path"]).name
    engine = artifacts.get("engine", {})
    precision = ctx.recipe.export.engine_precision
    build = engine.get("command")  # set by the export stage when it handled the engine
    if build is None:
        source = artifacts.get(engine_source(precision, ctx.recipe.export.formats), {})
        build = engine_command(Path(source.get("path", onnx_name)).name, precision)
    from admd_edge.manifest import write_manifest  # the runtime verifies what its own writer wrote

    failed = [x["name"] for x in gates if x["passed"] is False]
    model = {"task": ctx.recipe.task, "imgsz": ctx.out("export")["imgsz"], "stride": 32, "file": onnx_name,
             "names": {int(k): v for k, v in names.items()}}
    extra = {
        "passed": passed, "failed_gates": failed, "gates": gates,
        "engine": bundle_engine_entry(engine, build),
        "versions": versions(), "build_manifest": _image_manifest(), "recipe": ctx.recipe.to_dict(),
    }
    write_manifest(deploy, list(files), model, json.loads(json.dumps(extra, default=str)))
    cpu_int8 = Path(artifacts["onnx_int8_cpu"]["path"]).name if "path" in artifacts.get("onnx_int8_cpu", {}) else None
    (deploy / "README.md").write_text(_device_readme(ctx, onnx_name, build, passed, failed, cpu_int8, wheel.name))
    return deploy


def bundle_engine_entry(engine: dict[str, Any], build: str) -> dict[str, Any]:
    """The manifest's engine entry: only what the export stage's artifact says (a plan is never shipped)."""
    if "skipped" in engine:
        return {"build_command": build, "status": engine["skipped"]}
    if "path" not in engine:
        return {"build_command": build, "status": "not requested"}
    facts = {k: engine[k] for k in ("build_path", "cached", "tensorrt_version", "gpu_name", "sha256") if k in engine}
    return {"build_command": build, "status": "built on the export machine, not shipped (engines are not portable)",
            "export_machine_build": facts}


def _image_manifest() -> dict[str, Any] | None:
    """The Docker image's build manifest, when the bundle is built inside one of our images."""
    path = Path("/etc/admd-deploy/build-manifest.json")
    return json.loads(path.read_text()) if path.is_file() else None


def _device_readme(ctx: Context, onnx_name: str, build: str, passed: bool, failed: list[str],
                   cpu_int8: str | None = None, wheel: str = "admd_edge-0.1.0-py3-none-any.whl") -> str:
    status = "PASSED every gate" if passed else f"FAILED gates: {', '.join(failed)} (see manifest.json)"
    cpu = (f"\nOn a CPU without TensorRT, `{cpu_int8}` (INT8 for ONNX Runtime's CPU kernels, decode in float) is "
           f"usually faster than `{onnx_name}`; its mAP drop is gated like the others (manifest.json). "
           "`student.int8.onnx` is the TensorRT-format INT8 (symmetric Q/DQ): slow on ONNX Runtime's x86 CPU kernels.\n"
           if cpu_int8 else "")
    return f"""# {ctx.recipe.name}: deployable {ctx.recipe.task} student

Status: **{status}**.

## On the device (Jetson or any Linux with Python 3.10+)
```bash
pip install "./{wheel}"    # numpy, opencv, onnxruntime; "./{wheel}[trt]" adds TensorRT
admd-edge predict {onnx_name} images/ --bundle . --out predictions/
{build} --out .    # build the TensorRT engine ON the device (engines are not portable)
admd-edge bench {onnx_name}
```
{cpu}
The engine is built from the export that both TensorRT generations take for this precision: the FP16 ONNX
(`student.fp16.onnx`) for fp16 and the Q/DQ ONNX (`student.int8.onnx`) for int8, when they are in the bundle.
TensorRT 11 builds only strongly typed networks, so it refuses an fp16 or int8 engine from the FP32 ONNX.

Every file is listed in `manifest.json` with its sha256; the runtime refuses a model whose hash differs.
"""
