"""The GAN zoo, end to end through the config: every loss × penalty × normalisation the validator
accepts trains a few steps with finite losses; projection and ACGAN conditioning train and use
their labels; the conditioning rules are validated."""

import itertools
import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from homogan import losses
from homogan.config import load_config
from homogan.errors import ConfigError
from homogan.gan import GAN, rules_from_config
from homogan.models import build_models

TINY = ["data.image_size=32", "model.latent_dim=8", "model.generator.width=4", "model.discriminator.width=4",
        "training.batch_size=4"]
PENALTIES = {"none": [], "gp": ["training.gradient_penalty=10"], "r1": ["training.r1_gamma=1"]}
COMBOS = list(itertools.product(losses.LOSSES, PENALTIES, ["batch", "layer", "none"], [False, True]))


def combo_overrides(loss, penalty, norm, sn):
    return [*TINY, f"training.loss={loss}", *PENALTIES[penalty], f"model.discriminator.normalization={norm}",
            f"model.discriminator.spectral_norm={str(sn).lower()}"]


def accepted(overrides):
    try:
        return load_config(None, overrides)
    except ConfigError:
        return None


_MODELS: dict = {}


def models_for(config, num_labels):
    """``build_models`` output for this model config, built once per test session and reset to its
    initial weights (BN statistics and spectral-norm vectors included) on every use: the losses and
    penalties only change the train step, and building is a third of each combination's time."""
    key = (json.dumps(config.model.__dict__, default=lambda o: o.__dict__, sort_keys=True), num_labels)
    if key not in _MODELS:
        keras.utils.set_random_seed(config.experiment.seed)
        g, d = build_models(config, num_labels)
        _MODELS[key] = (g, d, g.get_weights(), d.get_weights())
    g, d, g_init, d_init = _MODELS[key]
    g.set_weights(g_init)
    d.set_weights(d_init)
    return g, d


def build_gan(config, num_labels=0, adam=True):
    """G, D and the GAN as ``homogan.train`` builds and compiles them from a config.

    ``adam=False`` uses plain SGD at the same learning rates: the optimizer is not part of the
    loss × penalty × normalisation product, and eager Adam is ~40 % of an eager step (the product
    has 80 cells; Adam itself is exercised by the conditioning tests here, ``test_gan`` and the
    shipped experiments' smoke runs).
    """
    g, d = models_for(config, num_labels)
    gan = GAN(g, d, seed=config.experiment.seed)
    t = config.training
    if adam:
        g_opt, d_opt = (keras.optimizers.Adam(o.learning_rate, beta_1=o.beta_1, beta_2=o.beta_2)
                        for o in (t.g_optimizer, t.d_optimizer))
    else:
        g_opt, d_opt = (keras.optimizers.SGD(o.learning_rate) for o in (t.g_optimizer, t.d_optimizer))
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    gan.compile(g_opt, d_opt, **rules_from_config(config.training))
    return gan


def batch(config, num_labels=0, seed=0):
    rng = np.random.default_rng(seed)
    n = config.training.batch_size * config.training.d_steps
    x = rng.uniform(-1, 1, (n, 32, 32, 3)).astype("float32")
    y = (rng.random((n, num_labels)) > 0.5).astype("float32")
    return tf.constant(x), tf.constant(y)


def train_steps(gan, config, num_labels=0, steps=3):
    """``steps`` eager train steps (the same code ``fit`` traces; eager is faster for 3 steps)."""
    logs = []
    for i in range(steps):
        gan.reset_metrics()
        logs.append({k: float(v) for k, v in gan.train_step(batch(config, num_labels, seed=i)).items()})
    return logs


def test_enough_combinations_are_valid_and_the_invalid_ones_are_gp_with_batch_norm_or_an_unbounded_critic():
    rejected = [c for c in COMBOS if accepted(combo_overrides(*c)) is None]
    gp_with_bn = [c for c in COMBOS if c[1] == "gp" and c[2] == "batch"]
    unbounded = [c for c in COMBOS if c[0] == "wasserstein" and c[1] != "gp" and not c[3]]  # no GP, no SN
    assert sorted(rejected) == sorted(set(gp_with_bn) | set(unbounded))
    assert len(rejected) == len(losses.LOSSES) * 2 + 2 * 3
    assert len(COMBOS) - len(rejected) >= 20


