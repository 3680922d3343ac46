"""Small building blocks shared by the generator and the discriminator."""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from homogan.config import SPECTRAL_NORM_VARIANTS
from homogan.models.spectral import SpectralNormalization
from homogan.seeds import ReplicaSeedGenerator


def num_blocks(image_size: int) -> int:
    """Resolution steps between the 4x4 map and ``image_size`` (64 px → 4)."""
    n = int(math.log2(image_size)) - 2
    if n < 1 or 4 * 2**n != image_size:
        raise ValueError(f"`image_size` should be a power of two >= 8. Received: `image_size={image_size}`")
    return n


def maybe_spectral(layer: keras.layers.Layer, spectral_norm: bool, variant: str = "reparameterized"
                   ) -> keras.layers.Layer:
    """Wrap a kernel layer in spectral normalisation (top singular value kept at ~1) when asked:
    :class:`homogan.models.spectral.SpectralNormalization` (as the paper and PyTorch define it), or with
    ``variant="keras"`` Keras 3's ``SpectralNormalization`` (which assigns W/σ into the kernel at every
    training call; kept to compare with).

    The wrapper computes in the wrapped layer's dtype policy: a float32 output layer (D's logit
    head) stays float32 under mixed precision instead of being cast back to the input's dtype.
    """
    if not spectral_norm:
        return layer
    if variant == "keras":
        return keras.layers.SpectralNormalization(layer, dtype=layer.dtype_policy)
    if variant != "reparameterized":
        raise ValueError(f"`spectral_norm_variant` should be one of {', '.join(SPECTRAL_NORM_VARIANTS)}. "
                         f"Received: {variant!r}")
    return SpectralNormalization(layer, dtype=layer.dtype_policy)


@keras.saving.register_keras_serializable(package="homogan")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras's batch normalisation, trained with TensorFlow's fused kernel.

    Why: under mixed precision Keras 3 casts every bf16/fp16 activation map to float32, then computes
    the moments and the normalisation as separate element-wise ops — forward and backward, over the
    largest tensors of a DCGAN. ``FusedBatchNormV3`` reads the low-precision map directly (statistics
    and scale/offset in float32) and has a fused gradient. Same weights, config, epsilon and
    moving-average rule (biased batch variance, as Keras); inference, masks, renorm and other
    layouts are left to Keras's own ``call``.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (training and self.trainable and mask is None and not self.renorm and len(inputs.shape) == 4
                   and self.axis in (-1, 3) and inputs.dtype in (tf.float32, tf.bfloat16, tf.float16))
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones((channels,), tf.float32)
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros((channels,), tf.float32)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
        # The kernel returns the Bessel-corrected variance for running averages; Keras averages the
        # biased one (what the batch was normalised with).
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), tf.float32)
        variance = variance * (n - 1.0) / n
        self.moving_mean.assign(self.moving_mean * self.momentum + tf.cast(mean, self.moving_mean.dtype) * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum
                                    + tf.cast(variance, self.moving_variance.dtype) * (1.0 - self.momentum))
        return tf.cast(outputs, self.compute_dtype)


def batch_norm_layers(network) -> list:
    """Every batch-norm layer inside ``network`` (nested ones too: conditional batch norm holds one)."""
    return [layer for layer in network._flatten_layers(include_self=False)
            if isinstance(layer, keras.layers.BatchNormalization)]


