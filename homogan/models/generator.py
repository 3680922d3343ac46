"""The DCGAN-family generator: z (+ labels) → 4x4 stem → upsampling blocks → tanh image."""

from __future__ import annotations

import keras

from homogan.models.blocks import (BatchNormalization, GaussianNoise, activation as make_activation, maybe_spectral,
                                   num_blocks)


class Generator(keras.Model):
    """Maps a latent vector and a conditioning vector to an image in [-1, 1].

    Conditioning is by concatenation: ``[z, labels]`` feeds the stem, so an unconditional generator
    is simply ``num_labels=0`` (the concatenation is then a no-op). Widths halve per block from
    ``width * 2**(blocks-1)`` (capped at ``max_width``) down to ``width``; the number of blocks
    follows ``image_size`` (64 px: 4x4×512 → 8x8×256 → 16x16×128 → 32x32×64 → 64x64×3, Radford et al.).

    Args:
        image_size: int, side of the output image (8, 16, 32, ... 256).
        channels: int, 3 (RGB) or 1 (grayscale).
        latent_dim: int, size of z.
        num_labels: int, size of the conditioning vector (0 = unconditional).
        width, max_width: ints, channel widths (see above).
        stem: "dense" (a dense layer to 4x4) or "conv_transpose" (a 4x4 transposed convolution of
            the 1x1 input, HomoGAN's "FC→FConv" change).
        upsample: "conv_transpose" (stride 2) or "upsample_conv" (nearest ×2 then convolution).
        kernel_size: int, kernel of the upsampling convolutions.
        batch_norm: bool, batch normalisation after the stem and every hidden block.
        activation: "relu" or "leaky_relu" (with ``leaky_alpha``).
        noise_stddev: float, a GaussianNoise layer after every hidden block (training only).
        spectral_norm: bool, spectral normalisation of every kernel.
        extra_convs: int, stride-1 3x3 convolutions added after every hidden upsampling block
            (more depth at the same resolution).
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int, num_labels: int = 0, *,
                 width: int = 64, max_width: int = 512, stem: str = "dense", upsample: str = "conv_transpose",
                 kernel_size: int = 4, batch_norm: bool = True, activation: str = "relu",
                 leaky_alpha: float = 0.2, noise_stddev: float = 0.0, spectral_norm: bool = False,
                 extra_convs: int = 0, **kwargs):
        super().__init__(**kwargs)
        if stem not in ("dense", "conv_transpose"):
            raise ValueError(f"`stem` should be 'dense' or 'conv_transpose'. Received: `stem={stem!r}`")
        if upsample not in ("conv_transpose", "upsample_conv"):
            raise ValueError(f"`upsample` should be 'conv_transpose' or 'upsample_conv'. Received: `upsample={upsample!r}`")
        self._config = dict(image_size=image_size, channels=channels, latent_dim=latent_dim, num_labels=num_labels,
                            width=width, max_width=max_width, stem=stem, upsample=upsample, kernel_size=kernel_size,
                            batch_norm=batch_norm, activation=activation, leaky_alpha=leaky_alpha,
                            noise_stddev=noise_stddev, spectral_norm=spectral_norm, extra_convs=extra_convs)
        self.latent_dim, self.num_labels = latent_dim, num_labels
        n = num_blocks(image_size)
        widths = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]
        sn = spectral_norm
        layers: list[keras.layers.Layer] = []

        def norm_act():
            if batch_norm:
                layers.append(BatchNormalization(momentum=0.9))
            layers.append(make_activation(activation, leaky_alpha))

        if stem == "dense":
            layers += [maybe_spectral(keras.layers.Dense(4 * 4 * widths[0], use_bias=not batch_norm), sn),
                       keras.layers.Reshape((4, 4, widths[0]))]
        else:
            layers += [keras.layers.Reshape((1, 1, latent_dim + num_labels)),
                       maybe_spectral(keras.layers.Conv2DTranspose(widths[0], 4, padding="valid",
                                                                   use_bias=not batch_norm), sn)]
        norm_act()
        for filters in widths[1:]:
            layers += self._upsample(upsample, filters, kernel_size, use_bias=not batch_norm, sn=sn)
            norm_act()
            for _ in range(extra_convs):
                layers.append(maybe_spectral(keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm), sn))
                norm_act()
            if noise_stddev > 0:
                layers.append(GaussianNoise(noise_stddev))
        layers += self._upsample(upsample, channels, kernel_size, use_bias=True, sn=sn)
        # The output in float32 even under mixed precision: tanh saturates badly in low precision.
        layers.append(keras.layers.Activation("tanh", dtype="float32"))
        self.blocks = layers

    @staticmethod
    def _upsample(kind, filters, kernel_size, use_bias, sn):
        if kind == "conv_transpose":
            return [maybe_spectral(keras.layers.Conv2DTranspose(filters, kernel_size, strides=2, padding="same",
                                                                use_bias=use_bias), sn)]
        return [keras.layers.UpSampling2D(2, interpolation="nearest"),
                maybe_spectral(keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias), sn)]

    def call(self, z, labels, training=False):
        x = keras.ops.concatenate([z, keras.ops.cast(labels, z.dtype)], axis=-1)
        for layer in self.blocks:
            x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), **self._config}
