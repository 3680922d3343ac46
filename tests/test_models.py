"""Generator and discriminator shapes for 32-128 px and every knob."""

import itertools

import keras
import numpy as np
import pytest

from homogan.models.spectral import SpectralNormalization
from homogan.models import Discriminator, Generator
from homogan.models.blocks import Dropout, GaussianNoise


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("num_labels", [0, 3])
def test_shapes_follow_image_size(size, num_labels):
    g = Generator(size, 3, 16, num_labels, width=8)
    d = Discriminator(size, 3, num_labels, width=8)
    z = np.random.normal(size=(2, 16)).astype("float32")
    y = np.ones((2, num_labels), "float32")
    images = keras.ops.convert_to_numpy(g(z, y))
    assert images.shape == (2, size, size, 3)
    assert np.all(np.abs(images) <= 1.0)
    logits = d(images, y)
    assert tuple(logits.shape) == (2,) and keras.backend.standardize_dtype(logits.dtype) == "float32"
    convs = [layer for layer in g.blocks if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv2D))]
    assert len(convs) == int(np.log2(size)) - 2  # one upsampling per resolution step


GENERATOR_KNOBS = dict(stem=["dense", "conv_transpose"], upsample=["conv_transpose", "upsample_conv"],
                       batch_norm=[True, False], activation=["relu", "leaky_relu"], noise_stddev=[0.0, 0.1],
                       spectral_norm=[False, True])


@pytest.mark.parametrize("knobs", [dict(zip(GENERATOR_KNOBS, v)) for v in itertools.product(*GENERATOR_KNOBS.values())
                                   if sum(a != b[0] for a, b in zip(v, GENERATOR_KNOBS.values())) <= 2])
def test_generator_knobs(knobs):
    g = Generator(32, 1, 8, 2, width=4, kernel_size=3, **knobs)
    out = g(np.zeros((3, 8), "float32"), np.zeros((3, 2), "float32"), training=True)
    assert tuple(out.shape) == (3, 32, 32, 1)
    layers = g.blocks
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers) == knobs["batch_norm"]
    assert any(isinstance(layer, SpectralNormalization) for layer in layers) == knobs["spectral_norm"]
    assert any(isinstance(layer, GaussianNoise) for layer in layers) == (knobs["noise_stddev"] > 0)
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in layers) == (knobs["upsample"] == "upsample_conv")
    assert isinstance(layers[-1], keras.layers.Activation) and layers[-1].dtype_policy.name == "float32"


@pytest.mark.parametrize("normalization", ["batch", "layer", "none"])
@pytest.mark.parametrize("extras", [dict(), dict(dropout=0.3, spectral_norm=True, activation="relu")])
def test_discriminator_knobs_and_no_norm_in_first_layer(normalization, extras):
    d = Discriminator(64, 3, 2, width=4, normalization=normalization, **extras)
    out = d(np.zeros((2, 64, 64, 3), "float32"), np.zeros((2, 2), "float32"), training=True)
    assert tuple(out.shape) == (2,)
    first_conv = next(i for i, layer in enumerate(d.blocks) if "conv" in layer.name or "spectral" in layer.name)
    assert not isinstance(d.blocks[first_conv + 1], (keras.layers.BatchNormalization, keras.layers.LayerNormalization))
    norm = {"batch": keras.layers.BatchNormalization, "layer": keras.layers.LayerNormalization}.get(normalization)
    if norm:
        assert sum(isinstance(layer, norm) for layer in d.blocks) == 3  # 4 blocks, all but the first
    assert any(isinstance(layer, Dropout) for layer in d.blocks) == ("dropout" in extras)
    assert not any(isinstance(layer, (GaussianNoise, keras.layers.GaussianNoise)) for layer in d.layers)  # noise is a training rule


