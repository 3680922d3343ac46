"""DiffAugment: the paper's ops and ranges, one draw applicable to two batches, fresh draws per call,
gradients through every op, and the train step augmenting real and fake wherever D sees them."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from homogan import augment
from homogan.config import AUGMENT_POLICIES

ALL = ["color", "translation", "cutout"]


def images(n=8, size=32, seed=0):
    return tf.constant(np.random.default_rng(seed).uniform(-1, 1, (n, size, size, 3)).astype("float32"))


def test_policy_names_match_the_config_schema():
    assert augment.POLICIES == AUGMENT_POLICIES == tuple(ALL)
    with pytest.raises(ValueError, match="flip"):
        augment.draw_params(2, 32, ["flip"], seed=0)


def test_one_draw_applied_to_identical_batches_gives_identical_outputs():
    x = images()
    params = augment.draw_params(8, 32, ALL, seed=keras.random.SeedGenerator(1))
    a, b = augment.apply(x, params), augment.apply(tf.identity(x), params)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.abs(a.numpy() - x.numpy()).max() > 0.1  # and it did augment
    # Per image, not per batch: the same image gets different parameters in different rows.
    same = tf.repeat(x[:1], 8, axis=0)
    out = augment.apply(same, params).numpy()
    assert len({out[i].tobytes() for i in range(8)}) == 8


def test_parameters_are_fresh_per_call_inside_tf_function():
    seed = keras.random.SeedGenerator(3)
    draw = tf.function(lambda x: augment.diff_augment(x, ALL, seed))
    x = images(4)
    first, second = draw(x).numpy(), draw(x).numpy()
    assert not np.allclose(first, second)
    assert draw.experimental_get_tracing_count() == 1
    np.testing.assert_array_equal(augment.diff_augment(x, [], seed).numpy(), x.numpy())  # [] = off


def test_translation_moves_pixels_with_zero_fill():
    x = images(3)
    shift = tf.constant([[2, -3], [0, 0], [-4, 4]], tf.int32)
    out = augment.translate(x, shift).numpy()
    src = x.numpy()
    for i, (dy, dx) in enumerate(shift.numpy()):
        expected = np.zeros_like(src[i])
        h, w = src.shape[1:3]
        ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
        xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
        expected[yd, xd] = src[i, ys, xs]
        np.testing.assert_array_equal(out[i], expected)
    drawn = augment.draw_params(2000, 32, ["translation"], seed=0)["translation"].numpy()
    assert drawn.min() == -4 and drawn.max() == 4  # up to 1/8 of 32 px, both directions, both axes
    assert abs(np.mean(drawn == 0) - 1 / 9) < 0.03


def test_cutout_zeroes_a_half_side_square():
    x = tf.ones((3, 32, 32, 1))
    centre = tf.constant([[16, 16], [0, 0], [31, 20]], tf.int32)
    out = augment.cutout(x, centre).numpy()[..., 0]
    expected = np.ones((3, 32, 32))
    expected[0, 8:24, 8:24] = 0  # side 16 = 32 / 2, centred
    expected[1, 0:8, 0:8] = 0  # clipped at the border
    expected[2, 23:32, 12:28] = 0
    np.testing.assert_array_equal(out, expected)
    params = augment.draw_params(500, 32, ["cutout"], seed=0)
    zeros = 1 - augment.apply(tf.ones((500, 32, 32, 3)), params).numpy().mean(axis=(1, 2, 3))
    # Centres uniform in [0, 32]: the square is clipped near the border, so it covers 8..16 rows.
    cover = np.mean([min(c + 8, 32) - max(c - 8, 0) for c in range(33)])
    assert zeros.max() == 0.25 and zeros.min() >= 64 / 1024 and abs(zeros.mean() - cover**2 / 1024) < 0.01


def test_color_uses_the_papers_ranges():
    params = augment.draw_params(4000, 32, ["color"], seed=0)
    for key, (lo, hi) in dict(brightness=(-0.5, 0.5), saturation=(0.0, 2.0), contrast=(0.5, 1.5)).items():
        v = params[key].numpy().ravel()
        assert v.min() >= lo and v.max() <= hi and v.min() < lo + 0.01 and v.max() > hi - 0.01, key
        assert abs(v.mean() - (lo + hi) / 2) < 0.03 * (hi - lo), key
    # Applied as brightness, then saturation about the per-pixel channel mean, then contrast about the image mean.
    x = images(4).numpy()
    p = {k: v[:4] for k, v in params.items()}
    b, s, c = (p[k].numpy() for k in ("brightness", "saturation", "contrast"))
    y = x + b
    y = (y - y.mean(axis=3, keepdims=True)) * s + y.mean(axis=3, keepdims=True)
    y = (y - y.mean(axis=(1, 2, 3), keepdims=True)) * c + y.mean(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(augment.apply(tf.constant(x), p).numpy(), y, rtol=1e-5, atol=1e-5)
    gray = tf.fill((4, 8, 8, 3), 0.2)  # constant image: saturation and contrast change nothing
    out = augment.apply(gray, augment.draw_params(4, 8, ["color"], seed=1)).numpy()
    np.testing.assert_allclose(out - 0.2, np.broadcast_to(out[:, :1, :1, :1] - 0.2, out.shape), atol=1e-6)


@pytest.mark.parametrize("policy", [["color"], ["translation"], ["cutout"], ALL])
def test_gradient_flows_to_the_input(policy):
    x = images(4)
    params = augment.draw_params(4, 32, policy, seed=2)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.square(augment.apply(x, params)))
    grad = tape.gradient(total, x).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
    if policy == ["cutout"]:
        kept = augment.apply(tf.ones_like(x), params).numpy() != 0
        assert np.all(grad[~kept] == 0) and np.all(grad[kept] != 0)  # zeroed pixels get no gradient


def test_train_step_augments_real_and_fake_in_both_updates(monkeypatch):
    from homogan.gan import GAN
    from homogan.models import Discriminator, Generator

    keras.utils.set_random_seed(0)
    g, d = Generator(32, 3, 8, 0, width=4), Discriminator(32, 3, 0, width=4, normalization="none")
    y = np.zeros((4, 0), "float32")
    d(g(np.zeros((4, 8), "float32"), y), y)
    gan = GAN(g, d, seed=0)
    gan.compile(keras.optimizers.Adam(1e-3, 0.5), keras.optimizers.Adam(1e-3, 0.5), augment=["translation", "cutout"])
    calls = []
    original = augment.diff_augment

    def spy(x, policy, seed):
        calls.append(tuple(policy))
        return original(x, policy, seed)

    monkeypatch.setattr(augment, "diff_augment", spy)
    real = images(4)
    gan.discriminator_step(real, tf.constant(y))
    assert calls == [("translation", "cutout")] * 2  # the real batch and the fake batch, same policy
    before = [w.numpy().copy() for w in g.trainable_weights]
    gan.generator_step(tf.constant(y))
    assert len(calls) == 3  # G's update sees D's view of the fakes too
    assert all(not np.array_equal(a, w.numpy()) for a, w in zip(before, g.trainable_weights))  # G got gradients
