"""``admd-edge``: predict, build-engine, bench. Thin: parse, call the library, report.

Bad input (a missing file, a bad threshold, a tampered bundle, TensorRT absent) exits 2 with one line on
stderr and no traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from admd_edge import __version__
from admd_edge.errors import EdgeError

LOGGER = logging.getLogger(__name__)
EXIT_USAGE = 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return value


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--conf", type=float, default=0.25, help="confidence threshold (default 0.25)")
    p.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (default 0.7)")
    p.add_argument("--imgsz", type=_positive_int, default=None, help="input size for a dynamic-shape model")
    p.add_argument("--max-det", type=_positive_int, default=300, help="detections kept per image (default 300)")
    p.add_argument("--threads", type=_positive_int, default=None, help="ONNX Runtime intra-op threads")
    p.add_argument("--no-spin", action="store_true", help="stop ONNX Runtime threads spinning (busy shared CPU)")


def build_parser() -> argparse.ArgumentParser:
    """The ``admd-edge`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="admd-edge",
        description="Torch-free YOLO runtime for the edge: ONNX Runtime or TensorRT, Ultralytics-identical decoding.",
    )
    parser.add_argument("--version", action="version", version=f"admd-edge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("predict", help="detect in an image, a folder of images or a video")
    p.add_argument("model", help=".onnx, TensorRT plan (.engine/.plan), or a bundle folder")
    p.add_argument("source", help="image file, folder of images, or video file")
    p.add_argument("--out", default="runs/admd-edge/predict", help="output folder (default runs/admd-edge/predict)")
    p.add_argument("--bundle", default=None, help="bundle folder to verify first; MODEL is resolved inside it")
    _add_model_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("build-engine", help="build a TensorRT engine from an ONNX on this GPU (cached)")
    p.add_argument("model", help="the .onnx file")
    p.add_argument("--precision", choices=("fp16", "fp32", "int8"), default="fp16", help="default fp16")
    p.add_argument("--calib", default=None, help="calibration image folder (TensorRT 10 INT8 without Q/DQ)")
    p.add_argument("--workspace", type=float, default=4.0, help="builder workspace in GiB (default 4)")
    p.add_argument("--max-batch", type=_positive_int, default=1, help="largest batch for a dynamic-batch ONNX")
    p.add_argument("--out", default=None, help="engine cache folder (default ~/.cache/admd-edge/engines)")
    p.add_argument("--force", action="store_true", help="rebuild even when the cache has the engine")
    p.set_defaults(func=cmd_build_engine)

    p = sub.add_parser("bench", help="time pre / infer / post / end-to-end against the bare inference call")
    p.add_argument("model", help=".onnx, TensorRT plan, or bundle folder")
    p.add_argument("--runs", type=_positive_int, default=50, help="timed iterations (default 50)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5)")
    p.add_argument("--image", default=None, help="image to run on (default a synthetic 1280x720 frame)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    _add_model_options(p)
    p.set_defaults(func=cmd_bench)
    return parser


def _load(args: argparse.Namespace) -> Any:
    from admd_edge.model import load_model

    return load_model(
        args.model,
        bundle=getattr(args, "bundle", None),
        threads=args.threads,
        spin=not args.no_spin,
        conf=args.conf,
        iou=args.iou,
        max_det=args.max_det,
        imgsz=args.imgsz,
    )


def cmd_predict(args: argparse.Namespace) -> int:
    """Run a model over a source and write annotated images/video and JSON/JSONL.

    Frames are read ahead and results written behind in threads (:mod:`admd_edge.stream`), in order. A long
    video reports progress on stderr. On Ctrl-C, everything predicted so far is written (the video is
    closed properly, so it plays) and the exit status is 130.
    """
    import cv2

    from admd_edge.draw import annotate
    from admd_edge.sources import iter_frames, source_kind, video_fps, video_frame_count
    from admd_edge.stream import OrderedWriter, Progress, prefetch

    kind = source_kind(args.source)
    model = _load(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    source = Path(args.source)
    done = 0
    if kind == "video":
        video_path, jsonl_path = out / f"{source.stem}.mp4", out / f"{source.stem}.jsonl"
        progress = Progress(source.name, video_frame_count(source))
        video: list[Any] = []  # the cv2.VideoWriter, made at the first frame (its size)

        def write_frame(frame: Any, detections: Any, jsonl: Any) -> None:
            jsonl.write(json.dumps({"source": str(source), "frame": frame.index, **detections.to_dict()}) + "\n")
            if not video:
                h, w = frame.image.shape[:2]
                video.append(cv2.VideoWriter(str(video_path), cv2.VideoWriter_fourcc(*"mp4v"), video_fps(source),
                                             (w, h)))
            video[0].write(annotate(frame.image, detections))

        with open(jsonl_path, "w") as jsonl:
            try:
                with OrderedWriter() as writer:
                    for frame in prefetch(iter_frames(source)):
                        writer.submit(write_frame, frame, model.predict(frame.image), jsonl)
                        progress.update()
            except KeyboardInterrupt:  # the writer has flushed every predicted frame; finally closes the video
                print(f"{source.name}: interrupted after {progress.done} frames; they are in {video_path}, "
                      f"{jsonl_path}", file=sys.stderr)
                return 130
            finally:
                if video:
                    video[0].release()
        progress.finish()
        print(f"{source.name}: {progress.done} frames -> {video_path}, {jsonl_path}")
        return 0

    def write_image(frame: Any, detections: Any, ms: float) -> None:
        suffix = frame.path.suffix
        cv2.imwrite(str(out / f"{frame.name}{suffix}"), annotate(frame.image, detections))
        payload = {"source": str(frame.path), **detections.to_dict()}
        (out / f"{frame.name}.json").write_text(json.dumps(payload, indent=1) + "\n")
        print(f"{frame.name}{suffix}: {len(detections)} detections ({ms:.1f} ms)", flush=True)

    try:
        with OrderedWriter() as writer:
            for frame in prefetch(iter_frames(source)):
                t0 = time.perf_counter()
                detections = model.predict(frame.image)
                writer.submit(write_image, frame, detections, (time.perf_counter() - t0) * 1e3)
                done += 1
    except KeyboardInterrupt:
        print(f"interrupted after {done} image(s); their results are in {out}", file=sys.stderr)
        return 130
    print(f"{done} image(s) -> {out}")
    return 0


def cmd_build_engine(args: argparse.Namespace) -> int:
    """Build (or fetch from the cache) a TensorRT plan and say which path was used."""
    from admd_edge.engine import engine_from_onnx

    if Path(args.model).suffix.lower() != ".onnx":
        raise ValueError(f"build-engine needs an .onnx file; got {args.model}")
    build = engine_from_onnx(
        args.model,
        args.precision,
        out_dir=args.out,
        calibration=args.calib,
        workspace_gb=args.workspace,
        max_batch=args.max_batch,
        force=args.force,
    )
    state = "cached" if build.cached else f"built in {build.info.get('build_seconds', '?')} s"
    print(
        f"{build.plan} ({state}, path {build.path}, TensorRT {build.info.get('tensorrt_version')}, "
        f"{build.info.get('gpu_name')})"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Time the pipeline and print a markdown table (or JSON)."""
    from admd_edge.bench import bench_model, markdown_table, synthetic_image
    from admd_edge.sources import read_image

    model = _load(args)
    image = read_image(args.image) if args.image else synthetic_image()
    result = bench_model(model, image, runs=args.runs, warmup=max(0, args.warmup), name=Path(args.model).name)
    print(json.dumps(result.to_dict(), indent=1) if args.json else markdown_table([result]))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, NotADirectoryError, EdgeError) as err:
        print(f"admd-edge {args.command}: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
