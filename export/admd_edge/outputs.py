"""Where ``admd-edge predict`` writes, so that nothing the user owns is overwritten or left half-made.

Rules:

- The default output is a new run folder, numbered as Ultralytics numbers its runs: ``runs/admd-edge/predict``,
  then ``predict2``, ``predict3``, ... ``--exist-ok`` writes into ``predict`` again instead.
- An explicit ``--out`` that already holds files is refused unless ``--exist-ok`` is given.
- An output folder that is, or is inside, the source folder is refused (symlinks resolved), even with
  ``--exist-ok``; so is an output file that would land on the source file itself.
- The folder is made at the first write and removed again (with any parents the run made) if the run ends
  with nothing written. Each image and JSON is written to a temporary name and renamed, so an interrupted run
  leaves no half-written file, and a symlink at the target is replaced, never written through.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import IO

DEFAULT_OUT = Path("runs/admd-edge/predict")


def next_run_folder(path: Path) -> Path:
    """``path`` if it does not exist, else the first free ``path2``, ``path3``, ... (Ultralytics' numbering)."""
    if not path.exists():
        return path
    n = 2
    while (candidate := path.with_name(f"{path.name}{n}")).exists():
        n += 1
    return candidate


def choose_output_folder(out: str | Path | None, *, exist_ok: bool, source: Path,
                         output_names: Iterable[str] = ()) -> Path:
    """The folder a run writes to, from ``--out`` (None: the default) and ``--exist-ok``.

    The source is checked first (:func:`refuse_overwriting_source`), so that its error is the one given: its
    fix is another folder, never ``--exist-ok``.

    Raises:
        ValueError: If the folder would overwrite the source, if ``out`` is a file, or a folder that already
            holds files and ``exist_ok`` is False.
    """
    if out is None:
        path = DEFAULT_OUT if exist_ok else next_run_folder(DEFAULT_OUT)
    else:
        path = Path(out)
    refuse_overwriting_source(path, source, output_names)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {path} is a file, not a folder; choose a folder (it is made if missing)")
    if not exist_ok and out is not None and path.is_dir() and any(path.iterdir()):
        raise ValueError(
            f"--out {path} already holds files; choose a new or empty folder, or pass --exist-ok to write into it "
            f"(files of the same name are replaced)"
        )
    return path


def refuse_overwriting_source(out: Path, source: Path, output_names: Iterable[str] = ()) -> None:
    """Refuse an output folder that is or is inside a source folder, or outputs that land on a source file.

    Args:
        out: The output folder (need not exist yet).
        source: The image, video or folder predicted on.
        output_names: For a file source, the names the run writes into ``out``.

    Raises:
        ValueError: Naming both paths and the fix.
    """
    out_real, source_real = out.resolve(), source.resolve()
    if source.is_dir():
        if out_real == source_real or source_real in out_real.parents:
            raise ValueError(
                f"--out {out} is inside the source folder {source}: the annotated copies would replace or mix with "
                f"your images; choose an --out outside {source}"
            )
        return
    for name in output_names:
        if (out_real / name).resolve() == source_real:
            raise ValueError(
                f"--out {out} would overwrite the source {source} with its annotated copy; choose another --out"
            )


class OutputFolder:
    """A run's output folder: made at the first write, removed by :meth:`discard_if_empty` if nothing was.

    Args:
        path: The folder; it and any missing parents are made when the first file is written.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.written = 0
        self._made: list[Path] = []  # folders this run created, outermost first

    def _target(self, name: str) -> Path:
        if not self._made and not self.path.is_dir():
            missing = [p for p in (self.path, *self.path.parents) if not p.exists()]
            self.path.mkdir(parents=True, exist_ok=True)
            self._made = missing[::-1]
        target = self.path / name
        if target.is_symlink():  # write a file of our own, never through a link to someone else's
            target.unlink()
        return target

    def write_bytes(self, name: str, data: bytes) -> Path:
        """Write ``name`` whole: to a temporary name first, then renamed over any old file."""
        target = self._target(name)
        partial = target.with_name(f".{name}.partial")
        try:
            partial.write_bytes(data)
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        self.written += 1
        return target

    def write_text(self, name: str, text: str) -> Path:
        return self.write_bytes(name, text.encode())

    def open_text(self, name: str) -> IO[str]:
        """Open ``name`` for writing as a stream (JSONL); open it only when there is a first line to write."""
        handle = open(self._target(name), "w")
        self.written += 1
        return handle

    def path_for(self, name: str) -> Path:
        """A path for a writer that opens the file itself (``cv2.VideoWriter``); counted as written."""
        target = self._target(name)
        self.written += 1
        return target

    def discard_if_empty(self) -> bool:
        """Remove the folders this run made if it wrote nothing; True if it removed them."""
        if self.written or not self._made:
            return False
        for folder in reversed(self._made):
            try:
                folder.rmdir()  # only empty folders: never anything someone else put there
            except OSError:
                break
        return True