@pytest.mark.parametrize("loss, penalty, norm, sn", COMBOS, ids=["-".join(map(str, c)) for c in COMBOS])
def test_every_accepted_combination_trains_with_finite_losses(loss, penalty, norm, sn):
    config = accepted(combo_overrides(loss, penalty, norm, sn))
    if config is None:
        pytest.skip("refused by the config validator")
    gan = build_gan(config, adam=False)
    before = [w.numpy().copy() for w in gan.discriminator.trainable_weights]
    logs = train_steps(gan, config)
    for log in logs:
        for key in ("g_loss", "d_loss", "d_loss_real", "d_loss_fake"):
            assert np.isfinite(log[key]), (key, log)
    if penalty != "none":
        name = {"gp": "gradient_penalty", "r1": "r1_penalty"}[penalty]
        assert all(np.isfinite(log[name]) and log[name] >= 0 for log in logs)
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before, gan.discriminator.trainable_weights))


LABELS = ['data.attributes=["Eyeglasses", "No_Beard", "Bald"]']


@pytest.mark.parametrize("conditioning", ["projection", "acgan"])
def test_projection_and_acgan_train_and_use_their_labels(conditioning):
    config = load_config(None, [*TINY, *LABELS, f"model.discriminator.conditioning={conditioning}",
                                "model.discriminator.normalization=none", "training.acgan_weight=2.5"])
    gan = build_gan(config, num_labels=3)
    d = gan.discriminator
    first_conv = next(layer for layer in d.blocks if isinstance(layer, keras.layers.Conv2D))
    assert first_conv.kernel.shape[2] == 3  # images only: no label maps at D's input
    logs = train_steps(gan, config, num_labels=3)
    assert all(np.isfinite(v) for log in logs for v in log.values())
    x, _ = batch(config, 3)
    y1, y2 = tf.ones((4, 3)), tf.constant([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]])
    if conditioning == "projection":
        assert np.abs((d(x, y1) - d(x, y2)).numpy()).max() > 1e-4  # the labels change D's logit
        assert "aux_loss" not in logs[0]
        return
    # ACGAN: the labels change D's auxiliary loss, which is part of D's loss on real images
    # (weighted) and of G's loss on fakes.
    logits, aux = d(x, y1, return_aux=True)
    assert tuple(aux.shape) == (4, 3)
    assert not np.allclose(losses.auxiliary_bce(y1, aux).numpy(), losses.auxiliary_bce(y2, aux).numpy())
    y = tf.constant(batch(config, 3, seed=9)[1])
    expected_aux = float(tf.reduce_mean(losses.auxiliary_bce(y, d(x, y, training=True, return_aux=True)[1])))
    stats = gan.discriminator_step(x, y)
    assert float(stats["aux_loss"]) == pytest.approx(expected_aux, rel=1e-4)
    assert float(stats["d_loss"] - stats["d_loss_real"] - stats["d_loss_fake"]) == pytest.approx(2.5 * expected_aux,
                                                                                                  rel=1e-4)
    assert np.isfinite(logs[-1]["g_aux_loss"]) and np.isfinite(logs[-1]["aux_loss"])


CLASSES = ["data.source=folder", "data.root=/nowhere", "data.class_conditional=true", "data.attributes=[]",
           "data.filters={}", "data.balance=null"]


def test_projection_ac_adds_a_softmax_class_loss_to_the_projection_d_in_both_updates():
    """projection_ac: D keeps the projection logit and adds acgan_weight × the softmax CE of its auxiliary head on
    real images; G's loss adds the same CE on its fakes of the requested classes."""
    config = load_config(None, [*TINY, *CLASSES, "model.discriminator.conditioning=projection_ac",
                                "model.discriminator.spectral_norm=false", "training.acgan_weight=2.5"])
    gan = build_gan(config, num_labels=3)
    assert gan.auxiliary_loss is losses.auxiliary_softmax_ce
    x, _ = batch(config)
    y = tf.one_hot([0, 1, 2, 0], 3)
    _, aux = gan.discriminator(x, y, training=True, return_aux=True)
    expected = float(tf.reduce_mean(losses.auxiliary_softmax_ce(y, aux)))
    stats = gan.discriminator_step(x, y)
    assert float(stats["aux_loss"]) == pytest.approx(expected, rel=1e-4)
    assert float(stats["d_loss"] - stats["d_loss_real"] - stats["d_loss_fake"]) == pytest.approx(2.5 * expected,
                                                                                                  rel=1e-4)
    z = gan.sample_latent(4)
    fake = gan.generate(y, z=z)
    _, fake_aux = gan.discriminator(fake, y, return_aux=True)
    other = tf.one_hot([1, 2, 0, 1], 3)
    g_aux = [float(tf.reduce_mean(losses.auxiliary_softmax_ce(labels, fake_aux))) for labels in (y, other)]
    assert abs(g_aux[0] - g_aux[1]) > 1e-4
    logs = [{k: float(v) for k, v in gan.train_step((x, y)).items()}]
    assert all(np.isfinite(log[k]) for log in logs for k in ("aux_loss", "g_aux_loss", "g_loss", "d_loss"))


