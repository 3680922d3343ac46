"""Pixels between their two homes: ``uint8`` [0, 255] on disk and in tf.data, float [-1, 1] in the networks.

One module for both directions, below every user: the train step scales the pipeline's uint8 batches
(:func:`to_unit_range`, on the device), and evaluation puts generated images back on the uint8 grid
the real ones live on (:func:`quantize`, in memory), so both sets are compared after identical
preprocessing. TensorFlow is imported only by the function that needs it.
"""

from __future__ import annotations

import numpy as np


def to_unit_range(images):
    """uint8 [0, 255] → float32 [-1, 1] (the generator's tanh range); float input is returned as is
    (already in that range), so a GAN can be fed either."""
    import tensorflow as tf

    if images.dtype.is_floating:
        return images
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float [-1, 1] → uint8 [0, 255] (rounded, clipped), in TensorFlow: what an exported generator returns."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5), 0.0, 255.0), tf.uint8)


def quantize(images: np.ndarray) -> np.ndarray:
    """Generated images in [-1, 1] → the uint8 grid real images live on, back in [-1, 1] (in memory)."""
    u8 = np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)
    return (u8 / 127.5 - 1.0).astype(np.float32)
