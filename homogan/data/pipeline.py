"""The tf.data input pipeline: selected records → parallel decode → centre crop → anti-aliased resize
→ (cache) → per-epoch shuffle → batch → prefetch, as ``uint8``; the train step scales to [-1, 1].

Two things are designed in rather than bolted on:

* **No JPEG is decoded twice.** With ``data.cache`` the decoded, resized ``uint8`` images are kept
  in memory after the first epoch (64 px: 12 KB an image).
* **Pixels travel as uint8.** The batches stay ``uint8`` up to the train step, which scales them
  (:func:`homogan.pixels.to_unit_range`, in :meth:`homogan.gan.GAN.train_step`): 4× less host→device traffic on a
  GPU, and on the CPU the conversion leaves the input threads (it was half their per-image cost at
  128 px) for the step, where it is one fused elementwise op on the batch.
* **Each epoch's order depends only on (seed, epoch).** The dataset for a run is built from the
  epoch it starts at, so a resumed run sees exactly the batches an uninterrupted run would have.
  An epoch is ``training.steps_per_epoch`` steps (null: one pass); where that is more than one pass
  of the selection, the epoch goes on into further passes, each shuffled anew.
"""

from __future__ import annotations

import tensorflow as tf

from homogan.config import Config, mirror_symmetric
from homogan.data import decode, prepared
from homogan.data.records import Source, TrainingData

AUTOTUNE = tf.data.AUTOTUNE
_GRAPH_SEED = 87654321  # TF's own default graph seed: the order is that of a process with no global seed
PASS_SEED_STRIDE = 1_000_000_007_000  # pass k of an epoch: far from every other epoch's (seed, epoch) order


def decoded_images(config: Config, source: Source) -> tf.data.Dataset:
    """(uint8 image, label) in the source's fixed order: from prepared shards when they exist, else decoded
    in parallel (:func:`homogan.data.decode.decoded_dataset`); cached in memory if configured."""
    found = prepared.find(config, source)
    if found is not None:  # the same images in the same order, decoded once by `prepare`
        prepared.announce(*found)
        images = prepared.read(*found)
    else:
        images = decode.decoded_dataset(config, source)
    return images.cache() if config.data.cache else images


def pinned_shuffle(ds: tf.data.Dataset, buffer: int, seed) -> tf.data.Dataset:
    """``ds`` shuffled once, in an order set by ``seed`` alone. Call it inside a tf.data function (an epoch
    of ``flat_map``): it pins that function graph's own seed. tf.data combines an op seed with the
    graph-level seed, so without this the order would also depend on whatever global seed the process set
    last (and a global seed of 0 with a tensor op seed crashes TF's get_seed)."""
    tf.random.set_seed(_GRAPH_SEED)
    return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=False)


def mirrored(config: Config) -> bool:
    """Whether training mirrors images (``data.mirror``; null = on for data that keep their meaning mirrored)."""
    return mirror_symmetric(config) if config.data.mirror is None else config.data.mirror


def mirror_half(images, seed):
    """Each image of the batch ``images`` mirrored left-right with probability 1/2, from the stateless ``seed``."""
    flip = tf.random.stateless_uniform((tf.shape(images)[0], 1, 1, 1), tf.cast(seed, tf.int64)) < 0.5
    return tf.where(flip, tf.reverse(images, axis=[2]), images)


def make_dataset(config: Config, data: TrainingData, initial_epoch: int = 0, final_epoch: int | None = None
                 ) -> tf.data.Dataset:
    """Batches of (images uint8 [0, 255], labels float32 {0, 1}) for epochs initial_epoch..final_epoch-1
    (0-based; ``final_epoch`` defaults to ``training.epochs``). The GAN's train step scales the images
    to [-1, 1] (:func:`homogan.pixels.to_unit_range`)."""
    base = decoded_images(config, data.source)
    buffer = min(config.data.shuffle_buffer, data.num_images)
    seed = config.experiment.seed
    mirror = mirrored(config)

    def one_pass(e, k):
        """Pass ``k`` of epoch ``e``: pass 0 in the epoch's own order (seed, epoch) — every epoch of a run whose
        epoch is one pass or less is exactly that —, later passes each in an order of their own."""
        pass_seed = e * 1_000_003 + seed + k * PASS_SEED_STRIDE
        return pinned_shuffle(base, buffer, pass_seed)

    def epoch(e):
        # A stream of passes, cut at steps_per_epoch batches: an epoch of more steps than one pass holds
        # (training.steps_per_epoch on a small selection) goes on into a newly shuffled pass, and an image
        # the decoder dropped cannot cut an epoch a batch short (Keras would end training on "ran out of data").
        passes = tf.data.Dataset.counter().flat_map(lambda k: one_pass(e, k))
        batches = passes.batch(data.batch_size, drop_remainder=True).take(data.steps_per_epoch)
        if mirror:  # drawn from (seed, epoch, batch): a resume that skips batches draws what it would have
            batches = batches.enumerate().map(lambda i, xy: (mirror_half(xy[0], (seed * 1_000_003 + e, i)), xy[1]),
                                              num_parallel_calls=AUTOTUNE, deterministic=True)
        return batches

    epochs = tf.data.Dataset.range(initial_epoch, config.training.epochs if final_epoch is None else final_epoch)
    return epochs.flat_map(epoch).prefetch(AUTOTUNE)