def _heads_on_one_batch(conditioning, weight):
    """A class-conditional GAN with D's ``conditioning``, a batch, its labels, latents and D's outputs on the real
    images and on G's fakes of those latents (training mode), for checking the train step's auxiliary terms."""
    config = load_config(None, [*TINY, *CLASSES, f"model.discriminator.conditioning={conditioning}",
                                "model.discriminator.spectral_norm=false", f"training.acgan_weight={weight}"])
    gan = build_gan(config, num_labels=3)
    x, _ = batch(config)
    y = tf.one_hot([0, 1, 2, 0], 3)
    z = gan.sample_latent(4)
    fake = gan.generator(z, y, training=True)
    _, real_aux = gan.discriminator(x, y, training=True, return_aux=True)
    fake_logits, fake_aux = gan.discriminator(fake, y, training=True, return_aux=True)
    return gan, x, y, z, real_aux, fake_logits, fake_aux


def test_projection_tac_fits_the_twin_to_the_fakes_and_g_maximises_its_loss():
    """projection_tac (TAC-GAN, Gong et al. 2019, eq. 6): D's loss = adversarial + w·CE(classifier(real), y) +
    w·CE(twin(fake), y); G's = adversarial + w·CE(classifier(fake), y) − w·CE(twin(fake), y) — on the same fakes
    (simultaneous gradients), against the heads' logits computed here."""
    gan, x, y, z, real_aux, fake_logits, fake_aux = _heads_on_one_batch("projection_tac", 2.5)
    assert gan.twin and gan.auxiliary_loss is losses.auxiliary_softmax_ce
    ce = lambda logits: float(tf.reduce_mean(losses.auxiliary_softmax_ce(y, logits)))  # noqa: E731
    classifier_real, twin_fake, classifier_fake = ce(real_aux[:, :3]), ce(fake_aux[:, 3:]), ce(fake_aux[:, :3])
    assert abs(twin_fake - classifier_fake) > 1e-4  # the heads differ, so a mixed-up half would show
    _, _, stats = gan.simultaneous_gradients(x, y, z=z, targets=gan.discriminator_targets(4))
    assert float(stats["aux_loss"]) == pytest.approx(classifier_real, rel=1e-4)
    assert float(stats["twin_loss"]) == pytest.approx(twin_fake, rel=1e-4)
    assert float(stats["g_aux_loss"]) == pytest.approx(classifier_fake, rel=1e-4)
    assert float(stats["d_loss"] - stats["d_loss_real"] - stats["d_loss_fake"]) == pytest.approx(
        2.5 * (classifier_real + twin_fake), rel=1e-4)
    adversarial = float(tf.reduce_mean(gan.adversarial.generator(fake_logits)))
    assert float(stats["g_loss"]) == pytest.approx(adversarial + 2.5 * (classifier_fake - twin_fake), rel=1e-4,
                                                   abs=1e-5)
    logs = {k: float(v) for k, v in gan.train_step((x, y)).items()}
    assert all(np.isfinite(logs[k]) for k in ("aux_loss", "twin_loss", "g_aux_loss", "g_loss", "d_loss"))


def test_reacgan_trains_d_and_g_with_the_data_to_data_cross_entropy():
    """reacgan (Kang et al. 2021): D's loss = adversarial + w·D2D-CE(real embeddings, proxies, y), G's = adversarial
    + w·D2D-CE(fake embeddings, proxies, y), against D's outputs computed here; the logit ignores the labels."""
    gan, x, y, z, real_aux, fake_logits, fake_aux = _heads_on_one_batch("reacgan", 0.5)
    assert gan.acgan and not gan.twin
    half = real_aux.shape[-1] // 2
    d2d = lambda aux: float(tf.reduce_mean(losses.data_to_data_cross_entropy(y, aux[:, :half], aux[:, half:])))  # noqa
    real_d2d, fake_d2d = d2d(real_aux), d2d(fake_aux)
    assert abs(real_d2d - fake_d2d) > 1e-4
    _, _, stats = gan.simultaneous_gradients(x, y, z=z, targets=gan.discriminator_targets(4))
    assert float(stats["aux_loss"]) == pytest.approx(real_d2d, rel=1e-4)
    assert float(stats["g_aux_loss"]) == pytest.approx(fake_d2d, rel=1e-4)
    assert float(stats["d_loss"] - stats["d_loss_real"] - stats["d_loss_fake"]) == pytest.approx(0.5 * real_d2d,
                                                                                                  rel=1e-4)
    adversarial = float(tf.reduce_mean(gan.adversarial.generator(fake_logits)))
    assert float(stats["g_loss"]) == pytest.approx(adversarial + 0.5 * fake_d2d, rel=1e-4, abs=1e-5)
    logs = {k: float(v) for k, v in gan.train_step((x, y)).items()}
    assert all(np.isfinite(logs[k]) for k in ("aux_loss", "g_aux_loss", "g_loss", "d_loss"))


