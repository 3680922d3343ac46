"""Running a trained generator: images for (z, labels) in batches, and the EMA copy of a generator.

One home for both, used by the sample grid, evaluation, ``generate`` and the loading of a run, so a
change to how a generator is run (batch size, training flag, output dtype) is made once.
"""

from __future__ import annotations

import keras
import numpy as np

from homogan.models.generator import Generator

#: Images per generator call: bounds memory at 256 px while keeping the calls few.
BATCH_SIZE = 256


def generate(generator, z: np.ndarray, labels: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The generator's images (inference mode) for latent vectors ``z`` and ``labels``, as float32 in [-1, 1]."""
    out = [keras.ops.convert_to_numpy(generator(z[i:i + batch_size], labels[i:i + batch_size], training=False))
           for i in range(0, len(z), batch_size)]
    if not out:
        c = generator.get_config()
        return np.zeros((0, c["image_size"], c["image_size"], c["channels"]), np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def ema_copy(generator):
    """A generator of the same architecture (built, named ``ema_generator``) holding a copy of ``generator``'s
    weights: the start of the exponential moving average that samples and evaluation use."""
    same = {k: v for k, v in generator.get_config().items() if k not in ("name", "trainable", "dtype")}
    ema = Generator(**same, name="ema_generator")
    ema(keras.ops.zeros((1, generator.latent_dim)), keras.ops.zeros((1, generator.num_labels)))
    ema.set_weights(generator.get_weights())
    return ema
