"""The DCGAN-family discriminator (or critic): image (+ label maps) → strided conv blocks → one logit."""

from __future__ import annotations

import keras

from homogan.models.blocks import activation as make_activation, label_maps, maybe_spectral, num_blocks


class Discriminator(keras.Model):
    """Scores an image with its conditioning vector; returns one float32 logit per image.

    Conditioning is by concatenation: the labels are broadcast to constant maps and appended to the
    image as extra input channels (so every filter of the first layer sees them). Widths double per
    block from ``width`` (capped at ``max_width``) down to a 4x4 map, then a dense layer gives the
    logit — in float32 under mixed precision, so losses are computed in float32.

    Args:
        image_size: int, side of the input image.
        channels: int, image channels.
        num_labels: int, size of the conditioning vector (0 = unconditional).
        width, max_width: ints, channel widths.
        kernel_size: int, kernel of the strided convolutions.
        normalization: "batch", "layer" or "none", after every block but the first (never in D's
            first layer, Radford et al.). Use "layer" or "none" with a gradient penalty.
        activation: "leaky_relu" (with ``leaky_alpha``) or "relu".
        dropout: float, dropout rate after every block (0 = none).
        input_noise_stddev: float, Gaussian instance noise on the image input (training only).
        spectral_norm: bool, spectral normalisation of every kernel.
    """

    def __init__(self, image_size: int, channels: int, num_labels: int = 0, *, width: int = 64,
                 max_width: int = 512, kernel_size: int = 4, normalization: str = "batch",
                 activation: str = "leaky_relu", leaky_alpha: float = 0.2, dropout: float = 0.0,
                 input_noise_stddev: float = 0.0, spectral_norm: bool = False, **kwargs):
        super().__init__(**kwargs)
        if normalization not in ("batch", "layer", "none"):
            raise ValueError("`normalization` should be 'batch', 'layer' or 'none'. "
                             f"Received: `normalization={normalization!r}`")
        self._config = dict(image_size=image_size, channels=channels, num_labels=num_labels, width=width,
                            max_width=max_width, kernel_size=kernel_size, normalization=normalization,
                            activation=activation, leaky_alpha=leaky_alpha, dropout=dropout,
                            input_noise_stddev=input_noise_stddev, spectral_norm=spectral_norm)
        self.image_size, self.num_labels = image_size, num_labels
        self.input_noise = keras.layers.GaussianNoise(input_noise_stddev) if input_noise_stddev > 0 else None
        layers: list[keras.layers.Layer] = []
        for i in range(num_blocks(image_size)):
            layers.append(maybe_spectral(keras.layers.Conv2D(min(width * 2**i, max_width), kernel_size, strides=2,
                                                             padding="same", use_bias=i == 0 or normalization == "none"),
                                         spectral_norm))
            if i > 0 and normalization == "batch":
                layers.append(keras.layers.BatchNormalization())
            elif i > 0 and normalization == "layer":
                layers.append(keras.layers.LayerNormalization(axis=(-3, -2, -1)))
            layers.append(make_activation(activation, leaky_alpha))
            if dropout > 0:
                layers.append(keras.layers.Dropout(dropout))
        layers += [keras.layers.Flatten(), maybe_spectral(keras.layers.Dense(1, dtype="float32"), spectral_norm)]
        self.blocks = layers

    def call(self, images, labels, training=False):
        x = images
        if self.input_noise is not None:
            x = self.input_noise(x, training=training)
        maps = label_maps(keras.ops.cast(labels, x.dtype), self.image_size, self.image_size)
        x = keras.ops.concatenate([x, maps], axis=-1)
        for layer in self.blocks:
            x = layer(x, training=training)
        return keras.ops.squeeze(keras.ops.cast(x, "float32"), axis=-1)

    def get_config(self):
        return {**super().get_config(), **self._config}
