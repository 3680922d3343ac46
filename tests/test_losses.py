"""Each loss's value and gradient sign on known logits, and the penalties against hand computation."""

import numpy as np
import pytest
import tensorflow as tf

from homogan import losses, regularizers

REAL = tf.constant([2.0, -1.0])
FAKE = tf.constant([-3.0, 0.5])
ONES, ZEROS = tf.ones(2), tf.zeros(2)


def softplus(x):
    return np.log1p(np.exp(x))


def test_values_on_known_logits():
    r, f = REAL.numpy(), FAKE.numpy()
    d_real, d_fake = losses.bce_discriminator(REAL, FAKE, ONES, ZEROS)
    np.testing.assert_allclose(d_real, softplus(-r), rtol=1e-6)  # -log σ(r)
    np.testing.assert_allclose(d_fake, softplus(f), rtol=1e-6)  # -log(1 - σ(f))
    np.testing.assert_allclose(losses.nonsaturating_generator(FAKE), softplus(-f), rtol=1e-6)
    np.testing.assert_allclose(losses.minimax_generator(FAKE), -softplus(f), rtol=1e-6)
    d_real, d_fake = losses.wasserstein_discriminator(REAL, FAKE)
    np.testing.assert_allclose(d_real, -r)
    np.testing.assert_allclose(d_fake, f)
    np.testing.assert_allclose(losses.wasserstein_generator(FAKE), -f)
    d_real, d_fake = losses.hinge_discriminator(REAL, FAKE)
    np.testing.assert_allclose(d_real, np.maximum(0, 1 - r))
    np.testing.assert_allclose(d_fake, np.maximum(0, 1 + f))
    d_real, d_fake = losses.least_squares_discriminator(REAL, FAKE, ONES, ZEROS)
    np.testing.assert_allclose(d_real, 0.5 * (r - 1) ** 2)
    np.testing.assert_allclose(d_fake, 0.5 * f ** 2)
    np.testing.assert_allclose(losses.least_squares_generator(FAKE), 0.5 * (f - 1) ** 2)


def test_soft_targets_enter_bce():
    t = tf.constant([0.9, 0.95])
    d_real, _ = losses.bce_discriminator(REAL, FAKE, t, ZEROS)
    sig = 1 / (1 + np.exp(-REAL.numpy()))
    np.testing.assert_allclose(d_real, -(t.numpy() * np.log(sig) + (1 - t.numpy()) * np.log(1 - sig)), rtol=1e-5)


def test_auxiliary_losses_on_known_logits():
    """The softmax CE (projection_ac, one-hot classes) is −log p(class | x), not divided by the number of classes;
    the sigmoid BCE (acgan, multi-label) is the mean over attributes of each attribute's BCE."""
    logits = np.array([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]], "float32")
    one_hot = np.array([[1, 0, 0], [0, 0, 1]], "float32")
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(losses.auxiliary_softmax_ce(one_hot, logits), -log_p[[0, 1], [0, 2]], rtol=1e-5)
    bce = softplus(-logits) * one_hot + softplus(logits) * (1 - one_hot)
    np.testing.assert_allclose(losses.auxiliary_bce(one_hot, logits), bce.mean(axis=1), rtol=1e-5)
    # The softmax ties the classes together: a wrong class's logit up by 5 moves the right class's CE by ~1.9.
    wrong = logits + np.array([[0, 5.0, 0], [0, 0, 0]], "float32")
    assert float(losses.auxiliary_softmax_ce(one_hot, wrong)[0]) > float(losses.auxiliary_softmax_ce(one_hot, logits)[0]) + 1.5


def _d2d_ce_by_hand(labels, f, v, tau=0.5, m_p=0.98, m_n=0.02):
    """Kang et al. 2021, eq. 7, one image at a time: −log of the positive's share, negatives = other classes."""
    f = f / np.linalg.norm(f, axis=1, keepdims=True)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    out = []
    for i in range(len(f)):
        pos = np.exp(min(f[i] @ v[i] - m_p, 0.0) / tau)
        neg = sum(np.exp(max(f[i] @ f[j] - m_n, 0.0) / tau) for j in range(len(f))
                  if labels[j].argmax() != labels[i].argmax())
        out.append(-np.log(pos / (pos + neg)))
    return np.array(out)