def test_widths_double_and_cap():
    d = Discriminator(128, 3, 0, width=64, max_width=256)
    d(np.zeros((1, 128, 128, 3), "float32"), np.zeros((1, 0), "float32"))
    filters = [layer.filters for layer in d.blocks if isinstance(layer, keras.layers.Conv2D)]
    assert filters == [64, 128, 256, 256, 256]
    g = Generator(64, 3, 100, 0, width=64)
    g(np.zeros((1, 100), "float32"), np.zeros((1, 0), "float32"))
    filters = [layer.filters for layer in g.blocks if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert filters == [256, 128, 64, 3]  # after the 4x4x512 dense stem (Radford et al.)
    assert g.get_config()["width"] == 64 and Generator(**{k: v for k, v in g.get_config().items()
                                                          if k not in ("name", "trainable", "dtype")})


def test_labels_change_the_output():
    g = Generator(32, 3, 8, 2, width=4)
    z = np.random.normal(size=(1, 8)).astype("float32")
    a = keras.ops.convert_to_numpy(g(z, np.array([[0, 0]], "float32")))
    b = keras.ops.convert_to_numpy(g(z, np.array([[1, 0]], "float32")))
    assert np.abs(a - b).max() > 1e-4


def test_bad_sizes_and_names_are_refused():
    with pytest.raises(ValueError, match="image_size=48"):
        Generator(48, 3, 8)
    with pytest.raises(ValueError, match="stem='fc'"):
        Generator(32, 3, 8, stem="fc")
    with pytest.raises(ValueError, match="normalization='instance'"):
        Discriminator(32, 3, normalization="instance")
    with pytest.raises(ValueError, match="conditioning='film'"):
        Discriminator(32, 3, 2, conditioning="film")
    with pytest.raises(ValueError, match="needs labels"):
        Discriminator(32, 3, 0, conditioning="projection")


def test_extra_convs_add_depth_not_resolution():
    g = Generator(32, 3, 8, 0, width=4, extra_convs=2)
    d = Discriminator(32, 3, 0, width=4, extra_convs=1)
    out = g(np.zeros((1, 8), "float32"), np.zeros((1, 0), "float32"))
    assert tuple(out.shape) == (1, 32, 32, 3) and tuple(d(out, np.zeros((1, 0), "float32")).shape) == (1,)
    assert sum(isinstance(layer, keras.layers.Conv2D) and not isinstance(layer, keras.layers.Conv2DTranspose)
               for layer in g.blocks) == 2 * 2  # 2 hidden blocks at 32 px, 2 extra each
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in d.blocks) == 3 + 2


def spectral_layers(model):
    return [layer for layer in model._flatten_layers() if isinstance(layer, SpectralNormalization)]


def test_spectral_norm_keeps_every_top_singular_value_near_one():
    """After power iterations (one per update of a network, homogan.models.spectral) every layer of G and
    D — the projection embedding included — computes with W/σ whose true top singular value (numpy SVD)
    is ~1, whatever the kernel's scale."""
    from homogan.models import spectral

    g = Generator(32, 3, 8, 2, width=4, spectral_norm=True, batch_norm=False)
    d = Discriminator(32, 3, 2, width=4, spectral_norm=True, normalization="none", conditioning="projection")
    z, y = np.random.normal(size=(4, 8)).astype("float32"), np.ones((4, 2), "float32")
    d(g(z, y), y)
    layers = spectral_layers(g) + spectral_layers(d)
    assert len(layers) == 4 + 5  # G: dense stem + 3 upsamplings; D: 3 convs + head + embedding
    for layer in layers:
        layer.kernel.assign(layer.kernel * 5.0)  # far from normalised
    for _ in range(30):  # one power iteration per update; small spectral gaps converge slowly
        spectral.power_iteration(g)
        spectral.power_iteration(d)
    for layer in layers:
        kernel = keras.ops.convert_to_numpy(layer.kernel) / float(layer.sigma())
        top = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert 0.99 < top < 1.05, (layer.name, top)  # the estimate σ never exceeds the truth: W/σ ≥ 1


