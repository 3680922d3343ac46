"""Read a local CelebA copy: the attribute table and partition, in the official or the Kaggle layout.

Official layout (Google Drive / MMLab; also written by ``homogan.data.synthetic``)::

    ROOT/img_align_celeba/000001.jpg ...     (or ROOT/Img/img_align_celeba/)
    ROOT/list_attr_celeba.txt                (or ROOT/Anno/list_attr_celeba.txt)
    ROOT/list_eval_partition.txt             (or ROOT/Eval/list_eval_partition.txt)

Kaggle layout (``jessicali9530/celeba-dataset``)::

    ROOT/img_align_celeba/img_align_celeba/000001.jpg ...
    ROOT/list_attr_celeba.csv                (header ``image_id,5_o_Clock_Shadow,...``)
    ROOT/list_eval_partition.csv             (header ``image_id,partition``)

Only the small text tables are read here; images are decoded later by the tf.data pipeline, after
selection, so a filter such as ``Male == 1`` never touches the pixels of the images it drops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homogan.celeba_attributes import CELEBA_ATTRIBUTES
from homogan.errors import DataError

PARTITIONS = {"train": 0, "valid": 1, "test": 2}


@dataclass(frozen=True)
class AttributeTable:
    """CelebA's labels: one row per image, attributes as +1/-1 in ``CELEBA_ATTRIBUTES`` order."""

    image_dir: Path
    filenames: np.ndarray  # (N,) str, e.g. "000001.jpg"
    values: np.ndarray  # (N, 40) int8 in {-1, +1}
    partition: np.ndarray  # (N,) int8: 0 train, 1 valid, 2 test

    def __len__(self) -> int:
        return len(self.filenames)

    def column(self, name: str) -> np.ndarray:
        return self.values[:, CELEBA_ATTRIBUTES.index(name)]

    def paths(self, indices: np.ndarray) -> list[str]:
        return [str(self.image_dir / f) for f in self.filenames[indices]]


@dataclass(frozen=True)
class CelebaLayout:
    kind: str  # "official" or "kaggle"
    image_dir: Path
    attr_file: Path
    partition_file: Path


def find_layout(root: str | Path) -> CelebaLayout:
    """Locate CelebA's files under ``root`` in either layout, or say exactly what is missing."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"data.root: {str(root)!r} is not a folder; point it at a CelebA copy "
                        f"(official or Kaggle layout, see README)")
    kaggle = CelebaLayout("kaggle", root / "img_align_celeba" / "img_align_celeba",
                          root / "list_attr_celeba.csv", root / "list_eval_partition.csv")
    if kaggle.attr_file.is_file():
        layout = kaggle
    else:
        def first(*candidates: Path) -> Path:
            return next((c for c in candidates if c.exists()), candidates[0])
        layout = CelebaLayout("official",
                              first(root / "img_align_celeba", root / "Img" / "img_align_celeba"),
                              first(root / "list_attr_celeba.txt", root / "Anno" / "list_attr_celeba.txt"),
                              first(root / "list_eval_partition.txt", root / "Eval" / "list_eval_partition.txt"))
    if not layout.attr_file.is_file():
        raise DataError(f"data.root: {str(root)!r} holds no CelebA attribute file; expected "
                        f"{root / 'list_attr_celeba.txt'} (official) or {root / 'list_attr_celeba.csv'} (Kaggle)")
    if not layout.image_dir.is_dir():
        raise DataError(f"data.root: {str(root)!r} has {layout.attr_file.name} but no image folder "
                        f"{layout.image_dir} ({layout.kind} layout)")
    return layout


def read_celeba(root: str | Path, need_partition: bool = True) -> AttributeTable:
    """Parse and check CelebA's attribute table (and partition file) under ``root``."""
    layout = find_layout(root)
    if layout.kind == "kaggle":
        names, filenames, values = _read_attr_csv(layout.attr_file)
    else:
        names, filenames, values = _read_attr_txt(layout.attr_file)
    # Columns by name, so a file with the 40 attributes in another order still reads correctly.
    missing = [n for n in CELEBA_ATTRIBUTES if n not in names]
    if missing:
        raise DataError(f"{layout.attr_file}: header lacks CelebA attributes {', '.join(missing)}")
    values = values[:, [names.index(n) for n in CELEBA_ATTRIBUTES]]

    present = set(os.listdir(layout.image_dir))
    absent = [f for f in filenames if f not in present]
    if absent:
        raise DataError(f"{layout.attr_file}: {len(absent)} rows name images that do not exist in "
                        f"{layout.image_dir}, first {absent[0]!r}")
    if layout.partition_file.is_file():
        partition = _read_partition(layout.partition_file, filenames)
    elif need_partition:
        raise DataError(f"data.root: no partition file {layout.partition_file}; add it, or set data.split to \"all\"")
    else:
        partition = np.zeros(len(filenames), np.int8)
    return AttributeTable(layout.image_dir, np.asarray(filenames), values, partition)


