"""Damaged image files found before training, by their bytes — without decoding and without TensorFlow.

A truncated JPEG (an interrupted download or unzip), an empty file or a non-image under an image
name makes TensorFlow's decoder fail in the middle of an epoch with a message that names no file.
This check reads each selected file's first and last bytes (about 0.1 ms per file), so such files
are skipped and counted *before* the run starts, with the first few named. When more than
``MAX_DAMAGED_FRACTION`` of a selection is damaged the copy itself is broken, and it is a clear
stop instead. Damage *inside* a file whose bytes look whole is rarer; the decoder drops such an
image with a warning (see :func:`homogan.data.pipeline.decoded_images`).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

from homogan.errors import DataError

#: Above this fraction of damaged files in a selection, training stops instead of skipping them.
MAX_DAMAGED_FRACTION = 0.01
#: Bytes at the end of a JPEG allowed after its end-of-image marker (some writers pad).
JPEG_TAIL = 64

_SIGNATURES = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF87a": "gif", b"GIF89a": "gif",
               b"BM": "bmp"}


def problem(path: str) -> str | None:
    """Why ``path`` cannot be a whole image (missing, empty, not an image, truncated), or None."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(max(0, size - JPEG_TAIL))
            tail = f.read()
    except OSError as e:
        return e.strerror or "unreadable"
    kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
    if kind is None:
        return "not a JPEG, PNG, GIF or BMP image"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    return None


def check(paths: list[str], what: str, workers: int = 8) -> tuple[list[int], list[tuple[str, str]]]:
    """(indices of the whole files, [(path, problem)] of the damaged ones) of ``paths``.

    Raises DataError naming the first damaged files when more than ``MAX_DAMAGED_FRACTION`` of them
    (or all) are damaged. ``what`` names the setting the files came from (e.g. ``data.root``).
    """
    with ThreadPoolExecutor(workers) as pool:  # stat + two small reads: I/O, not CPU
        problems = list(pool.map(problem, paths, chunksize=256))
    damaged = sorted((p, why) for p, why in zip(paths, problems) if why is not None)
    if damaged and (len(damaged) == len(paths) or len(damaged) > MAX_DAMAGED_FRACTION * len(paths)):
        shown = "; ".join(f"{p}: {why}" for p, why in damaged[:3])
        raise DataError(f"{what}: {len(damaged)} of {len(paths)} selected images are damaged ({shown}"
                        f"{'; ...' if len(damaged) > 3 else ''}); more than {MAX_DAMAGED_FRACTION:.0%} damaged means "
                        f"the copy is broken — download or unpack it again")
    return [i for i, why in enumerate(problems) if why is None], damaged


def describe(damaged: list[tuple[str, str]]) -> str:
    """The selection-log line for skipped files, naming the first."""
    first = f"{damaged[0][0]}: {damaged[0][1]}"
    return f"skipped {len(damaged)} damaged image file(s) (first: {first})"
