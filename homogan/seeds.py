"""Random streams for tf.distribute: every replica draws its own numbers, and draws repeat per seed.

Used by the GAN (latents, targets, flips, augmentation, instance noise) and by the random layers
inside the networks (:class:`homogan.models.blocks.GaussianNoise`, ``Dropout``).
"""

from __future__ import annotations

import keras
import tensorflow as tf


class ReplicaSeedGenerator(keras.random.SeedGenerator):
    """A ``SeedGenerator`` whose draws differ per replica under tf.distribute.

    Keras's ``SeedGenerator`` keeps its state in one (mirrored) variable, so under
    ``MirroredStrategy``/``MultiWorkerMirroredStrategy`` every replica would get the same seed and
    draw *identical* latents, targets, flips and noise (measured: both replicas' z were equal). Here
    the replica's global id (``replica_id_in_sync_group``) is folded into each seed when there is
    more than one replica; the state advances identically on every replica, so checkpoints and
    resume are unchanged, and with one replica the seeds — hence every draw — are exactly those of
    a plain ``SeedGenerator``.
    """

    def next(self, ordered=True):
        seed = super().next(ordered)
        ctx = tf.distribute.get_replica_context()
        if ctx is None or ctx.num_replicas_in_sync == 1:
            return seed
        return self.fold_in(seed, ctx.replica_id_in_sync_group)

    @staticmethod
    def fold_in(seed, replica_id):
        """``seed`` (int64 pair) combined with ``replica_id`` into an independent int64 pair."""
        folded = tf.random.experimental.stateless_fold_in(tf.cast(seed, tf.int64), tf.cast(replica_id, tf.int64))
        return tf.cast(folded, seed.dtype)
