"""Checkpoints of a run: ``checkpoints/epoch_XXXX.{index,data-*}`` plus an atomic ``latest`` pointer.

``tf.train.Checkpoint.write`` stores tensors by object path — no pickle — and the pointer file is
renamed into place only after a checkpoint is completely written, so a kill at any moment leaves
the previous checkpoint as the one a resume will load. Retention keeps the last ``keep`` plus
every checkpoint whose epoch is a multiple of ``keep_every`` (0 = none).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from homogan.atomic import write_text

POINTER = "latest.json"


def prefix(directory: Path, epoch: int) -> Path:
    return Path(directory) / f"epoch_{epoch:04d}"


def saved_epochs(directory: Path) -> list[int]:
    found = {int(m.group(1)) for p in Path(directory).glob("epoch_*.index")
             if (m := re.fullmatch(r"epoch_(\d+)\.index", p.name))}
    return sorted(found)


def _pointer(directory: Path) -> dict | None:
    """``latest.json``: {"checkpoint": name, "epoch": n} of the last complete checkpoint, or None."""
    pointer = Path(directory) / POINTER
    if not pointer.is_file():
        return None
    return json.loads(pointer.read_text(encoding="utf-8"))


def latest(directory: Path) -> Path | None:
    """The prefix of the last completely written checkpoint, or None."""
    pointer = _pointer(directory)
    return None if pointer is None else Path(directory) / pointer["checkpoint"]


def latest_epoch(directory: Path) -> int | None:
    """The epoch of the last completely written checkpoint, or None."""
    pointer = _pointer(directory)
    return None if pointer is None else int(pointer["epoch"])


def save(checkpoint, directory: Path, epoch: int, keep: int, keep_every: int = 0) -> Path:
    """Write the checkpoint for ``epoch``, point ``latest`` at it, then prune old ones."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = prefix(directory, epoch)
    checkpoint.write(str(path))
    write_text(directory / POINTER, json.dumps({"checkpoint": path.name, "epoch": epoch}) + "\n")
    epochs = saved_epochs(directory)
    kept = set(epochs[-keep:]) | {e for e in epochs if keep_every and e % keep_every == 0}
    for old in epochs:
        if old not in kept:
            for f in directory.glob(f"{prefix(directory, old).name}.*"):
                f.unlink()
    return path
