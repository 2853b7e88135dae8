"""``admd-edge predict`` on a video against the same work done in one thread: frames per second.

    python export/benchmarks/predict_video.py MODEL.onnx [--image frame.jpg] [--frames 150] [--threads 2]

Writes a synthetic video (the image, shifted a little each frame; a generated 1080x810 scene without
``--image``), then times, interleaved over rounds: a one-thread loop (read a frame, predict, annotate, write
the video and the JSONL line) and ``admd-edge predict``, which reads ahead and writes behind in threads
(``admd_edge.stream``). Both write the same outputs.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np


def synthetic_scene(h: int = 1080, w: int = 810) -> np.ndarray:
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 90, np.uint8)
    for _ in range(40):
        x, y = int(rng.integers(0, w - 60)), int(rng.integers(0, h - 60))
        cv2.rectangle(image, (x, y), (x + int(rng.integers(10, 60)), y + int(rng.integers(10, 60))),
                      tuple(int(c) for c in rng.integers(0, 255, 3)), -1)
    return image


def serial(model_path: Path, video: Path, out: Path, threads: int) -> None:
    from admd_edge import load_model
    from admd_edge.draw import annotate
    from admd_edge.sources import iter_frames, video_fps

    model = load_model(model_path, threads=threads)
    writer = None
    with open(out / "serial.jsonl", "w") as jsonl:
        for frame in iter_frames(video):
            detections = model.predict(frame.image)
            jsonl.write(json.dumps({"frame": frame.index, **detections.to_dict()}) + "\n")
            if writer is None:
                h, w = frame.image.shape[:2]
                writer = cv2.VideoWriter(str(out / "serial.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), video_fps(video),
                                         (w, h))
            writer.write(annotate(frame.image, detections))
    if writer is not None:
        writer.release()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", type=Path)
    ap.add_argument("--image", type=Path)
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    from admd_edge.cli import main as edge

    image = cv2.imread(str(args.image)) if args.image else synthetic_scene()
    tmp = Path(tempfile.mkdtemp(prefix="predict-video-"))
    video = tmp / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 25, (image.shape[1], image.shape[0]))
    for k in range(args.frames):
        writer.write(np.roll(image, 5 * k, axis=1))
    writer.release()
    rates: dict[str, list[float]] = {"one thread": [], "admd-edge predict": []}
    for _ in range(args.rounds):
        t = time.perf_counter()
        serial(args.model, video, tmp, args.threads)
        rates["one thread"].append(args.frames / (time.perf_counter() - t))
        t = time.perf_counter()
        argv = ["predict", str(args.model), str(video), "--out", str(tmp / "out"), "--exist-ok"]
        assert edge([*argv, "--threads", str(args.threads)]) == 0
        rates["admd-edge predict"].append(args.frames / (time.perf_counter() - t))
    base = statistics.median(rates["one thread"])
    print(f"{args.frames} frames of {image.shape[1]}x{image.shape[0]}, {args.threads} ONNX Runtime threads, "
          f"{args.rounds} rounds, interleaved")
    print("| loop | frames/s (median) | range | speed-up |\n|---|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {statistics.median(r):.1f} | {min(r):.1f}-{max(r):.1f} | {statistics.median(r) / base:.2f}x |")


if __name__ == "__main__":
    main()
