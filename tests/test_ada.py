"""Adaptive discriminator augmentation (Karras et al. 2020): the augmentation, p's rule, its state across a
resume, when it is on, and the overfitting warning."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from homogan import augment


def seed():
    import keras

    return keras.random.SeedGenerator(3)


def test_p_zero_is_the_identity_and_p_one_changes_every_image_differentiably():
    x = tf.random.stateless_uniform((8, 16, 16, 3), (1, 2), -1, 1)
    np.testing.assert_array_equal(augment.ada_augment(x, 0.0, seed()).numpy(), x.numpy())
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = augment.ada_augment(x, 1.0, seed())
        loss = tf.reduce_sum(y * tf.random.stateless_normal(y.shape, (3, 4)))
    assert all(not np.allclose(a, b) for a, b in zip(y.numpy(), x.numpy()))
    grad = tape.gradient(loss, x)
    assert grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0


def test_the_op_groups_do_only_their_own_work():
    """``ops=("blit",)`` moves pixels and changes no value (every output pixel is an input pixel of its image or
    the zero a shift uncovers); ``ops=("color",)`` changes values and moves nothing (the brightest pixel of a
    one-bright-pixel image stays where it was). Both at p = 1, where every op is chosen."""
    import keras

    x = tf.random.stateless_uniform((16, 16, 16, 3), (5, 6), -1, 1)
    blit = augment.ada_augment(x, 1.0, keras.random.SeedGenerator(1), ops=("blit",)).numpy()
    for a, b in zip(blit, x.numpy()):
        allowed = {tuple(v) for v in b.reshape(-1, 3)} | {(0.0, 0.0, 0.0)}
        assert all(tuple(v) in allowed for v in a.reshape(-1, 3))
    assert not np.allclose(blit, x.numpy())
    dot = np.full((16, 16, 16, 3), -1.0, np.float32)
    dot[:, 3, 11] = 1.0
    color = augment.ada_augment(tf.constant(dot), 1.0, keras.random.SeedGenerator(1), ops=("color",)).numpy()
    assert not np.allclose(color, dot)
    assert all(divmod(int(np.argmax(c.mean(-1))), 16) == (3, 11) for c in color)


def chirality(images):
    """Handedness of an L of three pixels — the corner brightest, its two arms dimmer and dimmer — as the sign
    of the cross product (corner → second brightest) × (corner → third): kept by rotations and shifts,
    reversed by a mirror image."""
    out = []
    for y in np.asarray(images).mean(axis=-1):
        corner, a, b = (np.array(divmod(int(i), y.shape[1])) for i in np.argsort(y.ravel())[::-1][:3])
        (u, v), (w, z) = a - corner, b - corner
        out.append(int(np.sign(u * z - v * w)))
    return np.array(out)


def l_shapes(n: int) -> np.ndarray:
    """An L of three pixels on a dark ground — the corner brightest, its arms dimmer and dimmer: every
    transformation leaves a different trace (turns move the arms, a mirror image reverses the handedness)."""
    x = np.full((n, 16, 16, 3), -1.0, np.float32)
    for (r, c), value in zip(((7, 7), (7, 8), (8, 7)), (1.0, 0.6, 0.3)):
        x[:, r, c] = value
    return x


def arm_direction(images) -> list[tuple[int, int]]:
    """From the brightest pixel to the second brightest: (0, 1) upright; turns by 90° give the other three."""
    out = []
    for y in np.asarray(images).mean(axis=-1):
        corner, a = (np.array(divmod(int(i), y.shape[1])) for i in np.argsort(y.ravel())[::-1][:2])
        out.append(tuple(int(v) for v in a - corner))
    return out


def test_without_xflip_no_image_comes_mirrored():
    """Turns and shifts keep the L's handedness, a mirror image reverses it; with x-flip a chosen image is
    mirrored with probability 1/2 (StyleGAN2-ADA's rule), so at p = 1 about half are."""
    import keras

    x = l_shapes(1024)
    original = chirality(x)[0]
    kept = chirality(augment.ada_augment(tf.constant(x), 1.0, keras.random.SeedGenerator(5), xflip=False))
    flipped = chirality(augment.ada_augment(tf.constant(x), 1.0, keras.random.SeedGenerator(5), xflip=True))
    assert np.all(kept == original)
    assert np.mean(flipped == -original) == pytest.approx(0.5, abs=0.06)


@pytest.mark.parametrize("p", [0.9, 1.0])
def test_augmentation_does_not_leak_the_original_stays_the_likeliest(p):
    """Karras et al. 2020, §2.2: an augmentation applied with probability p is non-leaking if, once chosen, it
    draws from a set that holds the identity — a turn of 0°, 90°, 180° or 270° — so upright images stay the
    likeliest for every p < 1 (P = 1 − 3p/4 against p/4 per turn; at p = 1 all four are equal). Always turning a
    chosen image (one of 90°, 180°, 270°) would leave P(upright) = 1 − p: the rotated images would be the
    likelier ones above p = 3/4, and G would learn to draw them (fails on that rule)."""
    import collections

    import keras

    directions = collections.Counter(arm_direction(
        augment.ada_augment(tf.constant(l_shapes(4096)), p, keras.random.SeedGenerator(7), xflip=False)))
    assert set(directions) == {(0, 1), (1, 0), (0, -1), (-1, 0)}
    upright = directions[(0, 1)] / 4096
    turned = [directions[d] / 4096 for d in ((1, 0), (0, -1), (-1, 0))]
    assert upright == pytest.approx(1 - 3 * p / 4, abs=0.03)
    assert all(t == pytest.approx(p / 4, abs=0.03) for t in turned)
    if p < 1:
        assert upright > max(turned)


@pytest.mark.parametrize("rt, expected", [(0.9, 0.1 + 0.04), (0.3, 0.1 - 0.04), (0.6, 0.1)])
def test_p_moves_by_the_sign_of_rt_minus_target(rt, expected):
    assert float(augment.ada_step(0.1, rt, 0.6, images_per_adjustment=4000, speed_images=100_000)) == pytest.approx(expected)
    assert float(augment.ada_step(0.99, 1.0, 0.6, 4000, 100_000)) == 1.0
    assert float(augment.ada_step(0.01, 0.0, 0.6, 4000, 100_000)) == 0.0


def test_an_overconfident_d_raises_p_every_interval(monkeypatch):
    """With D sure of every real image (r_t = 1), p rises by batch · interval / speed every interval D updates."""
    import keras

    from homogan.gan import GAN
    from homogan.models import Discriminator, Generator

    g = Generator(16, 3, 8, 0, width=4, name="g")
    d = Discriminator(16, 3, 0, width=4, name="d")
    d(g(tf.zeros((2, 8)), tf.zeros((2, 0))), tf.zeros((2, 0)))
    gan = GAN(g, d, seed=1)
    g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
    g_opt.build(g.trainable_variables)
    d_opt.build(d.trainable_variables)
    gan.compile(g_opt, d_opt, global_batch_size=8, ada_target=0.6, ada_speed_images=800, ada_interval=2)
    monkeypatch.setattr(gan, "_score", lambda images, labels: (d(images, labels, training=True) + 100.0, None))
    step = tf.function(gan.train_step)
    real = tf.random.stateless_uniform((8, 16, 16, 3), (1, 1), -1, 1)
    seen = []
    for _ in range(6):
        logs = step((real, tf.zeros((8, 0))))
        seen.append(float(gan.ada_p.numpy()))
    assert seen == pytest.approx([0.0, 0.02, 0.02, 0.04, 0.04, 0.06])  # 8 · 2 / 800 every 2 updates
    assert float(logs["ada_rt"]) == 1.0


def test_ada_is_off_by_default_on_when_asked_for_small_data_if_told_and_never_for_a_critic(tiny_config):
    from homogan.train import ada_decision

    assert ada_decision(tiny_config(), 192) == (False, "off (training.ada_target is null)")
    on = tiny_config("training.ada_target=0.6")
    assert ada_decision(on, 10**6)[0] and "on: r_t steered to 0.6" in ada_decision(on, 10**6)[1]
    small = tiny_config("training.ada_target=0.6", "training.ada_below_images=10000")
    assert ada_decision(small, 192)[0] and "192 images < 10,000" in ada_decision(small, 192)[1]
    assert not ada_decision(small, 16000)[0] and "16,000 images" in ada_decision(small, 16000)[1]
    critic = tiny_config("training.ada_target=0.6", "training.loss=wasserstein", "training.gradient_penalty=10",
                         "model.discriminator.normalization=layer")
    assert not ada_decision(critic, 10)[0]


def test_a_small_data_run_logs_p_and_rt_and_resumes_them_exactly(tiny_config):
    import json

    from homogan.train import train

    quiet = dict(echo=lambda *a, **k: None)
    rules = ("training.ada_target=0.6", "training.ada_below_images=10000",  # on, as for small data
             "training.ada_speed_images=64", "training.ada_interval=1")  # p moves visibly in 4 steps
    straight = train(tiny_config(*rules), **quiet)
    first = train(tiny_config(*rules, "training.epochs=1"), **quiet)
    resumed = train(tiny_config(*rules), resume=first.run.path, **quiet)
    a, b = straight.history, json.loads(json.dumps(resumed.history))
    assert "ada_p" in a[-1] and "ada_rt" in a[-1] and a[-1]["ada_p"] > 0
    assert [round(r["ada_p"], 6) for r in a] == [round(r["ada_p"], 6) for r in b]
    session = json.loads(first.run.record.read_text())["sessions"][0]
    assert session["ada"]["active"] and "192 images < 10,000" in session["ada"]["reason"]
    assert (straight.run.path / "ada.png").is_file()
    tags = {v.tag for f in (straight.run.tensorboard / "train").glob("events.out.tfevents.*")
            for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value}
    assert {"epoch_ada_p", "epoch_ada_rt"} <= tags, sorted(tags)


def test_an_overfit_discriminator_gets_one_warning_line_naming_what_helps():
    from homogan.callbacks import OverfitWarning

    said = []
    callback = OverfitWarning(lambda *a, **k: said.append(a[0]), patience=3)
    callback.set_model(type("M", (), {"stop_training": False})())
    sure = {"d_acc_real": 0.995, "d_acc_fake": 1.0, "ada_rt": 0.98}
    for epoch, logs in enumerate([sure, sure, {"d_acc_real": 0.9, "d_acc_fake": 1.0}, sure, sure, sure, sure]):
        callback.on_epoch_end(epoch, logs)
    assert len(said) == 1 and "epoch 6" in said[0] and "r_t 0.98" in said[0] and "training.ada_target" in said[0]
    assert "model.discriminator.spectral_norm=true" in said[0]


def test_the_overfit_warning_names_spectral_norm_only_for_a_d_without_it():
    from homogan.callbacks import OverfitWarning

    said = []
    callback = OverfitWarning(lambda *a, **k: said.append(a[0]), patience=1, spectral_norm=True)
    callback.set_model(type("M", (), {"stop_training": False})())
    callback.on_epoch_end(0, {"d_acc_real": 1.0, "d_acc_fake": 1.0})
    assert len(said) == 1 and "spectral_norm" not in said[0] and "training.ada_target" in said[0]


ADA_MIRRORED_SCRIPT = '''
import json, os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
sys.path.insert(0, sys.argv[1])
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
from homogan.gan import GAN
from homogan.models import Discriminator, Generator


class SignOfBrightness(GAN):
    """D's verdict on an image is the sign of its mean brightness (D's weights still in the graph, times 0)."""

    def _score(self, images, labels):
        out = self.discriminator(images, labels, training=True)
        return out * 0.0 + 100.0 * tf.reduce_mean(images, axis=[1, 2, 3]), None


# 6 bright images then 2 dark ones per global batch of 8: replica 0 gets 4 bright (its own r_t = 1), replica 1
# 2 bright + 2 dark (r_t = 0); the global r_t is 0.5.
x = np.concatenate([np.ones((6, 16, 16, 3)), -np.ones((2, 16, 16, 3))]).astype("float32")
x = np.tile(x, (3, 1, 1, 1))
out = {}
for name, strategy in (("one", tf.distribute.get_strategy()),
                       ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
    with strategy.scope():
        g, d = Generator(16, 3, 8, 0, width=4), Discriminator(16, 3, 0, width=4, normalization="none")
        d(g(tf.zeros((2, 8)), tf.zeros((2, 0))), tf.zeros((2, 0)))
        gan = SignOfBrightness(g, d, seed=1)
        g_opt, d_opt = keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4)
        g_opt.build(g.trainable_variables)
        d_opt.build(d.trainable_variables)
        gan.compile(g_opt, d_opt, global_batch_size=8, ada_target=0.6, ada_speed_images=80, ada_interval=1)
        gan.ada_p.assign(0.5)
    data = tf.data.Dataset.from_tensor_slices((x, np.zeros((24, 0), "float32"))).batch(8)
    history = gan.fit(data, epochs=1, verbose=0, shuffle=False).history
    out[name] = dict(p=[float(v.numpy()) for v in strategy.experimental_local_results(gan.ada_p)],
                     rt=float(history["ada_rt"][-1]), replicas=strategy.num_replicas_in_sync)
print("RESULT " + json.dumps(out))
'''


def test_p_is_identical_across_replicas_and_follows_the_global_rt(tmp_path):
    """Under MirroredStrategy over 2 logical CPUs, r_t is the global batch's (all-reduced), so both replicas
    move p the same way and hold the same value — the one device's. Here replica 0 alone would see r_t = 1
    and raise p; the global r_t = 0.5 < 0.6 lowers it by 8/80 per D update: 0.5 → 0.2 after 3 steps."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "ada_mirrored.py"
    script.write_text(ADA_MIRRORED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(Path(__file__).resolve().parents[1])],
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["two"]["replicas"] == 2 and len(out["two"]["p"]) == 2
    assert out["one"]["p"] == pytest.approx([0.2]) and out["two"]["p"] == pytest.approx([0.2, 0.2])
    assert out["one"]["rt"] == pytest.approx(0.5) and out["two"]["rt"] == pytest.approx(0.5)


def test_the_unseen_images_are_what_the_limit_left_out_of_the_selection(tiny_config, tmp_path):
    from PIL import Image

    from homogan.data.sources import open_source, unseen_source

    config = tiny_config("data.limit=100")
    training = open_source(config)
    unseen = unseen_source(config, training, 50)
    full = open_source(tiny_config())
    label_of = dict(zip(full.paths, map(tuple, full.labels)))
    assert unseen.count == 50 and not set(unseen.paths) & set(training.paths) and set(unseen.paths) <= set(label_of)
    assert [label_of[p] for p in unseen.paths] == list(map(tuple, unseen.labels))
    assert unseen_source(config, training, 50).paths == unseen.paths  # a fixed order
    assert unseen_source(tiny_config(), full, 50) is None  # no limit: nothing left out
    assert unseen_source(tiny_config("data.limit=100000"), full, 50) is None
    for cls in ("a", "b"):
        (tmp_path / "folder" / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8), 40 * i).save(tmp_path / "folder" / cls / f"{i}.png")
    folder = tiny_config("data.source=folder", f"data.root={tmp_path / 'folder'}", "data.class_conditional=true",
                         "data.attributes=[]", "data.limit=8")
    training = open_source(folder)
    unseen = unseen_source(folder, training, 50)
    assert unseen.count == 4 and not set(unseen.paths) & set(training.paths)
    assert all(label[["a", "b"].index(Path(p).parent.name)] == 1 for p, label in zip(unseen.paths, unseen.labels))


def test_memorisation_is_logged_where_images_are_left_out_and_measuring_changes_no_weight(tiny_config):
    """With ``data.limit`` leaving images out, every epoch's row holds D's accuracy on training and on unseen
    images and r_v; the measurement puts back every variable it moves, so a measured run ends with the same
    weights (batch-norm statistics included) as one that does not measure."""
    from homogan import checkpoints
    from homogan.train import train

    quiet = dict(echo=lambda *a, **k: None)
    measured = train(tiny_config("data.limit=100"), **quiet)
    plain = train(tiny_config("data.limit=100", "logging.memorisation_images=0"), **quiet)
    row = measured.history[-1]
    assert {"d_acc_seen", "d_acc_unseen", "ada_rv"} <= set(row) and 0 <= row["d_acc_unseen"] <= 1
    assert "ada_rv" not in plain.history[-1]
    assert "ada_rv" not in train(tiny_config(), **quiet).history[-1]  # no limit: nothing to measure on
    header = (measured.run.path / "history.csv").read_text().splitlines()[0]
    assert "d_acc_unseen" in header and "ada_rv" in header

    def weights(result):  # every network weight the last checkpoint holds
        reader = tf.train.load_checkpoint(str(checkpoints.latest(result.run.checkpoints)))
        return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
                if "_weights" in k and "OPTIMIZER" not in k}

    a, b = weights(measured), weights(plain)
    assert a.keys() == b.keys() and len(a) > 10
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]


def test_the_overfit_warning_says_how_d_scores_unseen_images_when_measured():
    from homogan.callbacks import OverfitWarning

    said = []
    callback = OverfitWarning(lambda *a, **k: said.append(a[0]), patience=1)
    callback.set_model(type("M", (), {"stop_training": False})())
    callback.on_epoch_end(0, {"d_acc_real": 1.0, "d_acc_fake": 1.0, "ada_rt": 1.0, "d_acc_seen": 1.0,
                              "d_acc_unseen": 0.61, "ada_rv": 0.49})
    assert "100% of its training images real and 61% of unseen ones, r_v 0.49" in said[0]
