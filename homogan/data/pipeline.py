"""The tf.data input pipeline: selected records → parallel decode → centre crop → anti-aliased resize
→ (cache) → per-epoch shuffle → batch → prefetch, as ``uint8``; the train step scales to [-1, 1].

Two things are designed in rather than bolted on:

* **No JPEG is decoded twice.** With ``data.cache`` the decoded, resized ``uint8`` images are kept
  in memory after the first epoch (64 px: 12 KB an image).
* **Pixels travel as uint8.** The batches stay ``uint8`` up to the train step, which scales them
  (:func:`to_unit_range`, in :meth:`homogan.gan.GAN.train_step`): 4× less host→device traffic on a
  GPU, and on the CPU the conversion leaves the input threads (it was half their per-image cost at
  128 px) for the step, where it is one fused elementwise op on the batch.
* **Each epoch's order depends only on (seed, epoch).** The dataset for a run is built from the
  epoch it starts at, so a resumed run sees exactly the batches an uninterrupted run would have.
"""

from __future__ import annotations

import tensorflow as tf

from homogan.config import Config
from homogan.data import prepared
from homogan.data.sources import Source, TrainingData

AUTOTUNE = tf.data.AUTOTUNE
_GRAPH_SEED = 87654321  # TF's own default graph seed: the order is that of a process with no global seed


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
    """uint8 [0, 255] → float32 [-1, 1] (the generator's tanh range); float input is returned as is
    (already in that range), so a GAN can be fed either."""
    if images.dtype.is_floating:
        return images
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def decoded_images(config: Config, source: Source) -> tf.data.Dataset:
    """(uint8 image, label) in the source's fixed order, decoded in parallel, cached if configured."""
    d = config.data
    found = prepared.find(config, source)
    if found is not None:  # the same images in the same order, decoded once by `prepare`
        prepared.announce(*found)
        images = prepared.read(*found)
        return images.cache() if d.cache else images
    if source.encoded is not None:
        records, is_path = source.encoded, False
    else:
        records, is_path = tf.data.Dataset.from_tensor_slices((source.paths, source.labels)), True

    def load(record, label):
        return decode(record, is_path=is_path, crop=d.crop, size=d.image_size, channels=d.channels), label

    # Damaged files were skipped by name before training (homogan.data.integrity); one whose bytes look
    # whole but whose data is corrupt inside is dropped here with TensorFlow's warning, never a crash.
    images = records.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).ignore_errors(log_warning=True)
    return images.cache() if d.cache else images


def make_dataset(config: Config, data: TrainingData, initial_epoch: int = 0, final_epoch: int | None = None
                 ) -> tf.data.Dataset:
    """Batches of (images uint8 [0, 255], labels float32 {0, 1}) for epochs initial_epoch..final_epoch-1
    (0-based; ``final_epoch`` defaults to ``training.epochs``). The GAN's train step scales the images
    to [-1, 1] (:func:`to_unit_range`)."""
    base = decoded_images(config, data.source)
    buffer = min(config.data.shuffle_buffer, data.num_images)
    seed = config.experiment.seed

    def epoch(e):
        # Pin this function graph's own seed: tf.data combines an op seed with the graph-level seed, so
        # without this the order would also depend on whatever global seed the process set last (and a
        # global seed of 0 with a tensor op seed crashes TF's get_seed). The order is (seed, epoch) only.
        tf.random.set_seed(_GRAPH_SEED)
        shuffled = base.shuffle(buffer, seed=e * 1_000_003 + seed, reshuffle_each_iteration=False)
        # repeat(): an image the decoder dropped must not cut the epoch a batch short (Keras would end
        # training on "ran out of data"); without drops the batches are exactly those of one pass.
        return shuffled.repeat().batch(data.batch_size, drop_remainder=True).take(data.steps_per_epoch)

    epochs = tf.data.Dataset.range(initial_epoch, config.training.epochs if final_epoch is None else final_epoch)
    return epochs.flat_map(epoch).prefetch(AUTOTUNE)
