"""INT8 Q/DQ ONNX against FP32 on CPU ONNX Runtime: inference time of the same model, interleaved.

    python benchmarks/int8_speed.py --model yolo11n.yaml --imgsz 640
    python benchmarks/int8_speed.py --onnx runs/quickstart/export/student.onnx --int8 runs/quickstart/export/student.int8.onnx \
        --int8-cpu runs/quickstart/export/student.int8-cpu.onnx

Without --onnx, builds the model from YAML (untrained: speed only), exports it with the pipeline's own export
(Ultralytics' exporter, then the DFL rewrite of ``admd_deploy.pipeline.onnx_passes``; Ultralytics' plain
export is timed too, as a reference row) and quantises it with the pipeline's own INT8 steps (calibration on synthetic images): the TensorRT-format S8S8 model
(``onnx_int8``), the CPU model (``onnx_int8_cpu``: U8S8, head decode in float), and for reference U8S8 with
every op quantised (fast, but it destroys the class scores) and U8S8 with the whole head in float.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="yolo11n.yaml")
    ap.add_argument("--imgsz", type=int, default=640)
    ap.add_argument("--onnx", type=Path)
    ap.add_argument("--int8", type=Path, help="the pipeline's student.int8.onnx (TensorRT format)")
    ap.add_argument("--int8-cpu", type=Path, help="the pipeline's student.int8-cpu.onnx (ONNX Runtime CPU format)")
    ap.add_argument("--fp32-plain", type=Path, help="the same model as Ultralytics exports it (no DFL rewrite), timed "
                                                    "as a reference row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()

    from admd_deploy.ultra import env as yolo_env

    yolo_env.prepare()
    from admd_deploy.pipeline.exporting import int8_cpu_onnx_from_onnx, int8_onnx_from_onnx, letterboxed

    fp32, int8, int8_cpu, plain, calib = args.onnx, args.int8, args.int8_cpu, args.fp32_plain, None
    if fp32 is None:
        from admd_deploy.data import SynthConfig, generate_synthetic
        from admd_deploy.pipeline.exporting import onnx_from_checkpoint

        tmp = Path(tempfile.mkdtemp(prefix="int8-"))
        kw = dict(imgsz=args.imgsz, batch=1, dynamic=False, opset=17, simplify=True)
        fp32 = onnx_from_checkpoint(args.model, tmp / "model.onnx", **kw)
        plain = onnx_from_checkpoint(args.model, tmp / "model.plain.onnx", fast_dfl=False, **kw)
        data = generate_synthetic(tmp / "data", SynthConfig(task="detect", n_train=1, n_val=32, imgsz=args.imgsz))
        calib = letterboxed(sorted((data.parent / "images" / "val").glob("*.jpg")), args.imgsz)
        int8 = int8_onnx_from_onnx(fp32, tmp / "model.int8.onnx", calib)
        int8_cpu = int8_cpu_onnx_from_onnx(fp32, tmp / "model.int8-cpu.onnx", calib)
    models = {"FP32": fp32}
    if plain is not None:
        models["FP32 as Ultralytics exports it (DFL softmax not rewritten)"] = plain
    models["INT8 onnx_int8 (S8S8 symmetric Q/DQ, Conv/MatMul outside the decode: TensorRT's format)"] = int8
    if int8_cpu is not None:
        models["INT8 onnx_int8_cpu (U8S8, every op but the head's decode)"] = int8_cpu
    models.update(cpu_variants(fp32, calib if args.onnx is None else None))
    sessions = {k: session(v, args.threads) for k, v in models.items()}
    first = next(iter(sessions.values()))
    shape = [d if isinstance(d, int) else 1 for d in first.get_inputs()[0].shape]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    times: dict[str, list[list[float]]] = {k: [] for k in sessions}
    for _ in range(args.rounds):  # interleaved rounds: the machine's noise hits every model alike
        for k, sess in sessions.items():
            name = sess.get_inputs()[0].name
            for _ in range(3):
                sess.run(None, {name: x})
            samples = []
            for _ in range(args.runs):
                t = time.perf_counter()
                sess.run(None, {name: x})
                samples.append((time.perf_counter() - t) * 1e3)
            times[k].append(samples)
    # This machine switches between speed states within minutes, and the states do not slow every model
    # alike: a speed-up is taken within each round (seconds long), then its median and range over rounds.
    per_round = {k: [statistics.median(r) for r in rounds] for k, rounds in times.items()}
    print(f"onnxruntime, {args.threads} threads, input {shape}, {args.rounds} rounds x {args.runs} runs each, interleaved")
    print("| model | median ms | IQR ms | speed-up vs FP32 (median of rounds) | range over rounds |\n|---|---|---|---|---|")
    for label, rounds in times.items():
        flat = [t for r in rounds for t in r]
        q = statistics.quantiles(flat, n=4)
        ratios = [b / m for b, m in zip(per_round["FP32"], per_round[label])]
        print(f"| {label} | {statistics.median(flat):.2f} | {q[2] - q[0]:.2f} | {statistics.median(ratios):.2f}x "
              f"| {min(ratios):.2f}-{max(ratios):.2f}x |")
    fp32_rounds = per_round["FP32"]
    print(f"\nFP32 per-round medians: {min(fp32_rounds):.2f}-{max(fp32_rounds):.2f} ms")


def cpu_variants(fp32: Path, calib: np.ndarray | None) -> dict[str, Path]:
    """U8S8 variants (ONNX Runtime's fast x86 path; not TensorRT-compatible): all ops, and all but the head."""
    if calib is None:
        return {}
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from admd_deploy.pipeline.exporting import _Calibration

    prep = fp32.with_name("prep.onnx")
    quant_pre_process(str(fp32), str(prep), skip_symbolic_shape=True)
    nodes = [n.name for n in onnx.load(str(prep)).graph.node]
    last = max(int(n.split("/")[1].split(".")[1]) for n in nodes if n.startswith("/model."))
    head = [n for n in nodes if n.startswith(f"/model.{last}/")]
    name = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).get_inputs()[0].name
    out = {}
    for label, exclude in (("INT8 U8S8, all ops (head's sigmoid quantised too)", []),
                           ("INT8 U8S8, head kept in float", head)):
        path = fp32.with_name(f"u8s8_{len(exclude)}.onnx")
        quantize_static(str(prep), str(path), _Calibration(name, calib), per_channel=True,
                        calibrate_method=CalibrationMethod.MinMax, quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
        out[label] = path
    return out


if __name__ == "__main__":
    main()
