"""Read-ahead, write-behind and progress for ``admd-edge predict`` (threads, order, errors, interruption)."""

from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from admd_edge.stream import OrderedWriter, Progress, prefetch


def test_prefetch_yields_everything_in_order_from_another_thread() -> None:
    threads = []

    def items():
        for k in range(50):
            threads.append(threading.current_thread().name)
            yield k

    assert list(prefetch(items(), depth=3)) == list(range(50))
    assert set(threads) == {"admd-edge-reader"}


def test_prefetch_re_raises_the_producers_error_where_it_was_reached() -> None:
    def items():
        yield 1
        yield 2
        raise ValueError("corrupt frame 3")

    seen = []
    with pytest.raises(ValueError, match="corrupt frame 3"):
        for item in prefetch(items()):
            seen.append(item)
    assert seen == [1, 2]


def test_stopping_early_stops_the_reader_and_runs_the_sources_cleanup() -> None:
    cleaned = threading.Event()

    def items():
        try:
            k = 0
            while True:  # endless, like a camera
                yield k
                k += 1
        finally:
            cleaned.set()

    for item in prefetch(items(), depth=2):
        if item == 5:
            break
    assert cleaned.wait(2.0)
    assert not any(t.name == "admd-edge-reader" for t in threading.enumerate())


def test_the_writer_runs_jobs_in_submission_order_and_waits_for_them() -> None:
    done = []

    def job(k: int) -> None:
        time.sleep(0.002 * (k % 3))  # uneven job times must not reorder them
        done.append(k)

    with OrderedWriter(depth=2) as writer:
        for k in range(20):
            writer.submit(job, k)
    assert done == list(range(20))


def test_a_failed_write_is_raised_to_the_submitter() -> None:
    def job(k: int) -> None:
        if k == 3:
            raise OSError("disk full")

    writer = OrderedWriter()
    with pytest.raises(OSError, match="disk full"):
        for k in range(10):
            writer.submit(job, k)
        writer.close()


def test_progress_reports_count_rate_and_eta_on_its_interval() -> None:
    now = [0.0]
    out = io.StringIO()
    progress = Progress("clip.mp4", 100, every=2.0, stream=out, clock=lambda: now[0])
    for _ in range(10):  # 10 frames in 1 s: no line yet
        now[0] += 0.1
        progress.update()
    assert out.getvalue() == ""
    for _ in range(15):  # 25 frames in 2.5 s
        now[0] += 0.1
        progress.update()
    assert out.getvalue().splitlines() == ["clip.mp4: 20/100 frames (20%), 10.0 frames/s, ETA 0m08s"]
    Progress("cam", None, stream=out, clock=lambda: now[0]).finish()
    assert out.getvalue().splitlines()[-1] == "cam: 0 frames, 0.0 frames/s, 0m00s in all"


def _video(path: Path, image: np.ndarray, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (120, 160))
    for k in range(frames):
        writer.write(cv2.resize(np.roll(image, 30 * k, axis=1), (120, 160)))
    writer.release()
    return path


def test_predict_on_a_video_reports_progress_and_keeps_frame_order(
    obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from admd_edge.cli import main

    video = _video(tmp_path / "clip.avi", bus_image, 12)
    assert main(["predict", str(obb_onnx), str(video), "--out", str(tmp_path / "out")]) == 0
    frames = [json.loads(line)["frame"] for line in (tmp_path / "out" / "clip.jsonl").read_text().splitlines()]
    assert frames == list(range(12))
    err = capsys.readouterr().err
    assert "clip.avi: 12/12 frames (100%)" in err and "in all" in err


def test_an_interrupted_video_keeps_what_was_predicted_and_exits_130(
    obb_onnx: Path, bus_image: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch
) -> None:
    from admd_edge.cli import main
    from admd_edge.model import EdgeModel

    video = _video(tmp_path / "clip.avi", bus_image, 10)
    real = EdgeModel.predict
    calls = []

    def predict(self, images):  # Ctrl-C arrives while the 7th frame is being predicted
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return real(self, images)

    monkeypatch.setattr(EdgeModel, "predict", predict)
    out = tmp_path / "out"
    # --slice off: the 64 px test model would slice these frames, which does not go through EdgeModel.predict
    assert main(["predict", str(obb_onnx), str(video), "--out", str(out), "--slice", "off"]) == 130
    lines = (out / "clip.jsonl").read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == list(range(6))
    capture = cv2.VideoCapture(str(out / "clip.mp4"))  # closed properly: it opens and has the 6 frames
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    capture.release()
    assert "interrupted after 6 frames" in capsys.readouterr().err
