"""Decoding one source image: read → decode → centre crop → anti-aliased resize → ``uint8``.

Its own module because two users must decode identically and neither may import the other: the
training pipeline (:mod:`homogan.data.pipeline`) and the prepared shards
(:mod:`homogan.data.prepared`), whose key includes a fingerprint of :func:`decode`'s source (a change
here invalidates prepared shards; a change elsewhere does not).
"""

from __future__ import annotations

import tensorflow as tf

from homogan.config import Config
from homogan.data.records import Source

AUTOTUNE = tf.data.AUTOTUNE


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


def decoded_dataset(config: Config, source: Source) -> tf.data.Dataset:
    """(uint8 image, label) of every selected image, in the source's fixed order, decoded in parallel (not cached)."""
    d = config.data
    if source.encoded is not None:
        records, is_path = source.encoded, False
    else:
        records, is_path = tf.data.Dataset.from_tensor_slices((source.paths, source.labels)), True

    def load(record, label):
        return decode(record, is_path=is_path, crop=d.crop, size=d.image_size, channels=d.channels), label

    # Damaged files were skipped by name before training (homogan.data.integrity); one whose bytes look
    # whole but whose data is corrupt inside is dropped here with TensorFlow's warning, never a crash.
    return records.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).ignore_errors(log_warning=True)
