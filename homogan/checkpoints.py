"""Checkpoints of a run: ``checkpoints/epoch_XXXX.{index,data-*}`` plus an atomic ``latest`` pointer.

``tf.train.Checkpoint.write`` stores tensors by object path — no pickle — and the pointer file is
renamed into place only after a checkpoint is completely written, so a kill at any moment leaves
the previous checkpoint as the one a resume will load. Retention keeps the last ``keep`` plus
every checkpoint whose epoch is a multiple of ``keep_every`` (0 = none).

An interrupted run (Ctrl-C, SIGTERM) saves ``interrupted_eXXXX_sYYYYYY``: the state after step Y of
epoch X+1, with the epoch's metric sums in the pointer, so a resume continues at that step with the
same batches and the same epoch means as an uninterrupted run. The next epoch checkpoint replaces it.
"""

from __future__ import annotations

import json
import re
import shutil
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
    """``latest.json``: {"checkpoint": name, "epoch": n[, "step": k, "metrics": {...}]} of the last
    complete checkpoint, or None."""
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


def latest_step(directory: Path) -> tuple[int, dict]:
    """(steps done of the epoch after ``latest_epoch``, that epoch's metric states) — (0, {}) unless
    the last checkpoint was written by an interrupted run."""
    pointer = _pointer(directory) or {}
    return int(pointer.get("step", 0)), dict(pointer.get("metrics", {}))


def saved_parts(path: Path | str) -> set[str]:
    """The top-level names (``tf.train.Checkpoint`` keyword arguments) a written checkpoint holds, so
    that readers can tell a checkpoint written before a part existed and restore what it has."""
    import tensorflow as tf

    return {key.split("/", 1)[0] for key in tf.train.load_checkpoint(str(path)).get_variable_to_shape_map()}


def save_interrupted(checkpoint, directory: Path, epoch: int, step: int, metrics: dict) -> Path:
    """Write the mid-epoch state after ``step`` steps of epoch ``epoch + 1`` and point ``latest`` at it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"interrupted_e{epoch:04d}_s{step:06d}"
    checkpoint.write(str(path))
    write_text(directory / POINTER, json.dumps({"checkpoint": path.name, "epoch": epoch, "step": step,
                                                "metrics": metrics}) + "\n")
    _remove_interrupted(directory, keep=path.name)
    return path


def _remove_interrupted(directory: Path, keep: str | None = None) -> None:
    for f in Path(directory).glob("interrupted_*"):
        if keep is None or not f.name.startswith(keep + "."):
            f.unlink()


def save(checkpoint, directory: Path, epoch: int, keep: int, keep_every: int = 0) -> Path:
    """Write the checkpoint for ``epoch``, point ``latest`` at it, then prune old ones."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = prefix(directory, epoch)
    checkpoint.write(str(path))
    write_text(directory / POINTER, json.dumps({"checkpoint": path.name, "epoch": epoch}) + "\n")
    _remove_interrupted(directory)  # superseded: the pointer no longer names it
    epochs = saved_epochs(directory)
    kept = set(epochs[-keep:]) | {e for e in epochs if keep_every and e % keep_every == 0}
    for old in epochs:
        if old not in kept:
            for f in directory.glob(f"{prefix(directory, old).name}.*"):
                f.unlink()
    return path


def remove_orphans(directory: Path) -> list[Path]:
    """Delete what a killed run left in ``directory`` that no pointer names: checkpoints of epochs after the
    latest complete one (written when the kill came), a superseded interrupted one, TF's temporary
    folders. The pointer's own checkpoint is never touched. Returns what was removed."""
    directory = Path(directory)
    pointer = _pointer(directory)
    if pointer is None:
        return []
    named, epoch = pointer["checkpoint"], int(pointer["epoch"])
    removed = []
    for f in directory.iterdir():
        stem = f.name.split(".")[0]
        m = re.fullmatch(r"epoch_(\d+)", stem)
        orphan = ((m is not None and int(m.group(1)) > epoch) or (stem.startswith("interrupted_") and stem != named)
                  or "_temp" in f.name)
        if orphan and stem != named:
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()
            removed.append(f)
    return removed
