"""Running a trained generator: images for (z, labels) in batches, the EMA copy of a generator, and
"standing" batch-norm statistics for it.

One home for these, used by the sample grid, evaluation, ``generate`` and the loading of a run, so a
change to how a generator is run (batch size, training flag, output dtype) is made once.
"""

from __future__ import annotations

import keras
import numpy as np

from homogan.models.blocks import batch_norm_layers, exact_batch_norm_statistics
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


#: Standing statistics: this many batches of this many fresh latents (1,280 images; measured on the default
#: config, 20 batches gave the FID and recall of 100).
STANDING_BATCHES, STANDING_BATCH_SIZE = 20, 64


def standing_statistics(generator, label_pool: np.ndarray | None, num_labels: int, one_hot: bool, seed: int,
                        batches: int = STANDING_BATCHES, batch_size: int = STANDING_BATCH_SIZE) -> None:
    """Recompute the batch-norm statistics of ``generator`` (an EMA generator) from its own activations:
    ``batches`` forward passes in training mode on fresh latents, the moving statistics set to the exact
    mean of the batch statistics ("standing statistics", Brock et al. 2019). Why: the EMA generator's
    weights are an average, but the statistics it would otherwise carry were measured on the live
    generator's weights. Labels come from ``label_pool`` (the training selection's label vectors) when
    given, else uniformly (one class, or each attribute 0/1). Deterministic for a given ``seed``."""
    if not batch_norm_layers(generator):
        return
    rng = np.random.default_rng([seed, 31])
    latent = generator.get_config()["latent_dim"]
    # The seed states of G's noise layers (not weights): put back afterwards, so that the recomputation does
    # not move them and a resumed run draws what an uninterrupted one draws.
    weights = {id(w) for w in generator.weights}
    seed_states = [(v, np.asarray(v.numpy()).copy()) for v in generator.variables if id(v) not in weights]

    def latents_and_labels():
        for _ in range(batches):
            if label_pool is not None and len(label_pool):
                labels = label_pool[rng.integers(0, len(label_pool), batch_size)].astype(np.float32)
            elif one_hot:
                labels = np.eye(num_labels, dtype=np.float32)[rng.integers(0, num_labels, batch_size)]
            else:
                labels = rng.integers(0, 2, (batch_size, num_labels)).astype(np.float32)
            yield rng.standard_normal((batch_size, latent)).astype(np.float32), labels

    try:
        exact_batch_norm_statistics(generator, lambda zy: generator(*zy, training=True), latents_and_labels())
    finally:
        for variable, value in seed_states:
            variable.assign(value)
