"""Spectral normalisation as Miyato et al. (2018) define it: the layer computes with W / σ(W), σ in the graph.

Why not ``keras.layers.SpectralNormalization`` (Keras 3.15): in training mode it *assigns* W / σ into
the kernel variable at every call and then runs the layer on that variable, so no gradient flows
through σ(W), every D call of a step (real, fake, the GP and R1 critics, G's step) runs a power
iteration and rewrites D's weights, and inference uses the last normalised kernel plus the last
optimizer step. PyTorch's ``torch.nn.utils.spectral_norm`` (and StudioGAN, Mimicry, BigGAN) keep the
raw weight as the parameter and normalise it in the forward pass. So does this layer:

* the kernel variable holds the raw W (the optimizer updates W, not W / σ);
* every call computes ``v = normalize(u Wᵀ)`` and ``σ = v W uᵀ = ‖W uᵀ‖`` from the stored ``u``
  (both treated as constants, as in PyTorch) and runs the wrapped layer with ``W / σ`` — the
  gradient flows through σ: ∂σ/∂W = vᵀu;
* ``u`` moves by one power iteration per update of the network (:func:`power_iteration`, called by
  the GAN's train step before the network's forward passes of that update), not per call;
  calling the layer never changes a variable, in training or in inference.

The matrix is the kernel reshaped to ``(-1, kernel.shape[-1])`` and ``u`` is stored as
``vector_u`` (1, kernel.shape[-1]) — the names, shapes and weight order of Keras's wrapper, so a
checkpoint written with Keras's spectral normalisation restores into this layer (its kernel then
holds a W with σ ≈ 1, a valid raw weight). For a transposed convolution that is Keras's grouping
(rows: kernel position × output channel), not PyTorch's ``dim=1``; both are the usual reshaped-matrix
estimates of the operator norm. σ is computed in the variables' dtype: float32 under mixed precision.
"""

from __future__ import annotations

import keras
from keras import ops

#: Power iterations when the layer is built, so that σ is accurate from the first step (as PyTorch does).
INITIAL_ITERATIONS = 15


def _normalize(x):
    return x / ops.maximum(ops.sqrt(ops.sum(ops.square(x))), 1e-12)


@keras.saving.register_keras_serializable(package="homogan")
class SpectralNormalization(keras.layers.Wrapper):
    """Wraps a layer with a ``kernel`` (``Dense``, ``Conv2D``, ``Conv2DTranspose``) so that it computes with
    ``kernel / σ(kernel)``.

    Args:
        layer: the layer to normalise (it keeps its raw kernel as the trainable parameter).
        **kwargs: base layer arguments (``dtype``: the wrapped layer's policy, so a float32 head stays float32).

    Example:
        >>> conv = SpectralNormalization(keras.layers.Conv2D(64, 4, strides=2, padding="same"))
        >>> y = conv(images, training=True)  # no variable changes
        >>> conv.power_iteration()           # once per update of the network (the GAN step does it)

    Reference:
        Miyato, Kataoka, Koyama, Yoshida. Spectral Normalization for Generative Adversarial Networks. ICLR 2018.
    """

    def build(self, input_shape):
        super().build(input_shape)
        if not hasattr(self.layer, "kernel"):
            raise ValueError(f"`layer` should have a `kernel` (Dense, Conv2D, Conv2DTranspose). "
                             f"Received: {type(self.layer).__name__}")
        self.kernel = self.layer.kernel
        self.vector_u = self.add_weight(shape=(1, self.kernel.shape[-1]),
                                        initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                                        trainable=False, name="vector_u", dtype=self.kernel.dtype)
        for _ in range(INITIAL_ITERATIONS):
            self.power_iteration()

    def _matrix(self):
        # The variable's own dtype: float32 under mixed precision (variables are never bf16/fp16 there).
        return ops.reshape(self.kernel.value, (-1, self.kernel.shape[-1]))

    def sigma(self):
        """σ(W) estimated from the stored u: ‖W uᵀ‖ written as v W uᵀ with u, v constant (gradient vᵀu)."""
        w = self._matrix()
        u = ops.stop_gradient(self.vector_u.value)
        v = ops.stop_gradient(_normalize(ops.matmul(u, ops.transpose(w))))
        return ops.squeeze(ops.matmul(ops.matmul(v, w), ops.transpose(u)))

    def power_iteration(self):
        """One power-iteration step of u with the current W (no gradient): call once per update of the network."""
        w = ops.stop_gradient(self._matrix())
        v = _normalize(ops.matmul(self.vector_u.value, ops.transpose(w)))
        self.vector_u.assign(_normalize(ops.matmul(v, w)))

    def call(self, inputs, training=False):
        normalised = self.kernel.value / self.sigma()
        with keras.StatelessScope(state_mapping=[(self.kernel, normalised)]):
            outputs = self.layer(inputs)
        return outputs

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)


def power_iteration(network) -> None:
    """Advance ``u`` of every :class:`SpectralNormalization` layer in ``network`` by one power iteration."""
    for layer in network._flatten_layers(include_self=False):
        if isinstance(layer, SpectralNormalization):
            layer.power_iteration()


def has_spectral_norm(network) -> bool:
    return any(isinstance(layer, SpectralNormalization) for layer in network._flatten_layers(include_self=False))
