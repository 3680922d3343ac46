"""Damaged image files found before training, by their bytes — without decoding and without TensorFlow.

A truncated JPEG (an interrupted download or unzip), an empty file or a non-image under an image
name makes TensorFlow's decoder fail in the middle of an epoch with a message that names no file.
Two BMP kinds are worse: TensorFlow's BMP decoder fails on 1-, 4- and 16-bit files and reads an 8-bit
file's palette indices as grey levels — a folder of palette BMPs would train, silently, on noise. This
check reads each selected file's first and last bytes (and a BMP's colour table; about 0.1 ms per file),
so such files are skipped and counted *before* the run starts, with the first few named. When more than
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
               b"BM": "bmp", b"RIFF": "webp"}
#: Start of the advice in a problem that is a format TensorFlow cannot decode, not damage.
UNSUPPORTED = "unsupported"
#: BMP bits per pixel TensorFlow's decoder reads (1, 3 or 4 channels of 8 bits).
BMP_BITS = (8, 24, 32)
#: The one 8-bit BMP colour table TensorFlow's decoder (which ignores it) reads right: entry i = grey level i.
GREY_RAMP = bytes(b for i in range(256) for b in (i, i, i, 0))


def _bmp_problem(f, head: bytes) -> str | None:
    """Why TensorFlow would not decode this BMP right (``f`` open, ``head`` its first 64 bytes), or None."""
    if len(head) < 54:
        return "truncated BMP (no header)"
    header, bits, compression = (int.from_bytes(head[14:18], "little"), int.from_bytes(head[28:30], "little"),
                                 int.from_bytes(head[30:34], "little"))
    if header < 40:  # OS/2 BITMAPCOREHEADER: its fields sit elsewhere
        return f"{UNSUPPORTED}: OS/2 BMP; convert it to PNG"
    if bits not in BMP_BITS or compression not in (0, 3):  # 0 = BI_RGB, 3 = BI_BITFIELDS
        return (f"{UNSUPPORTED}: {bits}-bit BMP{' (compressed)' if compression not in (0, 3) else ''}, TensorFlow "
                f"decodes uncompressed 8-, 24- and 32-bit BMP; convert it to PNG")
    if bits == 8:  # TensorFlow ignores the colour table: right only when it is the grey ramp
        used = int.from_bytes(head[46:50], "little") or 256
        f.seek(14 + header)
        if f.read(4 * min(used, 257)) != GREY_RAMP[:4 * used]:  # a count over 256 (a broken header) never matches
            return (f"{UNSUPPORTED}: a palette BMP (TensorFlow's decoder reads its colour indices as grey "
                    f"levels); convert it to PNG")
    return None


def problem(path: str) -> str | None:
    """Why ``path`` cannot be a whole image (missing, empty, not an image, truncated), or None."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as f:
            head = f.read(64)
            kind = next((k for sig, k in _SIGNATURES.items() if head.startswith(sig)), None)
            if kind == "webp" and head[8:12] != b"WEBP":
                kind = None
            if kind == "bmp":
                return _bmp_problem(f, head)
            f.seek(max(0, size - JPEG_TAIL))
            tail = f.read()
    except OSError as e:
        return e.strerror or "unreadable"
    if kind is None:
        return "not a JPEG, PNG, GIF, BMP or WebP image"
    if kind == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if kind == "png" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk)"
    if kind == "webp" and size < 8 + int.from_bytes(head[4:8], "little"):
        return "truncated WebP (shorter than its RIFF size)"
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
        unsupported = sum(why.startswith(UNSUPPORTED) for _, why in damaged)
        advice = (f"convert the {unsupported} in a format TensorFlow cannot decode to PNG" if unsupported else
                  f"more than {MAX_DAMAGED_FRACTION:.0%} damaged means the copy is broken — download or unpack it again")
        raise DataError(f"{what}: {len(damaged)} of {len(paths)} selected images cannot be read ({shown}"
                        f"{'; ...' if len(damaged) > 3 else ''}); {advice}")
    return [i for i, why in enumerate(problems) if why is None], damaged


def describe(damaged: list[tuple[str, str]]) -> str:
    """The selection-log line for skipped files, naming the first."""
    first = f"{damaged[0][0]}: {damaged[0][1]}"
    return f"skipped {len(damaged)} damaged or unsupported image file(s) (first: {first})"
