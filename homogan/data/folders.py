"""Any folder of images (e.g. a Simpsons-faces crop folder), optionally one subfolder per class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from homogan.errors import DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


def read_folder(root: str | Path, class_conditional: bool) -> tuple[list[str], np.ndarray, list[str], int]:
    """Image paths (sorted), one-hot class labels (or (N, 0)), class names, and how many files were skipped.

    With ``class_conditional`` the classes are the immediate subfolders of ``root`` (sorted by name)
    and every image below a subfolder belongs to it. Files that are not images by their suffix are
    skipped and counted.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root: {str(root)!r} is not a folder (source \"folder\" needs a folder of images)")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    skipped = len(files) - len(images)
    if not images:
        raise DataError(f"data.root: {str(root)!r} holds no images ({len(files)} files; allowed suffixes: "
                        f"{', '.join(IMAGE_SUFFIXES)})")
    if not class_conditional:
        return [str(p) for p in images], np.zeros((len(images), 0), np.float32), [], skipped
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"data.class_conditional: {str(root)!r} has {len(classes)} class subfolders; "
                        f"need at least 2 (one subfolder of images per class)")
    in_class = [p for p in images if p.relative_to(root).parts[0] in classes]
    index = [classes.index(p.relative_to(root).parts[0]) for p in in_class]
    return [str(p) for p in in_class], np.eye(len(classes), dtype=np.float32)[index], classes, skipped + len(images) - len(in_class)