def test_data_to_data_cross_entropy_against_the_paper_by_hand():
    """ReACGAN's D2D-CE: the paper's expression (margins, temperature, only other classes' images as negatives),
    independent of the embeddings' and proxies' scale."""
    rng = np.random.default_rng(3)
    labels = np.eye(3, dtype="float32")[[0, 0, 1, 2, 1]]
    f, v = rng.normal(size=(5, 6)).astype("float32"), rng.normal(size=(5, 6)).astype("float32")
    got = losses.data_to_data_cross_entropy(labels, f, v).numpy()
    np.testing.assert_allclose(got, _d2d_ce_by_hand(labels, f, v), rtol=1e-5)
    np.testing.assert_allclose(losses.data_to_data_cross_entropy(labels, 7 * f, 0.1 * v).numpy(), got, rtol=1e-5)
    np.testing.assert_allclose(losses.data_to_data_cross_entropy(labels, f, v, temperature=0.25, positive_margin=0.9,
                                                                negative_margin=0.1).numpy(),
                               _d2d_ce_by_hand(labels, f, v, tau=0.25, m_p=0.9, m_n=0.1), rtol=1e-5)
    # An image of the same class is no negative: moving image 1 (class 0) leaves image 0's loss alone and moves
    # image 2's (class 1).
    moved = f.copy()
    moved[1] = rng.normal(size=6)
    again = losses.data_to_data_cross_entropy(labels, moved, v).numpy()
    assert again[0] == pytest.approx(got[0], rel=1e-6) and abs(again[2] - got[2]) > 1e-3
    # A batch of one class has no negatives: nothing to push away, and within the margin nothing to pull: 0.
    same = np.eye(3, dtype="float32")[[1, 1, 1]]
    np.testing.assert_allclose(losses.data_to_data_cross_entropy(same, v[:3], v[:3]).numpy(), 0.0, atol=1e-6)


def test_data_to_data_cross_entropy_gradients_are_finite_and_pull_towards_the_proxy():
    rng = np.random.default_rng(4)
    labels = tf.one_hot([0, 1, 2, 0], 3)
    f = tf.Variable(rng.normal(size=(4, 8)).astype("float32"))
    v = tf.constant(rng.normal(size=(4, 8)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(losses.data_to_data_cross_entropy(labels, f, v))
    grad = tape.gradient(loss, f).numpy()
    assert np.isfinite(grad).all() and np.abs(grad).max() > 1e-3
    cos = lambda a: np.sum(a * v.numpy(), 1) / np.linalg.norm(a, axis=1) / np.linalg.norm(v.numpy(), axis=1)  # noqa
    assert (cos(f.numpy() - 0.01 * grad) > cos(f.numpy())).all()  # a small step down the loss nears each proxy


@pytest.mark.parametrize("name", list(losses.LOSSES))
def test_gradient_signs(name):
    """D's loss falls as real logits rise and fake logits fall; G's loss falls as fake logits rise.

    (At logits where no loss is already satisfied: real below every loss's real target, fake above.)
    """
    loss = losses.get(name)
    real, fake = tf.Variable([0.3, 0.6]), tf.Variable([0.1, 0.4])
    with tf.GradientTape(persistent=True) as tape:
        d_real, d_fake = loss.discriminator(real, fake, ONES, ZEROS)
        d_loss = tf.reduce_sum(d_real + d_fake)
        g_loss = tf.reduce_sum(loss.generator(fake))
    assert np.all(tape.gradient(d_loss, real).numpy() < 0)
    assert np.all(tape.gradient(d_loss, fake).numpy() > 0)
    assert np.all(tape.gradient(g_loss, fake).numpy() < 0)


def test_unknown_loss_is_refused():
    with pytest.raises(ValueError, match="loss='bse'"):
        losses.get("bse")


def test_gradient_penalty_on_a_linear_critic_equals_hand_value():
    w = tf.constant(np.arange(1, 13, dtype=np.float32).reshape(1, 2, 2, 3) / 10.0)
    critic = lambda x: tf.reduce_sum(x * w, axis=[1, 2, 3])  # noqa: E731  ∇f = w everywhere
    real = tf.random.normal((4, 2, 2, 3))
    fake = tf.random.normal((4, 2, 2, 3))
    eps = tf.random.uniform((4, 1, 1, 1))
    gp = regularizers.gradient_penalty(critic, real, fake, eps).numpy()
    expected = (np.sqrt(np.sum(w.numpy() ** 2)) - 1.0) ** 2
    np.testing.assert_allclose(gp, np.full(4, expected), rtol=1e-5)


def test_gradient_penalty_uses_one_epsilon_per_sample():
    """Quadratic critic f = ½‖x‖²: ∇f(x̂) = x̂ = ε·1 for real = 1, fake = 0, so ‖∇‖ = ε·√D per sample."""
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])  # noqa: E731
    real, fake = tf.ones((3, 2, 2, 1)), tf.zeros((3, 2, 2, 1))
    eps = tf.constant([0.1, 0.5, 0.9])[:, None, None, None]
    gp = regularizers.gradient_penalty(critic, real, fake, eps).numpy()
    np.testing.assert_allclose(gp, (np.array([0.1, 0.5, 0.9]) * 2.0 - 1.0) ** 2, rtol=1e-5)


def test_r1_penalty_is_squared_gradient_norm():
    critic = lambda x: tf.reduce_sum(3.0 * x, axis=[1, 2, 3])  # noqa: E731
    r1 = regularizers.r1_penalty(critic, tf.zeros((2, 2, 2, 1))).numpy()
    np.testing.assert_allclose(r1, [9.0 * 4, 9.0 * 4])
