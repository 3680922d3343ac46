"""The train step's rules: per-sample per-step smoothing, flips, G:D ratios, the skip rule, EMA,
the per-sample uniform GP epsilon, and repeatability from the seed."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from homogan import regularizers
from homogan.gan import GAN
from homogan.models import Discriminator, Generator


def make_gan(seed=0, ema=False, **compile_args):
    keras.utils.set_random_seed(seed)
    g = Generator(32, 3, 8, 2, width=4)
    d = Discriminator(32, 3, 2, width=4, normalization=compile_args.pop("normalization", "batch"))
    z, y = np.zeros((2, 8), "float32"), np.zeros((2, 2), "float32")
    d(g(z, y), y)
    ema_g = None
    if ema:
        ema_g = Generator(32, 3, 8, 2, width=4)
        ema_g(z, y)
        ema_g.set_weights(g.get_weights())
    gan = GAN(g, d, ema_generator=ema_g, seed=seed)
    g_opt, d_opt = keras.optimizers.Adam(1e-3, 0.5), keras.optimizers.Adam(1e-3, 0.5)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    gan.compile(g_opt, d_opt, **compile_args)
    return gan


def data(n=16, seed=1):
    rng = np.random.default_rng(seed)
    return (rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32"), (rng.random((n, 2)) > 0.5).astype("float32"))


def dataset(batch, steps, seed=1):
    x, y = data(batch * steps, seed)
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch)


def test_smoothed_targets_are_drawn_per_sample_and_per_step_inside_tf_function():
    gan = make_gan(real_label_range=(0.9, 1.0), fake_label_range=(0.0, 0.1))
    draw = tf.function(gan.discriminator_targets)
    (r1, f1), (r2, f2) = draw(64), draw(64)
    for r, f in ((r1, f1), (r2, f2)):
        assert np.all((r.numpy() >= 0.9) & (r.numpy() <= 1.0)) and np.all((f.numpy() >= 0) & (f.numpy() <= 0.1))
        assert len(np.unique(r.numpy())) > 60  # one value per sample
    assert not np.allclose(r1.numpy(), r2.numpy())  # a new draw per call, not frozen at trace time
    assert draw.experimental_get_tracing_count() == 1


def test_label_flip_swaps_the_configured_fraction_per_step():
    gan = make_gan(label_flip=0.2)
    draw = tf.function(gan.discriminator_targets)
    fractions, masks = [], []
    for _ in range(5):
        real_t, fake_t = draw(2000)
        flipped = real_t.numpy() == 0.0
        assert np.array_equal(flipped, fake_t.numpy() == 1.0)
        fractions.append(flipped.mean())
        masks.append(flipped)
    assert all(0.17 < f < 0.23 for f in fractions)
    assert not np.array_equal(masks[0], masks[1])


@pytest.mark.parametrize("g_steps, d_steps", [(1, 3), (3, 1), (1, 1), (2, 2)])
def test_g_d_step_ratio(g_steps, d_steps):
    gan = make_gan(g_steps=g_steps, d_steps=d_steps)
    gan.fit(dataset(4 * d_steps, 2), epochs=1, verbose=0)  # 2 training steps
    assert int(gan.g_optimizer.iterations.numpy()) == 2 * g_steps
    assert int(gan.d_optimizer.iterations.numpy()) == 2 * d_steps


def test_each_discriminator_step_sees_its_own_real_slice(monkeypatch):
    gan = make_gan(d_steps=3)
    seen = []
    original = gan.discriminator_step

    def spy(real, labels):
        seen.append(real.numpy().copy())
        return original(real, labels)

    monkeypatch.setattr(gan, "discriminator_step", spy)
    gan.run_eagerly = True
    x, y = data(12)
    gan.train_step((tf.constant(x), tf.constant(y)))
    assert len(seen) == 3 and all(s.shape[0] == 4 for s in seen)
    np.testing.assert_array_equal(np.concatenate(seen), x)


def test_skip_rule_freezes_d_while_g_loss_is_high():
    gan = make_gan(d_skip_threshold=4.0)
    before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    gan.last_g_loss.assign(10.0)
    step = tf.function(gan.train_step)
    x, y = data(8)
    logs = step((x, y))
    assert float(logs["d_updates"]) == 0.0
    assert int(gan.d_optimizer.iterations.numpy()) == 0
    for a, w in zip(before, gan.discriminator.trainable_weights):
        np.testing.assert_array_equal(a, w.numpy())
    gan.last_g_loss.assign(1.0)
    gan.reset_metrics()
    logs = step((x, y))
    assert float(logs["d_updates"]) == 1.0 and int(gan.d_optimizer.iterations.numpy()) == 1


def test_d_updates_move_d_towards_real():
    """D-only updates (loss sign right) raise D's score of real images above its score of fakes."""
    gan = make_gan(normalization="none")
    x, y = data(16)
    z = gan.sample_latent(16)

    def margin():
        return float(tf.reduce_mean(gan.discriminator(x, y)) - tf.reduce_mean(gan.discriminator(gan.generate(y, z=z), y)))

    before = margin()
    for _ in range(20):
        gan.discriminator_step(tf.constant(x), tf.constant(y))
    assert margin() > before + 1.0