def test_acgan_generator_loss_depends_on_the_labels():
    config = load_config(None, [*TINY, *LABELS, "model.discriminator.conditioning=acgan",
                                "model.discriminator.normalization=none"])
    gan = build_gan(config, num_labels=3)
    z = gan.sample_latent(4)
    fake = gan.generate(tf.ones((4, 3)), z=z)
    _, aux = gan.discriminator(fake, tf.ones((4, 3)), return_aux=True)
    g_aux = [float(tf.reduce_mean(losses.auxiliary_bce(y, aux))) for y in (tf.ones((4, 3)), tf.zeros((4, 3)))]
    assert abs(g_aux[0] - g_aux[1]) > 1e-4


@pytest.mark.parametrize("overrides, fragments", [
    (["model.discriminator.conditioning=projection"],
     ["model.discriminator.conditioning", "projection", "needs labels"]),
    (["model.discriminator.conditioning=acgan", "data.source=folder"], ["conditioning", "acgan", "concat"]),
    (["model.discriminator.conditioning=projection_ac", 'data.attributes=["Bald"]'],
     ["model.discriminator.conditioning", "projection_ac", "data.class_conditional", "\"acgan\""]),
    (["model.discriminator.conditioning=projection_tac", 'data.attributes=["Bald"]'],
     ["model.discriminator.conditioning", "projection_tac", "data.class_conditional", "\"acgan\""]),
    (["model.discriminator.conditioning=reacgan", 'data.attributes=["Bald"]'],
     ["model.discriminator.conditioning", "reacgan", "data.class_conditional", "\"acgan\""]),
    (["model.discriminator.conditioning=film"], ["model.discriminator.conditioning", "film", "projection"]),
    (['training.augment=["color", "flip"]'], ["training.augment[1]", "flip", "translation"]),
    (['training.augment=["color", "color"]'], ["training.augment", "twice"]),
    (['training.ada_ops=["blit", "geom"]'], ["training.ada_ops[1]", "geom", '"color"']),
    (['training.ada_ops=[]'], ["training.ada_ops", "non-empty"]),
    (["training.instance_noise_anneal_steps=100"], ["instance_noise_anneal_steps", "instance_noise_stddev"]),
    (["training.r1_every=4"], ["training.r1_every", "r1_gamma"]),
    (["training.r1_every=0", "training.r1_gamma=1"], ["training.r1_every", ">= 1"]),
    (["training.ema_start_step=100"], ["training.ema_start_step", "ema_decay"]),
    (["model.discriminator.input_noise_stddev=0.1"], ["input_noise_stddev", "training.instance_noise_stddev"]),
])
def test_new_rules_are_validated_in_one_line(overrides, fragments):
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert "\n" not in str(info.value)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_retired_input_noise_key_at_zero_still_loads():
    """Frozen experiments wrote every key out, including the retired one at 0.0: they still load."""
    config = load_config(None, ["model.discriminator.input_noise_stddev=0.0"])
    assert config == load_config(None) and "input_noise_stddev" not in str(config.to_dict())
    class_conditional = load_config(None, ['data.source=folder', 'data.class_conditional=true',
                                     "model.discriminator.conditioning=projection"])
    assert class_conditional.model.discriminator.conditioning == "projection"  # labels come at run time


def test_class_conditional_data_without_labels_is_a_clear_error_at_build_time():
    config = load_config(None, [*TINY, "data.source=folder", "data.class_conditional=true",
                                "model.discriminator.conditioning=acgan"])
    with pytest.raises(ConfigError, match="conditioning: 'acgan' needs labels"):
        build_models(config, num_labels=0)


def test_every_training_rule_reaches_compile():
    """A new TrainingConfig key that changes the step must be passed on by ``rules_from_config``."""
    import dataclasses

    from homogan.config import TrainingConfig

    not_rules = {"epochs", "batch_size", "steps_per_epoch", "g_optimizer", "d_optimizer", "precision", "jit_compile",
                 "distribute", "schedule",  # schedule: applied per phase by train(), not compile
                 "ada_below_images"}  # whether ADA runs for the data: train.ada_decision, then ada_target or None
    rules = rules_from_config(load_config(None).training)
    assert set(rules) - {"global_batch_size"} == {f.name for f in dataclasses.fields(TrainingConfig)} - not_rules
