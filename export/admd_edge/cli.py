"""``admd-edge``: predict, build-engine, bench. Thin: parse, call the library, report.

Exit status: 0 done; 2 bad input refused before any work (a missing file, a bad threshold, a tampered bundle,
TensorRT absent, an output folder that would overwrite the source), with one line on stderr and no traceback;
1 ``predict`` finished but skipped unreadable images (one warning line each and a summary), or an unexpected
error; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from admd_edge import __version__
from admd_edge.errors import EdgeError

if TYPE_CHECKING:
    from admd_edge.outputs import OutputFolder

LOGGER = logging.getLogger(__name__)
EXIT_USAGE = 2
EXIT_SKIPPED = 1
EXIT_INTERRUPTED = 130


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1; got {text}")
    return value


def _parse_slice(text: str) -> str | int:
    from admd_edge.slice_policy import parse_slice

    return parse_slice(text)


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
    p.add_argument("--out", default=None,
                   help="output folder, outside the source; refused if it holds files, unless --exist-ok "
                        "(default: a new runs/admd-edge/predict, predict2, ...)")
    p.add_argument("--exist-ok", action="store_true",
                   help="write into an existing output folder (default: runs/admd-edge/predict), replacing "
                        "files of the same name")
    p.add_argument("--bundle", default=None, help="bundle folder to verify first; MODEL is resolved inside it")
    p.add_argument("--slice", default="auto", type=_parse_slice, metavar="auto|off|SIZE",
                   help="large images: predict in tiles of SIZE px, or of the model's input size for images more "
                        "than twice the input (auto, the default), or letterbox them whole (off)")
    p.add_argument("--overlap", type=int, default=None, metavar="PX",
                   help="pixels shared by neighbouring tiles (default a fifth of the tile)")
    p.add_argument("--full-frame", action="store_true", help="when slicing, also run the whole image (large objects)")
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

    The source, the output folder and the model are checked before any work (:mod:`admd_edge.outputs` has
    the output rules). Frames are read ahead and results written behind in threads (:mod:`admd_edge.stream`),
    in order. A long video reports progress on stderr. On Ctrl-C, everything predicted so far is written (the
    video is closed properly, so it plays) and the exit status is 130. A run that wrote nothing leaves no
    folder behind.
    """
    from admd_edge.outputs import OutputFolder, choose_output_folder
    from admd_edge.sources import check_video, image_files, read_image, source_kind

    if not args.verbose:
        _quiet_opencv()
    source = Path(args.source)
    kind = source_kind(source)
    if kind == "folder":
        image_files(source)  # refuses a folder without images
        names: tuple[str, ...] = ()
    elif kind == "image":
        read_image(source)  # a single unreadable image is bad input: refused before the model loads
        names = (source.name, f"{source.name}.json")
    else:
        check_video(source)
        names = (f"{source.stem}.mp4", f"{source.stem}.jsonl")
    out = choose_output_folder(args.out, exist_ok=args.exist_ok, source=source, output_names=names)
    model = _load(args)
    from admd_edge.slice_policy import FramePredictor

    predict = FramePredictor(model, args.slice, args.overlap, args.full_frame)  # refuses a bad overlap here
    folder = OutputFolder(out)
    try:
        if kind == "video":
            return _predict_video(predict, source, folder)
        return _predict_images(predict, source, folder)
    finally:
        folder.discard_if_empty()


def _quiet_opencv() -> None:
    """Keep OpenCV's own decoder warnings off stderr: unreadable files are reported once, by predict."""
    import cv2

    try:
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except AttributeError:  # pragma: no cover - builds without cv2.utils.logging
        pass


