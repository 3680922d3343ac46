"""The tf.data input pipeline: selected records → parallel decode → centre crop → anti-aliased resize
→ (cache) → per-epoch shuffle → batch → [-1, 1] → prefetch.

Two things are designed in rather than bolted on:

* **No JPEG is decoded twice.** With ``data.cache`` the decoded, resized ``uint8`` images are kept
  in memory after the first epoch (64 px: 12 KB an image).
* **Each epoch's order depends only on (seed, epoch).** The dataset for a run is built from the
  epoch it starts at, so a resumed run sees exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from homogan.config import Config
from homogan.data import celeba, folders, selection
from homogan.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE
#: The synthetic dataset is one fixed dataset (like CelebA): ``experiment.seed`` varies training only.
SYNTHETIC_SEED = 0


@dataclass
class Source:
    """What to decode: encoded images or file paths in a fixed order, with their labels."""

    records: tf.data.Dataset  # of (path-or-bytes, label)
    count: int
    label_names: list[str]
    log: list[str] = field(default_factory=list)
    is_path: bool = True


@dataclass
class TrainingData:
    source: Source
    image_size: int
    channels: int
    batch_size: int  # images per training step: global batch × d_steps
    steps_per_epoch: int

    @property
    def num_images(self) -> int:
        return self.source.count

    @property
    def label_names(self) -> list[str]:
        return self.source.label_names


def open_source(config: Config) -> Source:
    """Find and select the data named by ``config.data`` (no image decoded). Raises DataError."""
    d = config.data
    if d.source in ("synthetic", "celeba"):
        root = Path(d.root)
        if d.source == "synthetic":
            from homogan.data import synthetic
            root = synthetic.generate(root, d.synthetic_images, SYNTHETIC_SEED)
        table = celeba.read_celeba(root, need_partition=d.split != "all")
        indices, log = selection.select(table, split=d.split, filters=d.filters, balance=d.balance,
                                        attributes=d.attributes, limit=d.limit, seed=config.experiment.seed)
        # One fixed shuffle of the file list, so the first (pre-cache) epoch is not in file order.
        indices = np.random.default_rng(config.experiment.seed).permutation(indices)
        labels = selection.labels_for(table, indices, d.attributes)
        records = tf.data.Dataset.from_tensor_slices((table.paths(indices), labels))
        return Source(records, len(indices), list(d.attributes), log)
    if d.source == "folder":
        paths, labels, classes, skipped = folders.read_folder(d.root, d.class_conditional)
        order = np.random.default_rng(config.experiment.seed).permutation(len(paths))
        if d.limit is not None:
            order = order[: d.limit]
        log = [f"{len(paths)} images in {d.root}" + (f" ({skipped} non-image files skipped)" if skipped else "")]
        records = tf.data.Dataset.from_tensor_slices(([paths[i] for i in order], labels[order]))
        return Source(records, len(order), classes, log)
    from homogan.data import tfds_source
    return tfds_source.open_tfds(config)


def training_data(config: Config, source: Source) -> TrainingData:
    t = config.training
    per_step = t.batch_size * t.d_steps
    full = source.count // per_step
    if full == 0:
        raise DataError(f"training.batch_size: {t.batch_size} × d_steps {t.d_steps} = {per_step} images per step "
                        f"but the selection has only {source.count} images")
    steps = min(full, t.steps_per_epoch) if t.steps_per_epoch else full
    return TrainingData(source, config.data.image_size, config.data.channels, per_step, steps)


def decode(record: tf.Tensor, *, is_path: bool, crop: int | None, size: int, channels: int) -> tf.Tensor:
    """One encoded image (or its path) → centre-cropped, resized ``uint8`` (size, size, channels)."""
    raw = tf.io.read_file(record) if is_path else record
    image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    if crop is not None:
        side = tf.minimum(side, crop)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    image = image[top:top + side, left:left + side]
    image = tf.image.resize(image, (size, size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def to_unit_range(images: tf.Tensor) -> tf.Tensor:
    """uint8 [0, 255] → float32 [-1, 1] (the generator's tanh range)."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def decoded_images(config: Config, source: Source) -> tf.data.Dataset:
    """(uint8 image, label) in the source's fixed order, decoded in parallel, cached if configured."""
    d = config.data

    def load(record, label):
        return decode(record, is_path=source.is_path, crop=d.crop, size=d.image_size, channels=d.channels), label

    images = source.records.map(load, num_parallel_calls=AUTOTUNE, deterministic=True)
    return images.cache() if d.cache else images


def make_dataset(config: Config, data: TrainingData, initial_epoch: int = 0) -> tf.data.Dataset:
    """Batches of (images float32 [-1, 1], labels float32 {0, 1}) for epochs initial_epoch..epochs-1."""
    base = decoded_images(config, data.source)
    buffer = min(config.data.shuffle_buffer, data.num_images)
    seed = config.experiment.seed

    def epoch(e):
        shuffled = base.shuffle(buffer, seed=tf.cast(e, tf.int64) * 1_000_003 + seed, reshuffle_each_iteration=False)
        return shuffled.batch(data.batch_size, drop_remainder=True).take(data.steps_per_epoch)

    epochs = tf.data.Dataset.range(initial_epoch, config.training.epochs)
    dataset = epochs.flat_map(epoch).map(lambda x, y: (to_unit_range(x), y), num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)