def exact_batch_norm_statistics(network, forward, batches) -> None:
    """Set the moving mean and variance of every batch norm in ``network`` to the exact mean of its batch
    statistics over ``batches``: ``forward(batch)`` runs ``network`` in training mode once per batch, with each
    layer's momentum at (k − 1)/k for the k-th, so that moving = the mean of the k batch statistics so far.

    Why: the moving averages a layer keeps while training are measured on weights that kept changing (the last
    ~10 updates at momentum 0.9), which can be far from the statistics of the final weights; Ioffe & Szegedy
    (2015, Alg. 1) compute the inference statistics over the training data with the trained network, and BigGAN's
    "standing statistics" do the same for a generator. The momenta are put back afterwards."""
    layers = batch_norm_layers(network)
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    try:
        for k, batch in enumerate(batches, start=1):
            for layer in layers:
                layer.momentum = (k - 1) / k
            forward(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum


@keras.saving.register_keras_serializable(package="homogan")
class ConditionalBatchNormalization(keras.layers.Layer):
    """Batch normalisation whose gain and bias depend on the labels: ``x̂ · γ(y) + β(y)`` with
    ``γ(y) = γ₀ + W_γ y`` and ``β(y) = β₀ + W_β y`` (de Vries et al. 2017; Miyato & Koyama 2018's
    generator, BigGAN's). With one-hot y each class has its own gain and bias; with attribute vectors
    each attribute adds its own shift. W starts at zero and γ₀, β₀ at 1, 0, so a fresh layer is plain
    batch normalisation and labels only enter once training finds them useful.

    Why: concatenated to z, the labels reach G's first layer only, and every later block must carry them
    through its activations; here they act on every block's features directly — the conditioning that
    class-conditional GANs with a projection discriminator were built with. The statistics are the
    shared ones of :class:`BatchNormalization` (its fused kernel), so the EMA generator's standing
    statistics and inference work as for plain batch norm.
    """

    def __init__(self, channels: int, momentum: float = 0.9, **kwargs):
        super().__init__(**kwargs)
        self.channels, self.momentum = channels, momentum
        self.norm = BatchNormalization(momentum=momentum, center=False, scale=False, dtype=self.dtype_policy)
        self.gain = keras.layers.Dense(channels, kernel_initializer="zeros", bias_initializer="ones",
                                       dtype=self.dtype_policy, name="gain")
        self.bias = keras.layers.Dense(channels, kernel_initializer="zeros", bias_initializer="zeros",
                                       dtype=self.dtype_policy, name="bias")

    def build(self, inputs_shape, labels_shape):
        self.norm.build(inputs_shape)
        self.gain.build(labels_shape)
        self.bias.build(labels_shape)

    def call(self, inputs, labels, training=False):
        x = self.norm(inputs, training=training)
        labels = keras.ops.cast(labels, x.dtype)
        gain = keras.ops.reshape(self.gain(labels), (-1, 1, 1, self.channels))
        bias = keras.ops.reshape(self.bias(labels), (-1, 1, 1, self.channels))
        return x * gain + bias

    def compute_output_shape(self, inputs_shape, labels_shape):
        return inputs_shape

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "momentum": self.momentum}


class _ReplicaRandomLayer(keras.layers.Layer):
    """A weightless layer that perturbs its input in training (``perturb``, drawing from a
    :class:`~homogan.seeds.ReplicaSeedGenerator`) and is the identity at inference.

    Why not Keras's ``GaussianNoise``/``Dropout``: their ``SeedGenerator`` state is one mirrored
    variable, so under ``MirroredStrategy`` every replica draws the *same* noise or mask for its slice
    of the batch (measured in ``tests/test_distribute.py``). The replica seed generator folds the
    replica id into each draw; on one device the draws are exactly Keras's for the same seed.
    """

    def __init__(self, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seed = seed
        self.seed_generator = ReplicaSeedGenerator(seed)
        self.supports_masking = True
        self.built = True  # no weights

    def call(self, inputs, training=False):
        return self.perturb(inputs) if training else inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "seed": self.seed}


@keras.saving.register_keras_serializable(package="homogan")
class GaussianNoise(_ReplicaRandomLayer):
    """Additive N(0, stddev²) noise in training, as ``keras.layers.GaussianNoise``, drawn per replica."""

    def __init__(self, stddev: float, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.stddev = stddev

    def perturb(self, inputs):
        return inputs + keras.random.normal(keras.ops.shape(inputs), stddev=self.stddev, dtype=self.compute_dtype,
                                            seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}


@keras.saving.register_keras_serializable(package="homogan")
class Dropout(_ReplicaRandomLayer):
    """Inverted dropout in training, as ``keras.layers.Dropout``, with its own mask per replica."""

    def __init__(self, rate: float, seed=None, **kwargs):
        super().__init__(seed, **kwargs)
        self.rate = rate

    def perturb(self, inputs):
        return keras.random.dropout(inputs, self.rate, seed=self.seed_generator)

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


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