@pytest.mark.parametrize("conditioning", ["projection", "acgan", "projection_ac", "projection_tac"])
def test_projection_and_acgan_heads(conditioning):
    d = Discriminator(32, 3, 3, width=4, normalization="none", conditioning=conditioning)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    y0, y1 = np.zeros((2, 3), "float32"), np.array([[1, 0, 1], [0, 1, 0]], "float32")
    logits, aux = d(x, y1, return_aux=True)
    assert tuple(logits.shape) == (2,)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(d(x, y1)), keras.ops.convert_to_numpy(logits), rtol=1e-6)
    first_conv = next(layer for layer in d.blocks if isinstance(layer, keras.layers.Conv2D))
    assert first_conv.kernel.shape[2] == 3  # no label maps at the input
    if conditioning != "acgan":
        # logit(y) - logit(0) = <E y, phi(x)> exactly: the labels enter only through the projection.
        phi = keras.ops.convert_to_numpy(d.features(x, y1))
        embed = keras.ops.convert_to_numpy(d.embedding.kernel)
        diff = keras.ops.convert_to_numpy(d(x, y1) - d(x, y0))
        np.testing.assert_allclose(diff, np.sum((y1 @ embed) * phi, axis=1), rtol=1e-4, atol=1e-5)
        assert np.abs(diff).max() > 1e-4
    else:
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(d(x, y0)), keras.ops.convert_to_numpy(d(x, y1)))
    if conditioning == "projection":
        assert aux is None
    else:
        # The auxiliary head (and TAC's twin, a head of its own, its logits after the classifier's) reads the
        # same features phi(x), and not the labels.
        heads = [d.aux_head] + ([d.twin_head] if conditioning == "projection_tac" else [])
        assert tuple(aux.shape) == (2, 3 * len(heads))
        _, aux0 = d(x, y0, return_aux=True)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(aux0), keras.ops.convert_to_numpy(aux))
        phi = keras.ops.convert_to_numpy(d.features(x, y1))
        expected = [phi @ keras.ops.convert_to_numpy(h.kernel) + keras.ops.convert_to_numpy(h.bias) for h in heads]
        np.testing.assert_allclose(keras.ops.convert_to_numpy(aux), np.concatenate(expected, axis=1), rtol=1e-4,
                                   atol=1e-5)
        if len(heads) == 2:
            assert np.abs(expected[0] - expected[1]).max() > 1e-3  # two classifiers, not one head twice


def test_reacgan_head_embeds_the_features_and_looks_up_a_proxy_per_class():
    """reacgan (Kang et al. 2021): the logit ignores the labels; the auxiliary output is the embedding head on
    φ(x), then the proxies of the labels (a lookup: the same for any image)."""
    d = Discriminator(32, 3, 3, width=4, normalization="none", conditioning="reacgan", embed_dim=5)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    y0, y1 = np.eye(3, dtype="float32")[[0, 1]], np.eye(3, dtype="float32")[[2, 2]]
    logits, aux = d(x, y0, return_aux=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(d(x, y1)), keras.ops.convert_to_numpy(logits))
    assert tuple(aux.shape) == (2, 10)
    aux = keras.ops.convert_to_numpy(aux)
    phi = keras.ops.convert_to_numpy(d.features(x, y0))
    head = keras.ops.convert_to_numpy(d.aux_head.kernel), keras.ops.convert_to_numpy(d.aux_head.bias)
    np.testing.assert_allclose(aux[:, :5], phi @ head[0] + head[1], rtol=1e-4, atol=1e-5)
    proxies = keras.ops.convert_to_numpy(d.proxies.kernel)
    np.testing.assert_allclose(aux[:, 5:], y0 @ proxies, rtol=1e-5, atol=1e-6)
    _, other = d(x[::-1], y0, return_aux=True)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(other)[:, 5:], aux[:, 5:])  # proxies: labels only
    assert d.get_config()["embed_dim"] == 5


@pytest.mark.parametrize("conditioning", ["concat", "projection", "acgan", "projection_ac", "projection_tac",
                                          "reacgan"])
