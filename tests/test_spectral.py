"""Spectral normalisation as Miyato et al. define it (homogan.models.spectral), against the SVD, finite
differences, and Keras 3's wrapper (which assigned W/σ into the kernel at every call)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from homogan.models import spectral
from homogan.models.spectral import SpectralNormalization


def top_singular_value(kernel):
    k = np.asarray(kernel, np.float64)
    return np.linalg.svd(k.reshape(-1, k.shape[-1]), compute_uv=False)[0]


@pytest.mark.parametrize("make", [lambda: keras.layers.Dense(7), lambda: keras.layers.Conv2D(5, 3, padding="same"),
                                  lambda: keras.layers.Conv2DTranspose(5, 4, strides=2, padding="same")],
                         ids=["dense", "conv", "conv_transpose"])
def test_sigma_is_the_top_singular_value_and_the_normalised_kernel_has_norm_one(make):
    layer = SpectralNormalization(make())
    x = tf.random.stateless_normal((2, 6, 6, 3) if not isinstance(layer.layer, keras.layers.Dense) else (2, 11), (1, 2))
    layer(x)
    layer.kernel.assign(layer.kernel * 3.7)  # far from σ = 1
    for _ in range(60):
        layer.power_iteration()
    true = top_singular_value(layer.kernel.numpy())
    assert float(layer.sigma()) == pytest.approx(true, rel=1e-4)
    assert top_singular_value(layer.kernel.numpy() / float(layer.sigma())) == pytest.approx(1.0, rel=1e-4)


def test_the_normalised_kernel_keeps_norm_one_while_training_moves_w():
    """During training W moves a little per step (Adam at a GAN's 2e-4 ... 1e-3) and u by one power
    iteration per update: W/σ keeps its top singular value at 1 after many updates."""
    layer = SpectralNormalization(keras.layers.Dense(16))
    x = tf.random.stateless_normal((32, 24), (3, 4))
    layer(x)
    opt = keras.optimizers.Adam(1e-3)
    target = tf.random.stateless_normal((32, 16), (5, 6))
    for _ in range(300):
        layer.power_iteration()
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((layer(x, training=True) - target) ** 2)
        opt.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
    assert float(loss) < 0.9 * float(tf.reduce_mean(target ** 2))  # it did train
    assert top_singular_value(layer.kernel.numpy() / float(layer.sigma())) == pytest.approx(1.0, rel=0.01)


def test_the_gradient_flows_through_sigma_and_matches_finite_differences():
    layer = SpectralNormalization(keras.layers.Conv2D(3, 3, padding="same", use_bias=False))
    x = tf.random.stateless_normal((2, 5, 5, 2), (7, 8), dtype=tf.float64)
    keras.mixed_precision.set_global_policy("float64")
    try:
        layer = SpectralNormalization(keras.layers.Conv2D(3, 3, padding="same", use_bias=False, dtype="float64"),
                                      dtype="float64")
        layer(x)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    r = tf.random.stateless_normal((2, 5, 5, 3), (9, 10), dtype=tf.float64)

    def f():
        return tf.reduce_sum(tf.cast(layer(x), tf.float64) * r)

    with tf.GradientTape() as tape:
        value = f()
    grad = tape.gradient(value, layer.kernel).numpy()
    w0 = layer.kernel.numpy()
    rng = np.random.default_rng(0)
    for _ in range(6):
        idx = tuple(rng.integers(0, n) for n in w0.shape)
        eps = 1e-6
        for sign in (1, -1):
            w = w0.copy()
            w[idx] += sign * eps
            layer.kernel.assign(w)
            if sign == 1:
                up = float(f())
            else:
                down = float(f())
        layer.kernel.assign(w0)
        assert (up - down) / (2 * eps) == pytest.approx(grad[idx], rel=1e-5, abs=1e-8)
    # Without the σ term the gradient would be r·x only: the two differ (σ really is in the graph).
    with tf.GradientTape() as tape:
        plain = tf.reduce_sum(tf.nn.conv2d(x, layer.kernel / tf.stop_gradient(layer.sigma()), 1, "SAME") * r)
    assert not np.allclose(tape.gradient(plain, layer.kernel).numpy(), grad)


def test_calls_never_change_a_variable_in_training_or_inference():
    from homogan.models import Discriminator

    d = Discriminator(32, 3, 0, width=8, spectral_norm=True, normalization="none", name="d")
    x = tf.random.stateless_uniform((4, 32, 32, 3), (1, 1), -1, 1)
    y = tf.zeros((4, 0))
    d(x, y)
    before = [v.numpy().copy() for v in d.variables]
    for training in (False, True, True):
        d(x, y, training=training)
    assert all(np.array_equal(a, v.numpy()) for a, v in zip(before, d.variables))


def one_power_iteration(u, kernel):
    w = kernel.reshape(-1, kernel.shape[-1])
    v = u @ w.T
    v /= np.linalg.norm(v)
    u = v @ w
    return u / np.linalg.norm(u)


@pytest.mark.parametrize("mode, extra", [("alternating", dict(gradient_penalty=10.0, loss="wasserstein")),
                                         ("simultaneous", {}), ("alternating", dict(r1_gamma=1.0))],
                         ids=["alternating+gp", "simultaneous", "alternating+r1"])
def test_a_training_step_advances_u_once_however_often_d_is_called(mode, extra):
    """One step calls D on the real batch, the fakes, the penalty's inputs and (alternating) G's fakes;
    u must move by exactly one power iteration, taken with D's weights from before the update."""
    from homogan.gan import GAN
    from homogan.models import Discriminator, Generator

    g = Generator(32, 3, 8, 0, width=8, name="g")
    d = Discriminator(32, 3, 0, width=8, spectral_norm=True, normalization="none", name="d")
    d(g(tf.zeros((2, 8)), tf.zeros((2, 0))), tf.zeros((2, 0)))
    gan = GAN(g, d, seed=1)
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    gan.compile(g_opt, d_opt, update_mode=mode, global_batch_size=4, **extra)
    layers = [la for la in d._flatten_layers(include_self=False) if isinstance(la, SpectralNormalization)]
    assert len(layers) == 4  # three convs and the head
    before = [(la.vector_u.numpy().copy(), la.kernel.numpy().copy()) for la in layers]
    real = tf.random.stateless_uniform((4, 32, 32, 3), (2, 2), -1, 1)
    tf.function(gan.train_step)((real, tf.zeros((4, 0))))
    for la, (u, kernel) in zip(layers, before):
        np.testing.assert_allclose(la.vector_u.numpy(), one_power_iteration(u, kernel), rtol=1e-4, atol=1e-6)
        assert not np.array_equal(la.kernel.numpy(), kernel)  # W itself was updated by the optimizer


def test_keras_variant_is_still_available_and_rewrites_the_kernel_at_every_training_call():
    from homogan.models import Discriminator

    d = Discriminator(32, 3, 0, width=8, spectral_norm=True, normalization="none", spectral_norm_variant="keras")
    x = tf.random.stateless_uniform((4, 32, 32, 3), (1, 1), -1, 1)
    d(x, tf.zeros((4, 0)))
    before = d.blocks[0].kernel.numpy().copy()
    d(x, tf.zeros((4, 0)), training=True)
    assert not np.array_equal(before, d.blocks[0].kernel.numpy())
    assert isinstance(d.blocks[0], keras.layers.SpectralNormalization)


def test_a_checkpoint_written_with_keras_spectral_norm_restores_into_the_new_layer(tmp_path):
    """Runs trained before the new layer (Keras's wrapper) resume: same names, shapes and weight order."""
    from homogan.models import Discriminator

    old = Discriminator(32, 3, 2, width=8, spectral_norm=True, normalization="none", spectral_norm_variant="keras",
                        conditioning="projection")
    new = Discriminator(32, 3, 2, width=8, spectral_norm=True, normalization="none", conditioning="projection")
    x, y = tf.random.stateless_uniform((4, 32, 32, 3), (1, 1), -1, 1), tf.ones((4, 2))
    old(x, y, training=True)
    new(x, y)
    assert [v.shape for v in old.weights] == [v.shape for v in new.weights]
    path = tf.train.Checkpoint(discriminator=old, discriminator_weights=list(old.weights)).write(str(tmp_path / "c"))
    tf.train.Checkpoint(discriminator=new, discriminator_weights=list(new.weights)).read(path) \
        .assert_existing_objects_matched()
    for a, b in zip(old.weights, new.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert spectral.has_spectral_norm(new) and not spectral.has_spectral_norm(old)


def test_spectral_norm_layer_round_trips_through_get_config():
    layer = SpectralNormalization(keras.layers.Dense(3))
    layer(tf.zeros((1, 4)))
    again = SpectralNormalization.from_config(layer.get_config())
    assert isinstance(again, SpectralNormalization) and again.layer.units == 3
