"""Small building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import math

import keras


def num_blocks(image_size: int) -> int:
    """Resolution steps between the 4x4 map and ``image_size`` (64 px → 4)."""
    n = int(math.log2(image_size)) - 2
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"`image_size` should be a power of two >= 8. Received: `image_size={image_size}`")
    return n


def maybe_spectral(layer: keras.layers.Layer, spectral_norm: bool) -> keras.layers.Layer:
    """Wrap a kernel layer in spectral normalisation (top singular value kept at ~1) when asked.

    The wrapper computes in the wrapped layer's dtype policy: a float32 output layer (D's logit
    head) stays float32 under mixed precision instead of being cast back to the input's dtype.
    """
    return keras.layers.SpectralNormalization(layer, dtype=layer.dtype_policy) if spectral_norm else layer


def activation(name: str, leaky_alpha: float) -> keras.layers.Layer:
    if name == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=leaky_alpha)
    if name == "relu":
        return keras.layers.ReLU()
    raise ValueError(f"`activation` should be 'relu' or 'leaky_relu'. Received: `activation={name!r}`")


def label_maps(labels, height: int, width: int):
    """(B, L) labels → (B, H, W, L) constant maps, to concatenate to an image as extra channels."""
    labels = keras.ops.reshape(labels, (-1, 1, 1, labels.shape[-1]))
    return keras.ops.tile(labels, (1, height, width, 1))
