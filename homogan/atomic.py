"""Write files so that a crash or kill never leaves a half-written one: temp name, then rename."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from homogan.errors import WRITE_ERRNOS, WriteError


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; on success rename it over ``path``, else delete it.

    The temporary name keeps every suffix (``epoch_0001.tmp-123.png``, ``classifier.tmp-123.weights.h5``)
    so writers that infer the format from the name (matplotlib, imageio, Keras' ``.weights.h5``) still work.
    A write the machine refuses (:data:`homogan.errors.WRITE_ERRNOS`: a full disk, an I/O error, a
    read-only file system) is raised as :class:`homogan.errors.WriteError` naming ``path``.
    """
    path = Path(path)
    stem, dot, suffixes = path.name.partition(".")
    tmp = path.with_name(f"{stem}.tmp-{os.getpid()}{dot}{suffixes}")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as e:
        if e.errno in WRITE_ERRNOS:
            raise WriteError(path, e.strerror or str(e)) from e
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