def _predict_video(predict: Any, source: Path, folder: OutputFolder) -> int:
    """Predict every frame of a video into ``<stem>.mp4`` (annotated) and ``<stem>.jsonl`` (a line per frame)."""
    import cv2

    from admd_edge.draw import annotate
    from admd_edge.sources import iter_frames, video_fps, video_frame_count
    from admd_edge.stream import OrderedWriter, Progress, prefetch

    video_name, jsonl_name = f"{source.stem}.mp4", f"{source.stem}.jsonl"
    progress = Progress(source.name, video_frame_count(source))
    opened: dict[str, Any] = {}  # the JSONL and cv2.VideoWriter, made at the first frame (its size)

    def write_frame(frame: Any, detections: Any) -> None:
        if not opened:
            h, w = frame.image.shape[:2]
            opened["jsonl"] = folder.open_text(jsonl_name)
            opened["video"] = cv2.VideoWriter(str(folder.path_for(video_name)), cv2.VideoWriter_fourcc(*"mp4v"),
                                              video_fps(source), (w, h))
        opened["jsonl"].write(json.dumps({"source": str(source), "frame": frame.index, **detections.to_dict()}) + "\n")
        opened["video"].write(annotate(frame.image, detections))

    try:
        with OrderedWriter() as writer:
            for frame in prefetch(iter_frames(source)):
                writer.submit(write_frame, frame, predict(frame.image, source.name))
                progress.update()
    except KeyboardInterrupt:  # the writer has flushed every predicted frame; finally closes the video
        print(f"{source.name}: interrupted after {progress.done} frames; "
              + (f"they are in {folder.path}" if opened else "nothing was written"), file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        if opened:
            opened["video"].release()
            opened["jsonl"].close()
    progress.finish()
    if progress.total and progress.done < progress.total:
        print(f"warning: {source.name}: the video ended after {progress.done} of the {progress.total} frames its "
              f"container announces (truncated or corrupt at the end?)", file=sys.stderr)
    print(f"{source.name}: {progress.done} frames -> {folder.path / video_name}, {folder.path / jsonl_name}")
    return 0


def _predict_images(predict: Any, source: Path, folder: OutputFolder) -> int:
    """Predict an image or a folder of images; unreadable images of a folder are skipped (exit 1 at the end).

    Each image gets an annotated copy under its own name and a JSON named after the whole file name
    (``a.jpg`` -> ``a.jpg``, ``a.jpg.json``), so ``a.jpg`` and ``a.png`` do not share one. Each skipped image
    gets one warning line on stderr, and a summary line lists them after the rest is done.
    """
    import cv2

    from admd_edge.draw import annotate
    from admd_edge.sources import Unreadable, iter_frames
    from admd_edge.stream import OrderedWriter, prefetch

    def write_image(frame: Any, detections: Any, ms: float) -> None:
        name = frame.path.name
        ok, encoded = cv2.imencode(frame.path.suffix, annotate(frame.image, detections))
        if not ok:
            raise OSError(f"OpenCV could not encode the annotated {name}")
        folder.write_bytes(name, encoded.tobytes())
        payload = {"source": str(frame.path), **detections.to_dict()}
        folder.write_text(f"{name}.json", json.dumps(payload, indent=1) + "\n")
        print(f"{name}: {len(detections)} detections ({ms:.1f} ms)", flush=True)

    done, skipped = 0, []  # skipped: file names
    try:
        with OrderedWriter() as writer:
            for frame in prefetch(iter_frames(source, skip_unreadable=True)):
                if isinstance(frame, Unreadable):
                    skipped.append(frame.path.name)
                    print(f"warning: skipped {frame.path}: {frame.reason}", file=sys.stderr, flush=True)
                    continue
                t0 = time.perf_counter()
                detections = predict(frame.image, frame.path.name)
                writer.submit(write_image, frame, detections, (time.perf_counter() - t0) * 1e3)
                done += 1
    except KeyboardInterrupt:
        print(f"interrupted after {done} image(s); "
              + (f"their results are in {folder.path}" if done else "nothing was written"), file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"{done} image(s) -> {folder.path}" if done else "0 image(s) predicted; nothing was written")
    if skipped:
        listed = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"{len(skipped)} of {done + len(skipped)} image(s) skipped as unreadable (see the warnings above): "
              f"{listed}", file=sys.stderr)
        return EXIT_SKIPPED
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
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
