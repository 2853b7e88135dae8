"""Edge runtime benchmark: admd-edge end to end vs the bare ``InferenceSession.run``, vs Ultralytics predict.

Prints a markdown table for a YOLO11n detector at 640 and a YOLO11n-OBB at 256 (ONNX Runtime CPU) in three
scenarios: a 1080x810 photo at conf 0.25; the same photo with conf set so that 500 candidates enter NMS
(untrained weights give no confident boxes, so this stands in for a busy scene); and a frame already at the
model's resolution (a 640x480 camera frame, a 256x256 OBB tile), which needs no resize. Then the rotated-NMS
time on 10,000 candidate boxes.

Models: ``--detect`` / ``--obb`` ONNX files, or (when Ultralytics is importable) YOLO11n built from YAML with
untrained weights and exported here: speed does not depend on the weights. Ultralytics is used only for
that export and for the ``YOLO(onnx).predict`` comparison column; the admd-edge side never imports it.

    python export/benchmarks/edge_bench.py --threads 2 --runs 60
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from admd_edge.bench import bench_model, markdown_table, synthetic_image
from admd_edge.model import load_model
from admd_edge.nms import rotated_nms


def export_yolo(yaml: str, imgsz: int, folder: Path) -> Path:
    """Export an untrained YAML-built YOLO to ONNX (Ultralytics needed only here)."""
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_CONFIG_DIR", str(folder / "yolo-config"))
    fonts = Path(os.environ["YOLO_CONFIG_DIR"]) / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    try:
        import matplotlib

        font = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
        for name in ("Arial.ttf", "Arial.Unicode.ttf"):
            if not (fonts / name).exists():
                shutil.copyfile(font, fonts / name)
    except ImportError:
        pass
    from ultralytics import YOLO

    cwd = os.getcwd()
    os.chdir(folder)
    try:
        exported = Path(YOLO(yaml).export(format="onnx", imgsz=imgsz, simplify=True, verbose=False))
    finally:
        os.chdir(cwd)
    target = folder / f"{Path(yaml).stem}-{imgsz}.onnx"
    shutil.move(folder / exported, target)
    return target


def conf_for_candidates(onnx: Path, image: np.ndarray, threads: int, count: int) -> float:
    """The confidence threshold that lets ``count`` anchors of this image into NMS."""
    model = load_model(onnx, threads=threads)
    tensor, _ = model.preprocessor(image)
    raw = model.runner.run(tensor)[0][0]
    scores = np.sort(raw[4 : 4 + len(model.names)].max(0))[::-1]
    return float(scores[min(count, len(scores) - 1)])


def ultralytics_predict_ms(onnx: Path, image: np.ndarray, imgsz: int, conf: float, runs: int) -> float | None:
    """Median wall time of ``YOLO(onnx).predict`` on one image, or None without Ultralytics."""
    try:
        from ultralytics import YOLO
    except ImportError:
        return None
    model = YOLO(str(onnx), task="obb" if "obb" in onnx.name else "detect")
    for _ in range(3):
        model.predict(image, imgsz=imgsz, conf=conf, verbose=False)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        model.predict(image, imgsz=imgsz, conf=conf, verbose=False)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


def rotated_nms_ms(n: int = 10_000, runs: int = 50, seed: int = 0) -> tuple[float, int]:
    """Median rotated-NMS time on ``n`` boxes: 1024 px image, 15 classes, sides 8-64 px, IoU 0.7."""
    rng = np.random.default_rng(seed)
    xywhr = np.column_stack(
        [rng.uniform(0, 1024, (n, 2)), rng.uniform(8, 64, (n, 2)), rng.uniform(-math.pi / 4, 3 * math.pi / 4, n)]
    ).astype(np.float32)
    xywhr[:, :2] += rng.integers(0, 15, n)[:, None].astype(np.float32) * 7680
    scores = rng.uniform(0.25, 1, n).astype(np.float32)
    kept = rotated_nms(xywhr, scores, 0.7)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rotated_nms(xywhr, scores, 0.7)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), len(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detect", type=Path, help="detector ONNX (default: YOLO11n exported at 640)")
    parser.add_argument("--obb", type=Path, help="OBB ONNX (default: YOLO11n-OBB exported at 256)")
    parser.add_argument("--image", type=Path, help="BGR image (default: Ultralytics' bus.jpg, else synthetic 1280x720)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--no-ultralytics", action="store_true", help="skip the Ultralytics predict column")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="edge-bench-"))
    models = {"detect": args.detect, "obb": args.obb}
    if None in models.values():
        models["detect"] = models["detect"] or export_yolo("yolo11n.yaml", 640, work)
        models["obb"] = models["obb"] or export_yolo("yolo11n-obb.yaml", 256, work)
    image = cv2.imread(str(args.image)) if args.image else None
    if image is None:
        try:
            import ultralytics

            image = cv2.imread(str(Path(ultralytics.__file__).parent / "assets" / "bus.jpg"))
        except ImportError:
            image = None
    image = image if image is not None else synthetic_image()

    results, other = [], {}
    photo = f"{image.shape[1]}x{image.shape[0]}"
    for task, onnx in models.items():
        imgsz = load_model(onnx).imgsz[0]
        native = cv2.resize(image, (imgsz, imgsz * 3 // 4) if task == "detect" else (imgsz, imgsz))
        scenarios = [
            (f"{photo}, conf 0.25", image, 0.25),
            (f"{photo}, 500 candidates", image, conf_for_candidates(onnx, image, args.threads, 500)),
            (f"{native.shape[1]}x{native.shape[0]} frame, conf 0.25", native, 0.25),
        ]
        for label, frame, conf in scenarios:
            name = f"{onnx.stem} ({label})"
            model = load_model(onnx, threads=args.threads, conf=conf)
            results.append(bench_model(model, frame, runs=args.runs, warmup=5, name=name))
            if not args.no_ultralytics:
                ms = ultralytics_predict_ms(onnx, frame, imgsz, conf, max(10, args.runs // 2))
                if ms is not None:
                    other[name] = ms
    nms_ms, kept = rotated_nms_ms()

    print(
        f"ONNX Runtime CPU, {args.threads} intra-op threads, "
        f"{args.runs} runs, {platform.processor() or platform.machine()} x{os.cpu_count()}, "
        f"load average {os.getloadavg()[0]:.2f}; times: median ± half-IQR ms"
    )
    print()
    print(markdown_table(results, extra=other if other else None))
    print()
    print(f"rotated NMS, 10,000 boxes (1024 px, 15 classes, IoU 0.7, {kept} kept): {nms_ms:.2f} ms median")
    if other:
        print("other e2e = Ultralytics YOLO(onnx).predict on the same image and conf (its default session options)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