def test_ema_matches_closed_form():
    gan = make_gan(ema=True, ema_decay=0.9)
    w0 = [w.numpy().copy() for w in gan.ema_generator.trainable_weights]
    targets = [np.full_like(w, 2.0) for w in w0]
    for w, t in zip(gan.generator.trainable_weights, targets):
        w.assign(t)
    for _ in range(5):
        gan.update_ema()
    for e, e0, t in zip(gan.ema_generator.trainable_weights, w0, targets):
        np.testing.assert_allclose(e.numpy(), t + 0.9 ** 5 * (e0 - t), rtol=1e-5, atol=1e-6)


def test_gradient_penalty_epsilon_is_uniform_and_per_sample(monkeypatch):
    gan = make_gan(gradient_penalty=10.0, normalization="layer")
    seen = []
    original = regularizers.gradient_penalty

    def spy(critic, real, fake, epsilon):
        seen.append(epsilon.numpy())
        return original(critic, real, fake, epsilon)

    monkeypatch.setattr(regularizers, "gradient_penalty", spy)
    x, y = data(256)
    for _ in range(2):
        stats = gan.discriminator_step(tf.constant(x), tf.constant(y))
    assert np.isfinite(float(stats["gradient_penalty"]))
    eps = seen[0]
    assert eps.shape == (256, 1, 1, 1)
    assert eps.min() >= 0.0 and eps.max() < 1.0 and 0.4 < eps.mean() < 0.6
    assert abs(np.mean(eps < 0.25) - 0.25) < 0.08  # uniform, not a squashed normal
    assert not np.array_equal(seen[0], seen[1])


def test_same_seed_same_weights():
    weights = []
    for _ in range(2):
        gan = make_gan(seed=7, real_label_range=(0.9, 1.0), label_flip=0.05)
        gan.fit(dataset(8, 3), epochs=1, verbose=0)
        weights.append([w.numpy() for w in gan.generator.weights])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
    other = make_gan(seed=8)
    other.fit(dataset(8, 3), epochs=1, verbose=0)
    assert not all(np.array_equal(a, w.numpy()) for a, w in zip(weights[0], other.generator.weights))


@pytest.mark.parametrize("update_mode", ["alternating", "simultaneous"])
def test_uint8_batches_train_exactly_like_their_float_unit_range(update_mode):
    """The pipeline delivers uint8 pixels; the step scales them to [-1, 1] itself (x / 127.5 - 1)."""
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    labels = (rng.random((16, 2)) > 0.5).astype("float32")
    weights = []
    for x in (pixels, pixels.astype("float32") / 127.5 - 1.0):
        gan = make_gan(seed=5, update_mode=update_mode)
        gan.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(8), epochs=1, verbose=0)
        weights.append([w.numpy() for w in gan.generator.weights + gan.discriminator.weights])
    for a, b in zip(*weights):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)  # last-ulp rounding of the scaling
    # ... and pixels misread as [0, 255] floats would have trained something else entirely.
    wrong = make_gan(seed=5, update_mode=update_mode)
    wrong.fit(tf.data.Dataset.from_tensor_slices((pixels.astype("float32"), labels)).batch(8), epochs=1, verbose=0)
    assert not np.allclose(weights[0][-1], wrong.discriminator.weights[-1].numpy())


def test_metrics_are_the_documented_names_and_reset_each_epoch():
    gan = make_gan()
    history = gan.fit(dataset(8, 2), epochs=2, verbose=0).history
    for name in ("g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake"):
        assert len(history[name]) == 2 and all(np.isfinite(history[name]))
    assert all(m.count.numpy() == 2 for m in gan.metrics)  # 2 steps of the last epoch only


