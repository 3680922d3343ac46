"""Find and select the training images named by ``config.data`` — without TensorFlow.

Everything here runs before the run folder is created and before TensorFlow is imported, so a
wrong path, an empty selection or a malformed attribute file is reported in a fraction of a second
and leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from homogan.config import Config
from homogan.data import celeba, folders, integrity, selection, synthetic, tfds_source
from homogan.data.records import Source, TrainingData
from homogan.errors import DataError

__all__ = ["Source", "TrainingData", "open_source", "unseen_source", "training_data", "SYNTHETIC_SEED"]

#: The synthetic dataset is one fixed dataset (like CelebA): ``experiment.seed`` varies training only.
SYNTHETIC_SEED = 0


def open_source(config: Config) -> Source:
    """Find and select the data named by ``config.data`` (no image decoded). Raises DataError."""
    d = config.data
    if d.source == "tfds":
        return tfds_source.open_tfds(config)
    paths, labels, names, log = _selected(config, d.limit)
    paths, labels = _whole_files(paths, labels, log)
    return Source(len(paths), names, log, paths, labels)


def unseen_source(config: Config, source: Source, count: int) -> Source | None:
    """Up to ``count`` images of the selection *without* ``data.limit`` that are not among ``source``'s (the
    training images), in a fixed order of ``experiment.seed``: images D never trains on, from the
    distribution its training images were drawn from — the validation set of ADA's r_v heuristic (Karras
    et al. 2020), which measures memorisation directly. None when nothing is left out (no limit, or a
    limit at least the selection) and for tfds (no file list)."""
    if config.data.source == "tfds" or config.data.limit is None:
        return None
    paths, labels, names, log = _selected(config, None)
    training = set(source.paths)
    rest = [i for i, path in enumerate(paths) if path not in training]
    if not rest:
        return None
    order = np.random.default_rng(config.experiment.seed + 1).permutation(rest)[:count]
    paths, labels = _whole_files([paths[i] for i in order], labels[order], [])
    return Source(len(paths), names, [f"{len(paths)} images of the selection left out by data.limit"], paths,
                  labels) if paths else None


def _selected(config: Config, limit: int | None) -> tuple[list[str], np.ndarray, list[str], list[str]]:
    """(paths, labels, label names, log) of the CelebA-layout or folder selection under ``limit``, before the
    integrity check."""
    d = config.data
    if d.source in ("synthetic", "celeba"):
        root = Path(d.root)
        if d.source == "synthetic":
            root = synthetic.generate(root, d.synthetic_images, SYNTHETIC_SEED)
        table = celeba.read_celeba(root, need_partition=d.split != "all")
        indices, log = selection.select(table, split=d.split, filters=d.filters, balance=d.balance,
                                        attributes=d.attributes, limit=limit, seed=config.experiment.seed)
        # One fixed shuffle of the file list, so the first (pre-cache) epoch is not in file order.
        indices = np.random.default_rng(config.experiment.seed).permutation(indices)
        return table.paths(indices), selection.labels_for(table, indices, d.attributes), list(d.attributes), log
    paths, labels, classes, skipped = folders.read_folder(d.root, d.class_conditional)
    order = np.random.default_rng(config.experiment.seed).permutation(len(paths))
    if limit is not None:
        order = order[:limit]
    log = [f"{len(paths)} images in {d.root}" + (f" ({skipped} non-image files skipped)" if skipped else "")]
    return [paths[i] for i in order], labels[order], classes, log


def _whole_files(paths: list[str], labels: np.ndarray, log: list[str]) -> tuple[list[str], np.ndarray]:
    """``paths`` and ``labels`` without damaged files (named in ``log``); a DataError if the copy is broken."""
    keep, damaged = integrity.check(paths, "data.root")
    if not damaged:
        return paths, labels
    log.append(integrity.describe(damaged))
    return [paths[i] for i in keep], labels[keep]


def training_data(config: Config, source: Source, batch_size: int | None = None) -> TrainingData:
    """Steps per epoch and images per step for this selection (at ``batch_size``, default
    ``training.batch_size``); an error if not one step fits."""
    t = config.training
    batch_size = batch_size or t.batch_size
    per_step = batch_size * t.d_steps
    full = source.count // per_step
    if full == 0:
        raise DataError(f"training.batch_size: {batch_size} × d_steps {t.d_steps} = {per_step} images per step "
                        f"but the selection has only {source.count} images")
    steps = t.steps_per_epoch or full  # more than one pass: the pipeline goes on into newly shuffled passes
    return TrainingData(source, config.data.image_size, config.data.channels, per_step, steps)
