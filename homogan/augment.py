"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

D overfits small datasets; augmenting only the real images would teach G to draw the augmentations.
DiffAugment applies the *same policy* to real and fake images every time D sees them (D's update
and G's update) with differentiable ops, so G's gradient flows back through the augmentation.

Ops and ranges follow the paper's reference code (images in [-1, 1]):

* ``color``: brightness + U(-0.5, 0.5); saturation: (x - mean over channels) · U(0, 2) + mean;
  contrast: (x - mean over the image) · U(0.5, 1.5) + mean.
* ``translation``: an integer shift of up to 1/8 of the side in each direction, zero padding.
* ``cutout``: one square of half the side, centred uniformly at random, set to zero.

The random parameters are drawn by :func:`draw_params` and used by :func:`apply`, so one draw can
be applied to two batches (tests use this; the train step draws separately for real and fake, as
the paper does). Every parameter is drawn per image from ``seed`` — a ``keras.random.SeedGenerator``
in the train step, so values differ per image and per step and are never frozen at trace time.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from homogan.config import ADA_OPS, AUGMENT_POLICIES as POLICIES  # one list for the validator and the ops

#: Translation: maximum shift as a fraction of the image side (paper: 1/8).
TRANSLATION_RATIO = 0.125
#: Cutout: side of the zeroed square as a fraction of the image side (paper: 1/2).
CUTOUT_RATIO = 0.5


def check_policy(policy) -> tuple[str, ...]:
    """``policy`` as a tuple; a ValueError naming any unknown entry."""
    policy = tuple(policy)
    unknown = [p for p in policy if p not in POLICIES]
    if unknown:
        raise ValueError(f"`policy` entries should be among {', '.join(POLICIES)}. Received: `policy={list(policy)}`")
    return policy


def _sizes(image_size: int) -> tuple[int, int]:
    """(maximum shift, cutout side) in pixels, rounded as the reference code does."""
    return int(image_size * TRANSLATION_RATIO + 0.5), int(image_size * CUTOUT_RATIO + 0.5)


def draw_params(batch_size, image_size: int, policy, seed) -> dict:
    """Random parameters of ``policy`` for ``batch_size`` images of side ``image_size``.

    Returns a dict of per-image tensors (only the keys the policy needs): ``brightness``,
    ``saturation``, ``contrast`` (B, 1, 1, 1) float32; ``translation`` (B, 2) int32 shift (dy, dx);
    ``cutout`` (B, 2) int32 centre (row, column).
    """
    policy = check_policy(policy)
    params = {}
    if "color" in policy:
        shape = (batch_size, 1, 1, 1)
        params["brightness"] = keras.random.uniform(shape, -0.5, 0.5, seed=seed)
        params["saturation"] = keras.random.uniform(shape, 0.0, 2.0, seed=seed)
        params["contrast"] = keras.random.uniform(shape, 0.5, 1.5, seed=seed)
    if "translation" in policy:
        shift, _ = _sizes(image_size)
        params["translation"] = keras.random.randint((batch_size, 2), -shift, shift + 1, dtype="int32", seed=seed)
    if "cutout" in policy:
        _, side = _sizes(image_size)
        # As the reference code: centres in [0, size + (1 - side % 2)), the square clipped at the border.
        params["cutout"] = keras.random.randint((batch_size, 2), 0, image_size + (1 - side % 2), dtype="int32",
                                                seed=seed)
    return params


def brightness(x, b):
    return x + tf.cast(b, x.dtype)


def saturation(x, s):
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    return (x - mean) * tf.cast(s, x.dtype) + mean


def contrast(x, c):
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * tf.cast(c, x.dtype) + mean


def translate(x, shift):
    """Shift image i by ``shift[i] = (dy, dx)`` pixels (content moves down/right for positive values);
    uncovered pixels become 0. A gather, so the gradient reaches every pixel that stays in view."""
    h, w = x.shape[1], x.shape[2]
    rows = tf.range(h)[None, :] - shift[:, :1]  # (B, H): the source row of every output row
    cols = tf.range(w)[None, :] - shift[:, 1:]
    x = tf.gather(x, tf.clip_by_value(rows, 0, h - 1), axis=1, batch_dims=1)
    x = tf.gather(x, tf.clip_by_value(cols, 0, w - 1), axis=2, batch_dims=1)
    inside = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
    return x * tf.cast(inside, x.dtype)[..., None]


def cutout(x, centre):
    """Zero a square of side ``CUTOUT_RATIO × size`` centred at ``centre[i]`` in image i (clipped)."""
    h, w = x.shape[1], x.shape[2]
    _, side = _sizes(h)
    top = centre[:, :1] - side // 2
    left = centre[:, 1:] - side // 2
    r, c = tf.range(h)[None, :], tf.range(w)[None, :]
    in_rows = (r >= top) & (r < top + side)  # (B, H)
    in_cols = (c >= left) & (c < left + side)  # (B, W)
    keep = tf.logical_not(in_rows[:, :, None] & in_cols[:, None, :])
    return x * tf.cast(keep, x.dtype)[..., None]


def apply(images, params: dict):
    """Augment ``images`` (B, H, W, C) with ``params`` from :func:`draw_params`: color, then
    translation, then cutout (the paper's order). Differentiable with respect to ``images``."""
    x = images
    if "brightness" in params:
        x = contrast(saturation(brightness(x, params["brightness"]), params["saturation"]), params["contrast"])
    if "translation" in params:
        x = translate(x, params["translation"])
    if "cutout" in params:
        x = cutout(x, params["cutout"])
    return x


def diff_augment(images, policy, seed):
    """Fresh parameters for every image, applied: what D sees instead of ``images``."""
    policy = check_policy(policy)
    if not policy:
        return images
    return apply(images, draw_params(tf.shape(images)[0], images.shape[1], policy, seed))


# --------------------------------------------------------------------------------------------------
# Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial Networks with
# Limited Data"): every op applied to each image with probability p, which the train step adapts.


def ada_augment(images, p, seed, xflip: bool = True, ops=ADA_OPS):
    """ADA's pixel blitting — x-flip (where the data is mirror-symmetric), a rotation by a multiple of 90°,
    an integer translation of up to 1/8 of the side — then DiffAugment's colour ops (brightness, saturation,
    contrast), each op chosen for each image independently with probability ``p`` (a float32 scalar tensor;
    ``p = 0`` is the identity). Differentiable with respect to ``images``; square images only (the
    rotations). Parameters are drawn per image from ``seed``. ``ops``: the groups to apply, of
    ``"blit"`` (flip, turns, shift) and ``"color"``, as StyleGAN2-ADA's ``--augpipe blit`` / ``bgc``.

    Non-leaking for every ``p < 1``, as in StyleGAN2-ADA's ``augment.py``: a chosen op draws its parameter from
    a distribution that contains the identity — the flip happens with probability 1/2, the rotation is one of
    0°, 90°, 180°, 270°, the shift is in [−s, s] — so the original image stays the most likely outcome
    (P(upright) = 1 − 3p/4 > P(each turn) = p/4). Always flipping or always turning a chosen image would make
    the transformed image the likelier one once p > 1/2 (flips) or p > 3/4 (turns), and G would learn to draw
    it (Karras et al. 2020, §2.2)."""
    b, size = tf.shape(images)[0], images.shape[1]
    p = tf.cast(p, tf.float32)

    def chosen():  # (B,) int32 0/1: which images get the next op
        return tf.cast(keras.random.uniform((b,), seed=seed) < p, tf.int32)

    def where(mask, a, x):
        return tf.where(mask[:, None, None, None], a, x)

    x = images
    if "blit" in ops:
        if xflip:
            flips = keras.random.randint((b,), 0, 2, dtype="int32", seed=seed) * chosen()
            x = where(tf.equal(flips, 1), tf.reverse(x, axis=[2]), x)
        turns = keras.random.randint((b,), 0, 4, dtype="int32", seed=seed) * chosen()
        for k in (1, 2, 3):
            x = where(tf.equal(turns, k), tf.image.rot90(x, k), x)
        shift, _ = _sizes(size)
        moved = keras.random.randint((b, 2), -shift, shift + 1, dtype="int32", seed=seed)
        x = translate(x, moved * chosen()[:, None])
    if "color" in ops:
        one = (b, 1, 1, 1)
        x = where(chosen() > 0, brightness(x, keras.random.uniform(one, -0.5, 0.5, seed=seed)), x)
        x = where(chosen() > 0, saturation(x, keras.random.uniform(one, 0.0, 2.0, seed=seed)), x)
        x = where(chosen() > 0, contrast(x, keras.random.uniform(one, 0.5, 1.5, seed=seed)), x)
    return x


def ada_step(p, rt, target: float, images_per_adjustment: float, speed_images: float):
    """The new p after one adjustment: ``p + sign(r_t − target) · images / speed``, clipped to [0, 1] —
    raised while D is overconfident on the real images (``r_t = E[sign(D(real))]`` above the target)."""
    change = tf.sign(tf.cast(rt, tf.float32) - target) * (images_per_adjustment / speed_images)
    return tf.clip_by_value(tf.cast(p, tf.float32) + change, 0.0, 1.0)