def test_ema_start_step_copies_then_averages_closed_form():
    """ema_n = w_n for the first S G updates, then ema_n = d·ema_{n-1} + (1-d)·w_n (in-graph counter)."""
    gan = make_gan(ema=True, ema_decay=0.9, ema_start_step=3)
    step = tf.function(gan.generator_step)
    y = tf.constant(data(4)[1])
    seen = []
    for n in range(1, 7):
        step(y)
        seen.append([w.numpy().copy() for w in gan.generator.trainable_weights])
        if n <= 3:
            for e, w in zip(gan.ema_generator.trainable_weights, seen[-1]):
                np.testing.assert_array_equal(e.numpy(), w)
    w3, w4, w5, w6 = seen[2:]
    for i, e in enumerate(gan.ema_generator.trainable_weights):
        expected = 0.9**3 * w3[i] + 0.1 * (0.9**2 * w4[i] + 0.9 * w5[i] + w6[i])
        np.testing.assert_allclose(e.numpy(), expected, rtol=1e-5, atol=1e-7)
    assert not np.allclose(gan.ema_generator.trainable_weights[0].numpy(), w6[0])  # really averaging now
    for e, w in zip(gan.ema_generator.non_trainable_weights, gan.generator.non_trainable_weights):
        np.testing.assert_array_equal(e.numpy(), w.numpy())  # BN statistics copied


def test_instance_noise_sigma_follows_the_linear_schedule_per_training_step():
    gan = make_gan(instance_noise_stddev=0.4, instance_noise_anneal_steps=4, g_steps=2)
    step = tf.function(gan.train_step)
    x, y = data(4)
    sigmas = []
    for _ in range(6):
        gan.reset_metrics()
        sigmas.append(float(step((x, y))["instance_noise"]))
    np.testing.assert_allclose(sigmas, [0.4, 0.3, 0.2, 0.1, 0.0, 0.0], atol=1e-6)
    # In-graph: one trace follows the (checkpointed) step counter; the noise itself matches sigma.
    view = tf.function(gan.discriminator_view)
    zeros = tf.zeros((64, 32, 32, 3))
    for steps_done, sigma in [(0, 0.4), (1, 0.3), (3, 0.1), (4, 0.0), (50, 0.0)]:
        gan.g_optimizer.iterations.assign(steps_done * 2)
        assert abs(float(view(zeros).numpy().std()) - sigma) < 0.01
    assert view.experimental_get_tracing_count() == 1
    constant = make_gan(instance_noise_stddev=0.2)
    constant.g_optimizer.iterations.assign(1000)
    assert float(constant.instance_noise_stddev_now()) == pytest.approx(0.2)


def test_instance_noise_is_fresh_and_reaches_d_in_both_updates(monkeypatch):
    gan = make_gan(instance_noise_stddev=0.3, normalization="none")
    view = tf.function(gan.discriminator_view)
    x = tf.constant(data(4)[0])
    a, b = view(x).numpy() - x.numpy(), view(x).numpy() - x.numpy()
    assert abs(a.std() - 0.3) < 0.02 and not np.allclose(a, b)  # a new draw every call
    noises = []
    original = gan.discriminator_view

    def spy(images):
        out = original(images)
        noises.append((out - images).numpy())
        return out

    monkeypatch.setattr(gan, "discriminator_view", spy)
    gan.discriminator_step(x, tf.constant(data(4)[1]))
    gan.generator_step(tf.constant(data(4)[1]))
    assert len(noises) == 3  # real and fake in D's update, fake in G's
    assert all(abs(n.std() - 0.3) < 0.02 for n in noises) and not np.allclose(noises[0], noises[1])


def test_lazy_r1_every_k_d_updates_scaled_by_k(monkeypatch):
    gan = make_gan(r1_gamma=2.0, r1_every=3, normalization="none")
    calls = []

    def fake_r1(critic, real):
        calls.append(1)
        return tf.fill((tf.shape(real)[0],), 5.0)

    monkeypatch.setattr(regularizers, "r1_penalty", fake_r1)
    x, y = data(4)
    extra = []
    for _ in range(6):
        stats = gan.discriminator_step(tf.constant(x), tf.constant(y))
        extra.append(float(stats["d_loss"] - stats["d_loss_real"] - stats["d_loss_fake"]))
    assert len(calls) == 2  # D updates 0 and 3 only: the double backward pass is skipped otherwise
    np.testing.assert_allclose(extra, [0.5 * 2.0 * 3 * 5.0, 0, 0] * 2, atol=1e-4)
    assert float(stats["r1_penalty"][1]) == 0.0  # update 5 computed no R1: weight 0 in the epoch's average


def test_lazy_r1_inside_tf_function():
    gan = make_gan(r1_gamma=1.0, r1_every=2, normalization="none")
    history = gan.fit(dataset(4, 4), epochs=1, verbose=0).history
    assert np.isfinite(history["r1_penalty"][0]) and history["r1_penalty"][0] > 0  # mean over computed ones only


