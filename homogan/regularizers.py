"""Penalties on the discriminator as plain per-example functions (like compare_gan's penalty_lib).

``critic`` is any callable ``images -> (B,) logits`` (labels already bound), so the penalties work
unchanged for conditional critics. Both are computed in float32, also under mixed precision.
"""

from __future__ import annotations

import tensorflow as tf


def _input_gradients(critic, images):
    images = tf.cast(images, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(tf.cast(critic(images), tf.float32))
    grads = tape.gradient(total, images)
    return tf.reshape(tf.cast(grads, tf.float32), (tf.shape(images)[0], -1))


def gradient_penalty(critic, real, fake, epsilon):
    """WGAN-GP (Gulrajani et al. 2017): (‖∇ f(x̂)‖₂ - 1)² per example, x̂ = ε·real + (1-ε)·fake.

    Args:
        epsilon: (B, 1, 1, 1) interpolation weights, one per sample, drawn U(0, 1) by the caller
            (passed in so tests can fix it).
    """
    real, fake = tf.cast(real, tf.float32), tf.cast(fake, tf.float32)
    mixed = epsilon * real + (1.0 - epsilon) * fake
    norms = tf.sqrt(tf.reduce_sum(tf.square(_input_gradients(critic, mixed)), axis=1) + 1e-12)
    return tf.square(norms - 1.0)


def r1_penalty(critic, real):
    """R1 (Mescheder et al. 2018): ‖∇ f(real)‖₂² per example; the caller multiplies by γ/2."""
    return tf.reduce_sum(tf.square(_input_gradients(critic, real)), axis=1)
