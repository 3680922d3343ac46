"""Adversarial losses as plain per-example functions, selected by name (``training.loss``).

Every loss has the same two functions:

* ``discriminator(real_logits, fake_logits, real_targets, fake_targets) -> (d_real, d_fake)``
* ``generator(fake_logits) -> g``

all per example, shape ``(B,)``, in float32. Per example (not averaged) so that the caller can scale
by the *global* batch under tf.distribute. ``real_targets``/``fake_targets`` carry label smoothing
and flipping for the losses that have targets (BCE and least squares); the others ignore them and
the config validator refuses smoothing with them. Signs follow the convention "both players
minimise": the discriminator's loss is low when real logits are high and fake logits are low.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import tensorflow as tf


def _bce(targets, logits):
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(targets, tf.float32), logits=logits)


def bce_discriminator(real_logits, fake_logits, real_targets, fake_targets):
    """-[t log σ(real) + (1-t) log(1-σ(real))], likewise for fake with its (smoothed) target."""
    return _bce(real_targets, real_logits), _bce(fake_targets, fake_logits)


def nonsaturating_generator(fake_logits):
    """-log σ(fake): strong gradients when D confidently rejects the fakes (Goodfellow et al. 2014)."""
    return tf.nn.softplus(-fake_logits)


def minimax_generator(fake_logits):
    """log(1 - σ(fake)) = -softplus(fake): the original minimax objective (saturates early on)."""
    return -tf.nn.softplus(fake_logits)


def wasserstein_discriminator(real_logits, fake_logits, real_targets=None, fake_targets=None):
    """Critic: -f(real) + f(fake) (Arjovsky et al. 2017); needs a Lipschitz constraint (GP or SN)."""
    return -real_logits, fake_logits


def wasserstein_generator(fake_logits):
    return -fake_logits


def hinge_discriminator(real_logits, fake_logits, real_targets=None, fake_targets=None):
    """max(0, 1 - f(real)) and max(0, 1 + f(fake)) (Lim & Ye 2017; Miyato et al. 2018)."""
    return tf.nn.relu(1.0 - real_logits), tf.nn.relu(1.0 + fake_logits)


def least_squares_discriminator(real_logits, fake_logits, real_targets, fake_targets):
    """½(f(real) - t_real)² and ½(f(fake) - t_fake)² with targets b=1, a=0 (Mao et al. 2017)."""
    return (0.5 * tf.square(real_logits - tf.cast(real_targets, tf.float32)),
            0.5 * tf.square(fake_logits - tf.cast(fake_targets, tf.float32)))


def least_squares_generator(fake_logits):
    return 0.5 * tf.square(fake_logits - 1.0)


def auxiliary_bce(labels, aux_logits):
    """ACGAN's auxiliary label loss per example: sigmoid BCE per attribute, averaged over attributes.

    One sigmoid per attribute (not a softmax over classes) because CelebA labels are multi-label:
    a face can be bald *and* wear glasses. Averaged (not summed) so that ``training.acgan_weight``
    means the same for 1 or 10 attributes. For one-hot class labels it is still a valid, if less
    sharp, classifier loss.
    """
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                  logits=tf.cast(aux_logits, tf.float32))
    return tf.reduce_mean(bce, axis=-1)


def auxiliary_softmax_ce(labels, aux_logits):
    """The auxiliary label loss per example for one-hot classes: softmax cross-entropy over the classes.

    AC-GAN's log-likelihood of the right class (Odena et al. 2017, for CIFAR-10 and ImageNet classes), used by
    ``conditioning="projection_ac"`` (and by ``"projection_tac"``, for its classifier and its twin). Unlike
    :func:`auxiliary_bce` it is not divided by the number of classes: an image has one class, and its loss is
    −log p(class | x) whatever the number of classes.
    """
    return tf.nn.softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.float32),
                                                   logits=tf.cast(aux_logits, tf.float32))


def data_to_data_cross_entropy(labels, embeddings, proxies, *, temperature: float = 0.5,
                               positive_margin: float = 0.98, negative_margin: float = 0.02):
    """ReACGAN's data-to-data cross-entropy per example (Kang et al. 2021, "Rebooting ACGAN", eq. 7).

    AC-GAN's classifier loss rewritten on unit vectors: f_i = φ(x_i) embedded and l2-normalised, v_y a
    normalised class proxy. Each image is pulled towards its class's proxy and pushed away from the *other
    images* of the batch that have another class (data to data, not only data to class):

        −log  exp(s⁺_i / τ) / (exp(s⁺_i / τ) + Σ_{j: y_j ≠ y_i} exp(s⁻_ij / τ)),
        s⁺_i = min(f_iᵀ v_{y_i} − m_p, 0),   s⁻_ij = max(f_iᵀ f_j − m_n, 0).

    The margins drop the easy pairs (an image already within m_p of its proxy is not pulled further, a pair of
    images already less alike than m_n is not pushed further), which is what keeps the loss and its gradient
    bounded where AC-GAN's softmax classifier grows its logits without bound. Normalising makes the loss
    depend on directions only. τ = 0.5, m_p = 0.98 and m_n = 1 − m_p are the authors' settings for 32 px,
    10-class CIFAR-10 (PyTorch-StudioGAN ``configs/CIFAR10/ReACGAN.yaml``). StudioGAN's code shifts the
    negatives by their row maximum for stability, which also rescales them against the positive; this is the
    paper's expression, made stable with a log-sum-exp. The negatives are the other images of the *same*
    batch (on one replica under tf.distribute).

    Args:
        labels: ``(B, K)`` one-hot classes (images of the same class are not negatives of each other).
        embeddings: ``(B, E)`` the images' embeddings; proxies: ``(B, E)`` the proxies of their classes.
    """
    labels = tf.cast(labels, tf.float32)
    f = tf.math.l2_normalize(tf.cast(embeddings, tf.float32), axis=-1)
    v = tf.math.l2_normalize(tf.cast(proxies, tf.float32), axis=-1)
    positive = tf.minimum(tf.reduce_sum(f * v, axis=-1) - positive_margin, 0.0) / temperature
    negative = tf.maximum(tf.matmul(f, f, transpose_b=True) - negative_margin, 0.0) / temperature
    other_class = tf.matmul(labels, labels, transpose_b=True) < 0.5  # False on the diagonal too
    negative = tf.where(other_class, negative, tf.fill(tf.shape(negative), float("-inf")))
    terms = tf.concat([positive[:, None], negative], axis=1)
    return tf.reduce_logsumexp(terms, axis=1) - positive


class AdversarialLoss(NamedTuple):
    discriminator: Callable
    generator: Callable
    #: A logit above this counts as "real" for the accuracy metrics; None where no threshold means anything:
    #: a Wasserstein critic's losses do not change when a constant is added to f, so "f > 0" is arbitrary
    #: (hinge's margins at ±1 are not shift-invariant, so its threshold 0 keeps a meaning).
    decision_threshold: float | None
    uses_targets: bool


LOSSES: dict[str, AdversarialLoss] = {
    "nonsaturating": AdversarialLoss(bce_discriminator, nonsaturating_generator, 0.0, True),
    "minimax": AdversarialLoss(bce_discriminator, minimax_generator, 0.0, True),
    "wasserstein": AdversarialLoss(wasserstein_discriminator, wasserstein_generator, None, False),
    "hinge": AdversarialLoss(hinge_discriminator, wasserstein_generator, 0.0, False),
    "least_squares": AdversarialLoss(least_squares_discriminator, least_squares_generator, 0.5, True),
}


def get(name: str) -> AdversarialLoss:
    try:
        return LOSSES[name]
    except KeyError:
        raise ValueError(f"`loss` should be one of {', '.join(LOSSES)}. Received: `loss={name!r}`") from None
