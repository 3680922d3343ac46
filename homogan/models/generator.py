"""The DCGAN-family generator: z (+ labels) → 4x4 stem → upsampling blocks → tanh image."""

from __future__ import annotations

import functools

import keras

from homogan.config import GENERATOR_CONDITIONING as CONDITIONING
from homogan.models.blocks import (BatchNormalization, ConditionalBatchNormalization, GaussianNoise,
                                   activation as make_activation, maybe_spectral, num_blocks)


@keras.saving.register_keras_serializable(package="homogan")
class Generator(keras.Model):
    """Maps a latent vector and a conditioning vector to an image in [-1, 1].

    Conditioning is by concatenation: ``[z, labels]`` feeds the stem, so an unconditional generator
    is simply ``num_labels=0`` (the concatenation is then a no-op). With ``conditioning="conditional_bn"``
    the labels also set every batch norm's gain and bias
    (:class:`~homogan.models.blocks.ConditionalBatchNormalization`). Widths halve per block from
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
        spectral_norm_variant: "reparameterized" (Miyato et al.; default) or "keras" (Keras 3's wrapper).
        extra_convs: int, stride-1 3x3 convolutions added after every hidden upsampling block
            (more depth at the same resolution).
        conditioning: "concat" or "conditional_bn" (needs labels and ``batch_norm``).
    """

    def __init__(self, image_size: int, channels: int, latent_dim: int, num_labels: int = 0, *,
                 width: int = 64, max_width: int = 512, stem: str = "dense", upsample: str = "conv_transpose",
                 kernel_size: int = 4, batch_norm: bool = True, activation: str = "relu",
                 leaky_alpha: float = 0.2, noise_stddev: float = 0.0, spectral_norm: bool = False,
                 extra_convs: int = 0, spectral_norm_variant: str = "reparameterized", conditioning: str = "concat",
                 **kwargs):
        super().__init__(**kwargs)
        if conditioning not in CONDITIONING:
            raise ValueError(f"`conditioning` should be one of {', '.join(CONDITIONING)}. "
                             f"Received: `conditioning={conditioning!r}`")
        if conditioning == "conditional_bn" and (num_labels == 0 or not batch_norm):
            raise ValueError(f"`conditioning='conditional_bn'` needs labels and batch norm. "
                             f"Received: `num_labels={num_labels}`, `batch_norm={batch_norm}`")
        if stem not in ("dense", "conv_transpose"):
            raise ValueError(f"`stem` should be 'dense' or 'conv_transpose'. Received: `stem={stem!r}`")
        if upsample not in ("conv_transpose", "upsample_conv"):
            raise ValueError(f"`upsample` should be 'conv_transpose' or 'upsample_conv'. Received: `upsample={upsample!r}`")
        self._config = dict(image_size=image_size, channels=channels, latent_dim=latent_dim, num_labels=num_labels,
                            width=width, max_width=max_width, stem=stem, upsample=upsample, kernel_size=kernel_size,
                            batch_norm=batch_norm, activation=activation, leaky_alpha=leaky_alpha,
                            noise_stddev=noise_stddev, spectral_norm=spectral_norm, extra_convs=extra_convs,
                            spectral_norm_variant=spectral_norm_variant, conditioning=conditioning)
        self.latent_dim, self.num_labels = latent_dim, num_labels
        n = num_blocks(image_size)
        widths = [min(width * 2 ** (n - 1 - i), max_width) for i in range(n)]
        sn = functools.partial(maybe_spectral, spectral_norm=spectral_norm, variant=spectral_norm_variant)
        layers: list[keras.layers.Layer] = []

        def norm_act(filters):
            if conditioning == "conditional_bn":  # refused above without batch norm
                layers.append(ConditionalBatchNormalization(filters, momentum=0.9))
            elif batch_norm:
                layers.append(BatchNormalization(momentum=0.9))
            layers.append(make_activation(activation, leaky_alpha))

        if stem == "dense":
            layers += [sn(keras.layers.Dense(4 * 4 * widths[0], use_bias=not batch_norm)),
                       keras.layers.Reshape((4, 4, widths[0]))]
        else:
            layers += [keras.layers.Reshape((1, 1, latent_dim + num_labels)),
                       sn(keras.layers.Conv2DTranspose(widths[0], 4, padding="valid", use_bias=not batch_norm))]
        norm_act(widths[0])
        for filters in widths[1:]:
            layers += self._upsample(upsample, filters, kernel_size, use_bias=not batch_norm, sn=sn)
            norm_act(filters)
            for _ in range(extra_convs):
                layers.append(sn(keras.layers.Conv2D(filters, 3, padding="same", use_bias=not batch_norm)))
                norm_act(filters)
            if noise_stddev > 0:
                layers.append(GaussianNoise(noise_stddev))
        layers += self._upsample(upsample, channels, kernel_size, use_bias=True, sn=sn)
        # The output in float32 even under mixed precision: tanh saturates badly in low precision.
        layers.append(keras.layers.Activation("tanh", dtype="float32"))
        self.blocks = layers

    @staticmethod
    def _upsample(kind, filters, kernel_size, use_bias, sn):
        if kind == "conv_transpose":
            return [sn(keras.layers.Conv2DTranspose(filters, kernel_size, strides=2, padding="same",
                                                    use_bias=use_bias))]
        return [keras.layers.UpSampling2D(2, interpolation="nearest"),
                sn(keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=use_bias))]

    def call(self, z, labels, training=False):
        x = keras.ops.concatenate([z, keras.ops.cast(labels, z.dtype)], axis=-1)
        for layer in self.blocks:
            if isinstance(layer, ConditionalBatchNormalization):
                x = layer(x, labels, training=training)
            else:
                x = layer(x, training=training)
        return x

    def get_config(self):
        return {**super().get_config(), **self._config}

    def get_build_config(self):
        return {"latent_dim": self.latent_dim, "num_labels": self.num_labels}

    def build_from_config(self, config):
        """Create the variables (a ``.keras`` archive is loaded into them) by one call on zeros in inference mode."""
        self(keras.ops.zeros((1, self.latent_dim)), keras.ops.zeros((1, self.num_labels)))