def test_logits_stay_float32_under_mixed_precision_with_spectral_norm(conditioning):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        d = Discriminator(32, 3, 2, width=4, normalization="none", spectral_norm=True, conditioning=conditioning)
        logits, aux = d(np.zeros((2, 32, 32, 3), "float32"), np.ones((2, 2), "float32"), training=True,
                        return_aux=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert keras.backend.standardize_dtype(logits.dtype) == "float32"
    assert aux is None or keras.backend.standardize_dtype(aux.dtype) == "float32"


def test_fused_batch_norm_matches_keras_batch_norm_forward_backward_and_moving_stats():
    """blocks.BatchNormalization trains with TF's fused kernel: it must compute what Keras's layer
    computes — outputs, gradients for x, gamma and beta, and the moving averages (biased variance)."""
    import tensorflow as tf

    from homogan.models.blocks import BatchNormalization

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, (8, 5, 5, 6)).astype("float32"))
    upstream = tf.constant(rng.normal(size=(8, 5, 5, 6)).astype("float32"))
    results = []
    for layer in (keras.layers.BatchNormalization(momentum=0.9), BatchNormalization(momentum=0.9)):
        layer.build(x.shape)
        layer.gamma.assign(np.linspace(0.5, 1.5, 6, dtype="float32"))
        layer.beta.assign(np.linspace(-1, 1, 6, dtype="float32"))
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * upstream)
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results.append([y, *grads, layer.moving_mean, layer.moving_variance, layer(x, training=False)])
    names = ["output", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance", "inference output"]
    for name, a, b in zip(names, *results):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4, err_msg=name)
    assert not np.allclose(np.asarray(results[0][5]), 1.0)  # the moving variance did move


def test_fused_batch_norm_runs_in_bfloat16_with_float32_statistics():
    import tensorflow as tf

    from homogan.models.blocks import BatchNormalization

    x = tf.random.stateless_normal((4, 8, 8, 3), seed=(1, 2)) * 2 + 1
    layer = BatchNormalization(dtype="mixed_bfloat16")
    y = layer(tf.cast(x, tf.bfloat16), training=True)
    reference = keras.layers.BatchNormalization()(x, training=True)
    assert y.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    np.testing.assert_allclose(np.asarray(tf.cast(y, tf.float32)), np.asarray(reference), atol=0.05)