# -------------------------------------------------------------------------------------------------
# Update modes and tracing


def _bce(targets, logits):
    """-[t log σ(x) + (1-t) log(1-σ(x))] written out: t·softplus(-x) + (1-t)·softplus(x)."""
    return targets * tf.nn.softplus(-logits) + (1.0 - targets) * tf.nn.softplus(logits)


def test_simultaneous_gradients_equal_hand_computed_ones():
    """Both gradients of one simultaneous step equal those written out by hand from the same z, labels
    and smoothed targets: D's from BCE(real, t_real) + BCE(G(z), t_fake), G's from -log σ(D(G(z)))."""
    gan = make_gan(update_mode="simultaneous", real_label_range=(0.8, 1.0), fake_label_range=(0.0, 0.2),
                   normalization="none")
    x, y = (tf.constant(a) for a in data(8))
    z = tf.random.stateless_normal((8, 8), seed=(1, 2))
    real_t = tf.random.stateless_uniform((8,), seed=(3, 4), minval=0.8, maxval=1.0)
    fake_t = tf.random.stateless_uniform((8,), seed=(5, 6), minval=0.0, maxval=0.2)
    d_grads, g_grads, stats = gan.simultaneous_gradients(x, y, z=z, targets=(real_t, fake_t))

    d_vars, g_vars = gan.discriminator.trainable_variables, gan.generator.trainable_variables
    fake = gan.generator(z, y, training=True)  # outside the tape: D's loss does not reach G
    with tf.GradientTape() as tape:
        d_loss = tf.reduce_sum(_bce(real_t, gan.discriminator(x, y, training=True))
                               + _bce(fake_t, gan.discriminator(fake, y, training=True))) / 8
    hand_d = tape.gradient(d_loss, d_vars)
    with tf.GradientTape() as tape:
        g_loss = tf.reduce_sum(tf.nn.softplus(-gan.discriminator(gan.generator(z, y, training=True), y,
                                                                  training=True))) / 8
    hand_g = tape.gradient(g_loss, g_vars)

    assert len(d_grads) == len(d_vars) and len(g_grads) == len(g_vars)
    for got, want in zip(list(d_grads) + list(g_grads), hand_d + hand_g):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    assert float(stats["d_loss"]) == pytest.approx(float(d_loss), rel=1e-5)
    assert float(stats["g_loss"]) == pytest.approx(float(g_loss), rel=1e-5)


@pytest.mark.parametrize("mode, forwards", [("simultaneous", 1), ("alternating", 2)])
def test_generator_forward_passes_per_step(monkeypatch, mode, forwards):
    gan = make_gan(update_mode=mode)
    calls = []
    original = gan.generator.call

    def counting(*args, **kwargs):
        calls.append(1)  # Python: runs once per generator call in the traced step
        return original(*args, **kwargs)

    monkeypatch.setattr(gan.generator, "call", counting)
    x, y = data(8)
    logs = tf.function(gan.train_step)((x, y))
    assert len(calls) == forwards
    assert int(gan.g_optimizer.iterations.numpy()) == 1 and int(gan.d_optimizer.iterations.numpy()) == 1
    assert np.isfinite(float(logs["g_loss"])) and float(logs["d_updates"]) == 1.0


def test_simultaneous_step_applies_both_updates_in_fit_and_refuses_other_ratios():
    gan = make_gan(update_mode="simultaneous", real_label_range=(0.9, 1.0), label_flip=0.05)
    history = gan.fit(dataset(8, 3), epochs=1, verbose=0).history
    assert int(gan.g_optimizer.iterations.numpy()) == 3 and int(gan.d_optimizer.iterations.numpy()) == 3
    assert all(np.isfinite(history[k][0]) for k in ("g_loss", "d_loss", "d_acc_real"))
    with pytest.raises(ValueError, match="g_steps=1"):
        make_gan(update_mode="simultaneous", d_steps=3)


def test_config_refuses_simultaneous_with_other_ratios(tiny_config):
    from homogan.errors import ConfigError

    assert tiny_config("training.update_mode=simultaneous").training.update_mode == "simultaneous"
    with pytest.raises(ConfigError, match=r"training.update_mode.*d_steps = 1 and training.g_steps = 1"):
        tiny_config("training.update_mode=simultaneous", "training.g_steps=2")


