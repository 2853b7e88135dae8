"""Keep the model busy over a stream of frames: read ahead and write behind in threads, and report progress.

Decoding a frame (``cv2.VideoCapture.read``, ``cv2.imread``) and encoding a result (``cv2.imwrite``,
``cv2.VideoWriter.write``) release the GIL, as does inference, so a reader thread and a writer thread overlap
them with the model on multi-core devices. That matters most with TensorRT, where the CPU is otherwise
idle while the GPU runs. Order is kept: one reader, one writer, FIFO queues.
"""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

_DONE = object()


def prefetch(items: Iterable[T], depth: int = 4) -> Iterator[T]:
    """Iterate ``items`` in a background thread, at most ``depth`` items ahead, in order.

    An exception raised by ``items`` is re-raised here, at the point it was reached. Closing the returned
    generator (``break``, an exception in the consumer) stops the thread.
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1; got {depth}")
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_DONE, None))
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            put((_DONE, err))
        finally:
            close = getattr(items, "close", None)  # a generator's own cleanup (e.g. releasing a video)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="admd-edge-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, err = slots.get()
            if item is _DONE:
                if err is not None:
                    raise err
                return
            yield item
    finally:
        stop.set()  # a producer waiting on a full queue gives up within 0.1 s
        thread.join()


class OrderedWriter:
    """Run write jobs in one background thread, in submission order, at most ``depth`` pending.

    A job's exception is re-raised by the next :meth:`submit` or by :meth:`close` (which waits for every
    pending job). Use as a context manager.
    """

    def __init__(self, depth: int = 8) -> None:
        self._jobs: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="admd-edge-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is _DONE:
                return
            if self._error is None:
                fn, args = job
                try:
                    fn(*args)
                except BaseException as err:  # noqa: BLE001 - re-raised in the submitting thread
                    self._error = err

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._jobs.put((fn, args))

    def close(self) -> None:
        """Wait for every submitted job, then re-raise the first job error, if any."""
        if self._thread.is_alive():
            self._jobs.put(_DONE)
            self._thread.join()
        self._raise()

    def __enter__(self) -> OrderedWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m{s:02d}s" if h else f"{m}m{s:02d}s"


class Progress:
    """A one-line progress report every ``every`` seconds: done/total, rate, ETA (total may be unknown).

    Args:
        label: What is being processed (e.g. the video's file name).
        total: Expected items; 0 or None when unknown.
        unit: Item name in the report.
        every: Seconds between reports.
        stream: Where the lines go (stderr by default, so stdout stays the result summary).
        clock: Time source (tests pass a fake one).
    """

    def __init__(self, label: str, total: int | None = None, *, unit: str = "frames", every: float = 2.0,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.label, self.total, self.unit, self.every = label, total or None, unit, every
        self.stream = stream if stream is not None else sys.stderr
        self._clock = clock
        self.start = self._last = clock()
        self.done = 0

    def line(self) -> str:
        elapsed = max(self._clock() - self.start, 1e-9)
        rate = self.done / elapsed
        text = f"{self.label}: {self.done}"
        if self.total:
            text += f"/{self.total} {self.unit} ({100 * self.done / self.total:.0f}%)"
        else:
            text += f" {self.unit}"
        text += f", {rate:.1f} {self.unit}/s"
        if self.total and rate > 0 and self.done < self.total:
            text += f", ETA {_duration((self.total - self.done) / rate)}"
        return text

    def update(self, n: int = 1) -> None:
        self.done += n
        now = self._clock()
        if now - self._last >= self.every:
            self._last = now
            print(self.line(), file=self.stream, flush=True)

    def finish(self) -> None:
        print(self.line() + f", {_duration(self._clock() - self.start)} in all", file=self.stream, flush=True)