def test_conditional_batch_norm_is_batch_norm_with_a_gain_and_bias_per_label():
    """x̂ · (γ₀ + W_γ y) + (β₀ + W_β y), x̂ normalised with the batch's biased moments and Keras's epsilon
    (as de Vries et al. 2017 and Miyato & Koyama 2018's categorical conditional BN for one-hot y); a fresh
    layer is plain batch norm whatever the labels; the labels get a gradient path through W."""
    import tensorflow as tf

    from homogan.models.blocks import ConditionalBatchNormalization

    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, (6, 4, 4, 5)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    layer = ConditionalBatchNormalization(5)
    fresh = np.asarray(layer(x, y, training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    normalised = (x - mean) / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(fresh, normalised, atol=1e-4)

    wg, g0, wb, b0 = (rng.normal(size=shape).astype("float32") for shape in ((3, 5), (5,), (3, 5), (5,)))
    layer.gain.set_weights([wg, g0])
    layer.bias.set_weights([wb, b0])
    with tf.GradientTape() as tape:
        out = layer(x, y, training=True)
        loss = tf.reduce_sum(out * x)
    expected = normalised * (y @ wg + g0)[:, None, None, :] + (y @ wb + b0)[:, None, None, :]
    np.testing.assert_allclose(np.asarray(out), expected, atol=1e-4)
    grads = tape.gradient(loss, [layer.gain.kernel, layer.bias.kernel])
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    # Moving statistics are the shared batch norm's, updated as plain batch norm's: two training calls, momentum 0.9.
    np.testing.assert_allclose(np.asarray(layer.norm.moving_mean), (1 - 0.9 ** 2) * mean, rtol=1e-4)


def test_conditional_bn_generator_round_trips_and_uses_labels_in_every_block():
    from homogan.models.blocks import ConditionalBatchNormalization
    from homogan.models.inference import batch_norm_layers

    g = Generator(32, 3, 8, 3, width=4, conditioning="conditional_bn")
    g.build_from_config(g.get_build_config())
    cbn = [layer for layer in g.blocks if isinstance(layer, ConditionalBatchNormalization)]
    assert len(cbn) == 3 and not any(isinstance(layer, keras.layers.BatchNormalization) for layer in g.blocks)
    assert len(batch_norm_layers(g)) == 3  # the EMA generator's standing statistics find them
    z = np.random.default_rng(1).normal(size=(2, 8)).astype("float32")
    y0, y1 = np.zeros((2, 3), "float32"), np.eye(3, dtype="float32")[[0, 1]]
    for layer in cbn[1:]:  # labels reach a block past the stem only through its own gain and bias
        layer.bias.kernel.assign(np.ones(layer.bias.kernel.shape, "float32"))
    g.blocks[0].kernel.assign(np.zeros(g.blocks[0].kernel.shape, "float32"))  # the stem ignores z and labels
    assert np.abs(np.asarray(g(z, y0)) - np.asarray(g(z, y1))).max() > 1e-4
    clone = Generator.from_config(g.get_config())
    clone.build_from_config(g.get_build_config())
    clone.set_weights(g.get_weights())
    np.testing.assert_allclose(np.asarray(clone(z, y1)), np.asarray(g(z, y1)), atol=1e-6)
    with pytest.raises(ValueError, match="needs labels and batch norm"):
        Generator(32, 3, 8, 0, conditioning="conditional_bn")
    with pytest.raises(ValueError, match="needs labels and batch norm"):
        Generator(32, 3, 8, 2, batch_norm=False, conditioning="conditional_bn")


def test_models_use_the_fused_batch_norm():
    from homogan.models.blocks import BatchNormalization

    g, d = Generator(32, 3, 8, 0, width=4), Discriminator(32, 3, 0, width=4)
    assert any(isinstance(layer, BatchNormalization) for layer in g.blocks)
    assert any(isinstance(layer, BatchNormalization) for layer in d.blocks)


def test_noise_and_dropout_layers_match_keras_on_one_device():
    """blocks.GaussianNoise/Dropout (per-replica draws under tf.distribute, tested in
    test_distribute) draw on one device exactly what Keras's layers draw for the same seed, are the
    identity at inference, keep their config, and are what the networks use."""
    import tensorflow as tf

    x = tf.ones((64, 32))
    for ours, theirs in ((GaussianNoise(0.3, seed=4), keras.layers.GaussianNoise(0.3, seed=4)),
                         (Dropout(0.25, seed=4), keras.layers.Dropout(0.25, seed=4))):
        first = np.asarray(ours(x, training=True))
        np.testing.assert_array_equal(first, np.asarray(theirs(x, training=True)))
        assert not np.array_equal(first, np.asarray(ours(x, training=True)))  # fresh draws per call
        np.testing.assert_array_equal(np.asarray(ours(x, training=False)), np.asarray(x))
        clone = type(ours).from_config(ours.get_config())
        assert clone.get_config() == ours.get_config()
    noise = np.asarray(GaussianNoise(0.3, seed=1)(tf.zeros((200, 100)), training=True))
    assert abs(noise.std() - 0.3) < 0.01
    kept = np.asarray(Dropout(0.25, seed=1)(tf.ones((200, 100)), training=True))
    assert abs((kept == 0).mean() - 0.25) < 0.01 and np.allclose(kept[kept > 0], 1 / 0.75)
    g = Generator(32, 3, 8, 0, width=4, noise_stddev=0.1)
    d = Discriminator(32, 3, 0, width=4, dropout=0.2)
    assert any(isinstance(layer, GaussianNoise) for layer in g.blocks)
    assert any(isinstance(layer, Dropout) for layer in d.blocks)


def test_every_saved_layer_class_is_registered_under_its_own_name():
    """A registration that slips onto a neighbouring function (as it once did onto a helper placed
    between the decorator and ``ConditionalBatchNormalization``) leaves the class unloadable by name."""
    from homogan.models import blocks, spectral

    classes = [blocks.BatchNormalization, blocks.ConditionalBatchNormalization, blocks.GaussianNoise,
               blocks.Dropout, spectral.SpectralNormalization, Generator, Discriminator]
    for cls in classes:
        assert keras.saving.get_registered_object(f"homogan>{cls.__name__}") is cls, cls.__name__
    assert keras.saving.get_registered_object("homogan>batch_norm_layers") is None