@pytest.mark.parametrize("mode", ["alternating", "simultaneous"])
def test_train_step_is_traced_once_per_batch_shape(monkeypatch, mode):
    """fit traces the step once over 2 epochs: for a dataset of constant batch shape, and also with a
    partial last batch (a second shape), because Keras traces from the dataset's ``element_spec``,
    whose batch dimension is None. A retrace per epoch or per new shape would show up here."""
    for examples in (24, 20):  # batches 8,8,8 | 8,8,4
        gan = make_gan(update_mode=mode)
        traces = []
        original = gan.train_step

        def counting(data):
            traces.append(tuple(data[0].shape))  # Python: runs only while tracing
            return original(data)

        monkeypatch.setattr(gan, "train_step", counting)
        x, y = data(examples)
        gan.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(8), epochs=2, verbose=0)
        assert traces == [(None, 32, 32, 3)], traces
        assert int(gan.g_optimizer.iterations.numpy()) == 6


@pytest.mark.parametrize("mode", ["copy", "average"])
def test_ema_batch_norm_statistics_are_copied_or_averaged(mode):
    """``ema_batch_norm``: "copy" gives the EMA generator the live generator's statistics (measured on other
    weights); "average" keeps an EMA of them with the same decay (BigGAN-PyTorch's way)."""
    gan = make_gan(ema=True, ema_decay=0.75, ema_batch_norm=mode)
    live, ema = GAN._ema_statistics(gan.generator), GAN._ema_statistics(gan.ema_generator)
    assert len(live) == len(ema) > 0
    for i, (a, b) in enumerate(zip(live, ema)):
        b.assign(np.full(b.shape, 2.0, np.float32))
        a.assign(np.full(a.shape, 6.0 + i, np.float32))
    gan.update_ema()
    for i, b in enumerate(ema):
        expected = 6.0 + i if mode == "copy" else 0.75 * 2.0 + 0.25 * (6.0 + i)
        np.testing.assert_allclose(b.numpy(), expected)


def test_standing_statistics_are_the_exact_mean_of_the_batch_statistics():
    """The EMA generator's statistics recomputed from its own activations: every BN layer's moving mean is
    the mean of the per-batch means of its input (the same fresh latents, replayed here)."""
    import keras

    from homogan.models import Generator, inference

    g = Generator(32, 3, 8, 2, width=4, name="g_standing")
    g(np.zeros((2, 8), np.float32), np.zeros((2, 2), np.float32))
    pool = np.array([[1, 0], [0, 1], [1, 1]], np.float32)
    seen = {}
    layers = inference.batch_norm_layers(g)
    originals = {}
    for layer in layers:
        originals[id(layer)] = layer.call

        def call(inputs, training=None, mask=None, layer=layer):
            if training:
                seen.setdefault(id(layer), []).append(np.asarray(keras.ops.mean(inputs, axis=(0, 1, 2))))
            return originals[id(layer)](inputs, training=training, mask=mask)

        layer.call = call
    inference.standing_statistics(g, pool, 2, False, seed=3, batches=4, batch_size=8)
    for layer in layers:
        layer.call = originals[id(layer)]
        np.testing.assert_allclose(layer.moving_mean.numpy(), np.mean(seen[id(layer)], axis=0), rtol=1e-4, atol=1e-6)
        assert layer.momentum == 0.9  # put back


@pytest.mark.parametrize("mode, changes", [("standing", True), ("copy", False), ("average", False)])
def test_the_standing_statistics_callback_acts_only_in_standing_mode(mode, changes):
    from homogan.callbacks import StandingStatistics

    gan = make_gan(ema=True, ema_decay=0.9, ema_batch_norm=mode)
    before = [v.numpy().copy() for v in GAN._ema_statistics(gan.ema_generator)]
    callback = StandingStatistics(None, 2, False, seed=1)
    callback.set_model(gan)
    callback.on_epoch_end(0)
    after = [v.numpy() for v in GAN._ema_statistics(gan.ema_generator)]
    assert any(not np.allclose(a, b) for a, b in zip(before, after)) == changes


def test_standing_statistics_are_recomputed_only_where_something_reads_them(monkeypatch):
    """Grids every 4 epochs, checkpoints every 6, 14 epochs: the statistics at epochs 4, 6, 8, 12 and the last
    (14), each from the seed of its epoch, as before."""
    from homogan import callbacks as cb

    gan = make_gan(ema=True, ema_decay=0.9, ema_batch_norm="standing")
    seeds = []
    monkeypatch.setattr(cb.inference, "standing_statistics", lambda *a, seed: seeds.append(seed))
    callback = cb.StandingStatistics(None, 2, False, seed=1, every=(4, 6, 0), epochs=14)
    callback.set_model(gan)
    for epoch in range(14):
        callback.on_epoch_end(epoch)
    assert seeds == [1_000_003 + e for e in (4, 6, 8, 12, 14)]
