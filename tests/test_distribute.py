"""tf.distribute: MirroredStrategy over 2 logical CPU devices against one device, per-replica random
draws, a 2-process multi-worker run through the command line, and the TPU error off-TPU.

Logical devices must be configured before TensorFlow initialises its devices, which the pytest
process has long done (other tests import TensorFlow), so every distributed case runs in a fresh
subprocess: ``MIRRORED_SCRIPT`` (both mirrored tests share one subprocess, run once per module) and
two ``python -m homogan train`` worker processes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

MIRRORED_SCRIPT = textwrap.dedent('''
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

    B, LATENT, LABELS, STEPS = 8, 8, 2, 3
    out = {}

    class GlobalZ(GAN):
        """Draws the GLOBAL batch's latents from the shared (unfolded) seed and takes this replica's
        slice: with no other randomness, 1 device and 2 replicas then train on the same z per image."""

        def sample_latent(self, n):
            ctx = tf.distribute.get_replica_context()
            seed = keras.random.SeedGenerator.next(self.seed_generator)  # without the replica fold-in
            seed = tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)
            z = tf.random.stateless_normal((n * ctx.num_replicas_in_sync, LATENT), seed=seed)
            return z[ctx.replica_id_in_sync_group * n:(ctx.replica_id_in_sync_group + 1) * n]

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (B * STEPS, 16, 16, 3)).astype("float32")
    y = (rng.random((B * STEPS, LABELS)) > 0.5).astype("float32")
    keras.utils.set_random_seed(0)
    g0, d0 = Generator(16, 3, LATENT, LABELS, width=8, batch_norm=False), Discriminator(16, 3, LABELS, width=8, normalization="none")
    d0(g0(np.zeros((2, LATENT), "float32"), np.zeros((2, LABELS), "float32")), np.zeros((2, LABELS), "float32"))
    init_g, init_d = g0.get_weights(), d0.get_weights()

    def run(strategy, mode, cls=GlobalZ, sgd=False):
        with strategy.scope():
            g, d = Generator(16, 3, LATENT, LABELS, width=8, batch_norm=False), Discriminator(16, 3, LABELS, width=8, normalization="none")
            d(g(np.zeros((2, LATENT), "float32"), np.zeros((2, LABELS), "float32")), np.zeros((2, LABELS), "float32"))
            g.set_weights(init_g); d.set_weights(init_d)
            gan = cls(g, d, seed=5)
            g_opt, d_opt = keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5)
            if sgd:
                g_opt, d_opt = keras.optimizers.SGD(0.05), keras.optimizers.SGD(0.05)
            g_opt.build(g.trainable_variables); d_opt.build(d.trainable_variables)
            gan.compile(g_opt, d_opt, global_batch_size=B, update_mode=mode)
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(B)
        h = gan.fit(data, epochs=1, verbose=0, shuffle=False).history
        return ({k: float(v[0]) for k, v in h.items()}, [w.numpy() for w in g.weights + d.weights])

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    # SGD: weight change = lr x gradient, so the loss scale (sum / GLOBAL batch) shows in the weights.
    (_, w1), (_, w2) = run(tf.distribute.get_strategy(), "alternating", sgd=True), run(mirrored, "alternating", sgd=True)
    out["sgd"] = dict(max_abs_weight_diff=max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
                      max_abs_update=max(float(np.abs(a - b).max()) for a, b in zip(w1, init_g + init_d)))
    for mode in ("alternating", "simultaneous"):
        (h1, w1), (h2, w2) = run(tf.distribute.get_strategy(), mode), run(mirrored, mode)
        out[mode] = dict(
            losses_one=h1, losses_two=h2,
            max_abs_weight_diff=max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)),
            max_abs_update=max(float(np.abs(a - b).max()) for a, b in zip(w1, init_g + init_d)),
            replicas=mirrored.num_replicas_in_sync)

    # Per-replica draws: z, smoothed targets and flips of the GAN's seed generator, and (for the
    # record) what a plain keras SeedGenerator gives every replica.
    with mirrored.scope():
        gan = GAN(Generator(16, 3, LATENT, LABELS, width=8), Discriminator(16, 3, LABELS, width=8), seed=5)
        gan.compile(keras.optimizers.Adam(), keras.optimizers.Adam(), real_label_range=(0.7, 1.0), label_flip=0.3)
        plain = keras.random.SeedGenerator(5)

    @tf.function
    def draws():
        def per_replica():
            real_t, fake_t = gan.discriminator_targets(64)
            return gan.sample_latent(4), real_t, keras.random.normal((4, LATENT), seed=plain)
        return mirrored.run(per_replica)

    first, second = draws(), draws()
    local = lambda v: [t.numpy().tolist() for t in mirrored.experimental_local_results(v)]
    out["draws"] = dict(z=local(first[0]), z_next=local(second[0]), real_t=local(first[1]), plain_z=local(first[2]),
                        state=gan.seed_generator.state.numpy().tolist())

    # The networks' own random layers: G's Gaussian noise and D's dropout, on identical inputs per
    # replica (no batch norm, so nothing else differs between replicas), and Keras's own noise layer.
    with mirrored.scope():
        noisy_g = Generator(16, 3, LATENT, LABELS, width=8, batch_norm=False, noise_stddev=0.5)
        dropout_d = Discriminator(16, 3, LABELS, width=8, normalization="none", dropout=0.5)
        keras_noise = keras.layers.GaussianNoise(0.5, seed=5)
        keras_dropout = keras.layers.Dropout(0.5, seed=5)
    z_in, y_in = tf.ones((4, LATENT)), tf.ones((4, LABELS))

    @tf.function
    def layers():
        def per_replica():
            return (noisy_g(z_in, y_in, training=True), dropout_d(tf.ones((4, 16, 16, 3)), y_in, training=True),
                    keras_noise(tf.zeros((4, 6)), training=True), keras_dropout(tf.ones((4, 6)), training=True),
                    noisy_g(z_in, y_in, training=False))
        return mirrored.run(per_replica)

    out["layers"] = dict(zip(("g_noise", "d_dropout", "keras_noise", "keras_dropout", "g_inference"),
                             (local(v) for v in layers())))
    one = GAN(Generator(16, 3, LATENT, LABELS, width=8), Discriminator(16, 3, LABELS, width=8), seed=5)
    out["draws"]["one_device_z"] = one.sample_latent(4).numpy().tolist()
    out["draws"]["one_device_plain_z"] = keras.random.normal((4, LATENT), seed=keras.random.SeedGenerator(5)).numpy().tolist()
    print("RESULT " + json.dumps(out))
''')


@pytest.fixture(scope="module")
def mirrored_results(tmp_path_factory):
    script = tmp_path_factory.mktemp("mirrored") / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(ROOT)], capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("mode", ["alternating", "simultaneous"])
def test_mirrored_two_replicas_match_one_device(mirrored_results, mode):
    """MirroredStrategy over 2 logical CPUs trains like one device on the same global batch.

    Compared: the epoch's logged losses and accuracies (Keras averages each replica's metric over
    replicas, so they must equal the single-device means over the global batch) and every weight of G
    and D after 3 steps of Adam (lr 2e-4), with 8 images per step split 4 + 4 over the replicas.

    Made equal on both sides: the initial weights, the data and its order, and the randomness — the
    latents are the only random draw (no smoothing, flips, noise or augmentation), and the test's
    GAN draws the global batch's z from the shared seed and gives each replica its slice. Networks
    without batch norm: Keras's BatchNormalization uses per-replica batch statistics, so with it
    2 replicas genuinely train a different model (that is not a bug of the step).

    Tolerance: what remains is float32 rounding. Each replica sums its 4 per-example losses and
    divides by the global 8 (``compute_average_loss``); the two partial gradients are then all-reduced,
    i.e. added in a different order than in the single-device sum — differences of a few ulp
    (~1e-7 relative). Adam divides by √v, which maps a tiny gradient difference to a weight
    difference of at most a few 1e-7 of the learning rate for ordinary gradients, but for the rare
    near-zero gradient component its sign may flip (an update of ±lr). So weights are compared at
    atol = lr/2 = 1e-4, a sixth of the 3-step movement (~3·lr = 6e-4, asserted so a run that does not
    train cannot pass); measured here: 3e-8. Losses (mean over the same 8 images) at rtol 1e-5. A
    wrong loss scale (e.g. dividing by the per-replica batch) doubles the gradients, which Adam
    largely normalises away, so the same comparison is also made with SGD (lr 0.05), where the weight
    change is lr × gradient: a ×2 gradient would differ by the whole update (~1e-2); float32
    rounding leaves ~1e-7, compared at 1e-5.
    """
    r = mirrored_results[mode]
    assert r["replicas"] == 2
    one, two = r["losses_one"], r["losses_two"]
    assert set(one) == set(two) and {"g_loss", "d_loss", "d_acc_real"} <= set(one)
    for name in one:
        assert two[name] == pytest.approx(one[name], rel=1e-5, abs=1e-6), name
    assert r["max_abs_update"] > 4e-4  # training moved the weights (3 Adam steps of lr 2e-4)
    assert r["max_abs_weight_diff"] < 1e-4, r["max_abs_weight_diff"]
    sgd = mirrored_results["sgd"]
    assert sgd["max_abs_update"] > 1e-3 and sgd["max_abs_weight_diff"] < 1e-5, sgd


def test_replicas_draw_different_latents_and_targets(mirrored_results):
    """Each replica draws its own z and smoothed targets (the replica id is folded into the seed);
    the seed state still advances once per draw like on one device, and replica 0 ≠ one device only by
    the fold-in. A plain ``keras.random.SeedGenerator`` gives both replicas the same z — the
    behaviour the fold-in fixes (asserted so that a change in Keras shows up here)."""
    r = mirrored_results["draws"]
    z0, z1 = (np.array(z) for z in r["z"])
    assert z0.shape == (4, 8) and not np.allclose(z0, z1)
    assert not np.allclose(np.array(r["real_t"][0]), np.array(r["real_t"][1]))
    assert not np.allclose(z0, np.array(r["z_next"][0]))  # fresh draws every step
    assert np.allclose(*(np.array(z) for z in r["plain_z"]))  # Keras alone: identical per replica
    # One device: the GAN's generator equals a plain SeedGenerator exactly (no fold-in with 1 replica).
    np.testing.assert_array_equal(np.array(r["one_device_z"]), np.array(r["one_device_plain_z"]))
    assert r["state"] == [5, 6]  # 2 calls × 3 draws (real targets, flips, z), counted once for both replicas


def test_noise_and_dropout_differ_per_replica(mirrored_results):
    """G's Gaussian noise and D's dropout draw independently on each replica: two replicas given the
    same inputs get different outputs in training (the same at inference). Keras's own
    ``GaussianNoise`` and ``Dropout`` give every replica the same noise and mask — why the networks use
    ``homogan.models.blocks.GaussianNoise``/``Dropout`` (asserted so a change in Keras shows up)."""
    r = mirrored_results["layers"]
    g0, g1 = (np.array(v) for v in r["g_noise"])
    assert g0.shape == (4, 16, 16, 3) and np.abs(g0 - g1).max() > 1e-3
    d0, d1 = (np.array(v) for v in r["d_dropout"])
    assert np.abs(d0 - d1).max() > 1e-4
    np.testing.assert_array_equal(*(np.array(v) for v in r["g_inference"]))
    k0, k1 = (np.array(v) for v in r["keras_noise"])
    assert np.abs(k0).max() > 0.1 and np.array_equal(k0, k1)
    m0, m1 = (np.array(v) for v in r["keras_dropout"])
    assert (m0 == 0).any() and np.array_equal(m0, m1)


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _run_workers(argv, temps):
    """``python -m homogan train ARGV`` as 2 local workers (TF_CONFIG each, TMPDIR per worker); both must exit 0."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for i, temp in enumerate(temps):
        env = dict(os.environ, TMPDIR=str(temp), TF_CPP_MIN_LOG_LEVEL="3",
                   TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
        procs.append(subprocess.Popen([sys.executable, "-m", "homogan", "train", *argv], cwd=ROOT, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for p in procs:
            outputs.append(p.communicate(timeout=240))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, err[-3000:]
    return [out for out, _ in outputs]


def _optimizer_iterations(checkpoint):
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(checkpoint))
    return sorted(int(reader.get_tensor(k)) for k in reader.get_variable_to_shape_map()
                  if k.endswith("iterations/.ATTRIBUTES/VARIABLE_VALUE"))


def test_multi_worker_two_local_processes_write_one_run_folder_and_resume(synthetic_root, tmp_path):
    """Two worker processes on 127.0.0.1 (TF_CONFIG each) train 2 steps with
    ``training.distribute=multi_worker`` via ``python -m homogan train``: exactly one run folder (the
    chief's, worker 0) with a checkpoint after 2 G and 2 D updates; worker 1's scratch folder is gone.
    Then both resume that folder (``--resume``, 2 epochs): the same folder continues at epoch 2 (its
    epoch-1 history untouched) to 4 G and 4 D updates, and no second folder appears."""
    runs = tmp_path / "runs"
    sets = [f"data.root={synthetic_root}", "data.synthetic_images=240", "data.image_size=32", "model.latent_dim=16",
            "model.generator.width=8", "model.discriminator.width=8", "training.batch_size=8", "training.epochs=1",
            "training.steps_per_epoch=2", f"experiment.output_dir={runs}", "logging.progress=none",
            "logging.tensorboard=false", "logging.gif=false", "training.distribute=multi_worker"]
    argv = [a for kv in sets for a in ("--set", kv)]
    temps = [tmp_path / f"tmp{i}" for i in range(2)]
    for temp in temps:
        temp.mkdir()
    _run_workers(argv, temps)
    folders = list(runs.iterdir())
    assert len(folders) == 1, folders
    run = folders[0]
    assert (run / "config.json").is_file() and (run / "history.csv").is_file()
    assert len((run / "history.csv").read_text().strip().splitlines()) == 2  # header + epoch 1
    assert [list(t.iterdir()) for t in temps] == [[], []]  # the non-chief's scratch run was removed
    assert _optimizer_iterations(run / "checkpoints" / "epoch_0001") == [2, 2]  # g_optimizer and d_optimizer

    epoch_1 = (run / "history.csv").read_text().strip().splitlines()
    chief_out, _ = _run_workers(["--resume", str(run), *argv, "--set", "training.epochs=2"], temps)
    assert "epochs 2..2" in chief_out  # continued from the checkpoint, not trained afresh
    assert list(runs.iterdir()) == [run]
    assert (run / "history.csv").read_text().strip().splitlines()[:2] == epoch_1  # epoch 1 kept as it was
    assert len((run / "history.csv").read_text().strip().splitlines()) == 3  # header + epochs 1 and 2
    assert _optimizer_iterations(run / "checkpoints" / "epoch_0002") == [4, 4]
    assert [list(t.iterdir()) for t in temps] == [[], []]


def test_tpu_without_a_tpu_is_a_one_line_error():
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from homogan.train import _strategy\n_strategy('tpu')\n")
    proc = subprocess.run([sys.executable, "-c", code, str(ROOT)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("homogan.errors.UserError: training.distribute: \"tpu\" found no TPU"), last


def test_multi_worker_without_tf_config_is_a_one_line_error(monkeypatch):
    from homogan.errors import UserError
    from homogan.train import _strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match="needs the TF_CONFIG environment variable"):
        _strategy("multi_worker")
