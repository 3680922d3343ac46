"""The DCGAN-family discriminator (or critic): image (+ labels) → strided conv blocks → one logit."""

from __future__ import annotations

import keras

from homogan.config import DISCRIMINATOR_CONDITIONING as CONDITIONING
from homogan.models.blocks import (BatchNormalization, Dropout, activation as make_activation, label_maps,
                                   maybe_spectral, num_blocks)


@keras.saving.register_keras_serializable(package="homogan")
class Discriminator(keras.Model):
    """Scores an image with its conditioning vector; returns one float32 logit per image.

    Widths double per block from ``width`` (capped at ``max_width``) down to a 4x4 map whose
    flattened activations are the features φ(x); a dense layer ψ gives the logit — in float32 under
    mixed precision, so losses are computed in float32. How the labels y enter (``conditioning``):

    * ``"concat"``: y is broadcast to constant maps appended to the image as extra input channels,
      so every filter of the first layer sees it.
    * ``"projection"`` (Miyato & Koyama 2018): logit = ψ(φ(x)) + ⟨E y, φ(x)⟩ with E a dense layer
      without bias of the (multi-hot) labels. The label enters as an inner product with the
      features — the form of the optimal discriminator's log density ratio for such models — not
      as input channels.
    * ``"acgan"`` (Odena et al. 2017): y does not enter D at all; an auxiliary head gives
      ``num_labels`` logits (one sigmoid per attribute, multi-label) that the train step fits to the
      labels. ``call(..., return_aux=True)`` returns ``(logits, aux_logits)``; plain calls (and so the
      GP/R1 critic callables) return the logits only, ignoring ``labels``.
    * ``"projection_ac"``: both — the projection logit, and an auxiliary head on the same features φ(x) whose
      logits the train step fits to one-hot classes with a softmax (AC-GAN's classifier term on Miyato &
      Koyama's D; the plain calls return the projection logit).
    * ``"projection_tac"``: ``projection_ac`` plus TAC-GAN's twin classifier (Gong et al. 2019), a second head on
      φ(x) that the train step fits to the classes of fakes; ``return_aux=True`` then returns the two heads'
      logits side by side, ``(batch, 2 · num_labels)``: the classifier's first, the twin's last.
    * ``"reacgan"`` (Kang et al. 2021, ReACGAN): y does not enter the logit (ψ(φ(x)) alone, as with ``"acgan"``);
      an embedding head maps φ(x) to ``embed_dim`` dimensions and a proxy per class is looked up from y, both
      for the data-to-data cross-entropy (:func:`homogan.losses.data_to_data_cross_entropy`).
      ``return_aux=True`` returns them side by side, ``(batch, 2 · embed_dim)``: the embeddings first.

    Instance noise and DiffAugment are training rules of :class:`homogan.gan.GAN`, not layers here.

    Args:
        image_size: int, side of the input image.
        channels: int, image channels.
        num_labels: int, size of the conditioning vector (0 = unconditional; projection and acgan
            need at least 1).
        width, max_width: ints, channel widths.
        kernel_size: int, kernel of the strided convolutions.
        normalization: "batch", "layer" or "none", after every block but the first (never in D's
            first layer, Radford et al.). Use "layer" or "none" with a gradient penalty.
        activation: "leaky_relu" (with ``leaky_alpha``) or "relu".
        dropout: float, dropout rate after every block (0 = none).
        spectral_norm_variant: "reparameterized" (Miyato et al.; default) or "keras" (Keras 3's wrapper).
        spectral_norm: bool, spectral normalisation of every kernel (also the projection embedding
            and the auxiliary head).
        extra_convs: int, stride-1 3x3 convolutions added in every block but the first.
        conditioning: "concat", "projection", "acgan", "projection_ac", "projection_tac" or "reacgan" (see above).
        embed_dim: int, the embedding's width with "reacgan" (ReACGAN's 512 for CIFAR-10).
    """

    def __init__(self, image_size: int, channels: int, num_labels: int = 0, *, width: int = 64,
                 max_width: int = 512, kernel_size: int = 4, normalization: str = "batch",
                 activation: str = "leaky_relu", leaky_alpha: float = 0.2, dropout: float = 0.0,
                 spectral_norm: bool = False, extra_convs: int = 0, conditioning: str = "concat",
                 spectral_norm_variant: str = "reparameterized", embed_dim: int = 512, **kwargs):
        super().__init__(**kwargs)
        if normalization not in ("batch", "layer", "none"):
            raise ValueError("`normalization` should be 'batch', 'layer' or 'none'. "
                             f"Received: `normalization={normalization!r}`")
        if conditioning not in CONDITIONING:
            raise ValueError(f"`conditioning` should be one of {', '.join(CONDITIONING)}. "
                             f"Received: `conditioning={conditioning!r}`")
        if conditioning != "concat" and num_labels < 1:
            raise ValueError(f"`conditioning={conditioning!r}` needs labels. Received: `num_labels={num_labels}`")
        self._config = dict(image_size=image_size, channels=channels, num_labels=num_labels, width=width,
                            max_width=max_width, kernel_size=kernel_size, normalization=normalization,
                            activation=activation, leaky_alpha=leaky_alpha, dropout=dropout,
                            spectral_norm=spectral_norm, extra_convs=extra_convs, conditioning=conditioning,
                            spectral_norm_variant=spectral_norm_variant, embed_dim=embed_dim)
        self.image_size, self.num_labels, self.conditioning = image_size, num_labels, conditioning
        layers: list[keras.layers.Layer] = []
        for i in range(num_blocks(image_size)):
            filters = min(width * 2**i, max_width)
            for k in range(1 + (extra_convs if i > 0 else 0)):
                # The first conv of a block halves the resolution; extra ones keep it.
                layers.append(maybe_spectral(keras.layers.Conv2D(filters, kernel_size if k == 0 else 3,
                                                                 strides=2 if k == 0 else 1, padding="same",
                                                                 use_bias=i == 0 or normalization == "none"),
                                             spectral_norm, spectral_norm_variant))
                if i > 0 and normalization == "batch":
                    layers.append(BatchNormalization(momentum=0.9))
                elif i > 0 and normalization == "layer":
                    layers.append(keras.layers.LayerNormalization(axis=(-3, -2, -1)))
                layers.append(make_activation(activation, leaky_alpha))
            if dropout > 0:
                layers.append(Dropout(dropout))
        layers.append(keras.layers.Flatten())
        self.blocks = layers
        self.head = maybe_spectral(keras.layers.Dense(1, dtype="float32"), spectral_norm, spectral_norm_variant)
        features = 4 * 4 * min(width * 2 ** (num_blocks(image_size) - 1), max_width)
        self.embedding = self.aux_head = self.twin_head = self.proxies = None
        if conditioning in ("projection", "projection_ac", "projection_tac"):
            self.embedding = maybe_spectral(keras.layers.Dense(features, use_bias=False, dtype="float32",
                                                               name="projection_embedding"), spectral_norm,
                                            spectral_norm_variant)
        if conditioning in ("acgan", "projection_ac", "projection_tac"):
            self.aux_head = maybe_spectral(keras.layers.Dense(num_labels, dtype="float32", name="aux_head"),
                                           spectral_norm, spectral_norm_variant)
        if conditioning == "projection_tac":  # a head of its own, so spectral norm bounds each classifier alone
            self.twin_head = maybe_spectral(keras.layers.Dense(num_labels, dtype="float32", name="twin_head"),
                                            spectral_norm, spectral_norm_variant)
        if conditioning == "reacgan":  # the embedding head and the class proxies (a lookup by the one-hot y)
            self.aux_head = maybe_spectral(keras.layers.Dense(embed_dim, dtype="float32", name="embedding_head"),
                                           spectral_norm, spectral_norm_variant)
            self.proxies = maybe_spectral(keras.layers.Dense(embed_dim, use_bias=False, dtype="float32",
                                                             name="class_proxies"),
                                          spectral_norm, spectral_norm_variant)

    def features(self, images, labels, training=False):
        """φ(x): the flattened last block (label maps appended to the input only for "concat")."""
        x = images
        if self.conditioning == "concat":
            maps = label_maps(keras.ops.cast(labels, x.dtype), self.image_size, self.image_size)
            x = keras.ops.concatenate([x, maps], axis=-1)
        for layer in self.blocks:
            x = layer(x, training=training)
        return keras.ops.cast(x, "float32")

    def call(self, images, labels, training=False, return_aux=False):
        phi = self.features(images, labels, training=training)
        logits = keras.ops.squeeze(keras.ops.cast(self.head(phi, training=training), "float32"), axis=-1)
        if self.embedding is not None:
            projected = keras.ops.cast(self.embedding(keras.ops.cast(labels, "float32"), training=training), "float32")
            logits = logits + keras.ops.sum(projected * phi, axis=-1)
        if self.aux_head is None:
            return (logits, None) if return_aux else logits
        # Computed on every call (not only with return_aux) so that the head is built with the rest.
        aux = keras.ops.cast(self.aux_head(phi, training=training), "float32")
        if self.twin_head is not None:
            twin = keras.ops.cast(self.twin_head(phi, training=training), "float32")
            aux = keras.ops.concatenate([aux, twin], axis=-1)
        if self.proxies is not None:
            proxies = keras.ops.cast(self.proxies(keras.ops.cast(labels, "float32"), training=training), "float32")
            aux = keras.ops.concatenate([aux, proxies], axis=-1)
        return (logits, aux) if return_aux else logits

    def get_config(self):
        return {**super().get_config(), **self._config}

    def get_build_config(self):
        return {"image_size": self.image_size, "channels": self._config["channels"], "num_labels": self.num_labels}

    def build_from_config(self, config):
        """Create the variables (a ``.keras`` archive is loaded into them) by one call on zeros in inference mode."""
        size, channels = self.image_size, self._config["channels"]
        self(keras.ops.zeros((1, size, size, channels)), keras.ops.zeros((1, self.num_labels)))