def _values(tokens: list[str], where: str) -> list[int]:
    try:
        row = [int(t) for t in tokens]
    except ValueError:
        row = []
    if not row or any(v not in (1, -1) for v in row):
        bad = next((t for t in tokens if t not in ("1", "-1")), tokens[0] if tokens else "")
        raise DataError(f"{where}: attribute value {bad!r} is not 1 or -1")
    return row


def _read_attr_txt(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if len(lines) < 2:
        raise DataError(f"{path}: expected a count line and a header line, found {len(lines)} lines")
    try:
        count = int(lines[0].strip())
    except ValueError:
        raise DataError(f"{path}:1: first line must be the image count, got {lines[0][:40]!r}")
    names = lines[1].split()
    rows = [line for line in lines[2:] if line.strip()]
    if len(rows) != count:
        raise DataError(f"{path}: the count line says {count} images but there are {len(rows)} rows")
    filenames, values = [], []
    for i, line in enumerate(rows, start=3):
        tokens = line.split()
        if len(tokens) != len(names) + 1:
            raise DataError(f"{path}:{i}: expected {len(names) + 1} columns (file name and {len(names)} "
                            f"attributes), found {len(tokens)}")
        filenames.append(tokens[0])
        values.append(_values(tokens[1:], f"{path}:{i}"))
    return names, filenames, np.asarray(values, np.int8).reshape(-1, len(names))


def _read_attr_csv(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    if not lines:
        raise DataError(f"{path}: empty file")
    header = [h.strip() for h in lines[0].split(",")]
    if header[0] != "image_id":
        raise DataError(f"{path}:1: expected a header starting with 'image_id', got {lines[0][:40]!r}")
    names = header[1:]
    filenames, values = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        tokens = [t.strip() for t in line.split(",")]
        if len(tokens) != len(header):
            raise DataError(f"{path}:{i}: expected {len(header)} columns, found {len(tokens)}")
        filenames.append(tokens[0])
        values.append(_values(tokens[1:], f"{path}:{i}"))
    return names, filenames, np.asarray(values, np.int8).reshape(-1, len(names))


def _read_partition(path: Path, filenames: list[str]) -> np.ndarray:
    table: dict[str, int] = {}
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    csv = path.suffix == ".csv"
    for i, line in enumerate(lines, start=1):
        if not line.strip() or (csv and i == 1 and line.startswith("image_id")):
            continue
        tokens = [t.strip() for t in (line.split(",") if csv else line.split())]
        if len(tokens) != 2 or tokens[1] not in ("0", "1", "2"):
            raise DataError(f"{path}:{i}: expected '<image> <0|1|2>', got {line[:60]!r}")
        table[tokens[0]] = int(tokens[1])
    try:
        return np.asarray([table[f] for f in filenames], np.int8)
    except KeyError as e:
        raise DataError(f"{path}: no partition for image {e.args[0]!r}")
