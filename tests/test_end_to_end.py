"""A tiny real training run produces the whole run folder; runs never share a folder; resume is exact."""

import csv
import json
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from homogan import checkpoints
from homogan.train import train
from tests.conftest import ROOT


def history_rows(run):
    with open(run.history, newline="") as f:
        return list(csv.DictReader(f))


def test_tiny_run_writes_the_whole_run_folder(tiny_config):
    config = tiny_config('data.attributes=["Eyeglasses","No_Beard","Bald"]')
    result = train(config, echo=lambda *a, **k: None)
    run = result.run
    assert run.path.parent == config.experiment.output_dir or str(run.path.parent) == config.experiment.output_dir
    assert json.loads(run.config.read_text()) == config.to_dict()
    frames = run.frames()
    assert [f.name for f in frames] == ["epoch_0000.png", "epoch_0001.png", "epoch_0002.png"]
    grid = iio.imread(frames[-1])
    assert grid.shape[0] > 8 * 32 and grid.shape[1] > 8 * 32  # 8 label rows x 8 columns + captions
    rows = history_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for key in ("g_loss", "d_loss_real", "d_loss_fake", "d_acc_real", "d_acc_fake", "images_per_second"):
        assert all(np.isfinite(float(r[key])) for r in rows)
    assert (run.path / "losses.png").stat().st_size > 1000 and (run.path / "accuracy.png").stat().st_size > 1000
    gif = iio.imread(run.gif, index=None)
    assert gif.shape[0] == 3
    assert checkpoints.latest(run.checkpoints).name == "epoch_0002"
    assert list((run.tensorboard / "train").glob("events.out.tfevents.*"))
    assert list((run.tensorboard / "samples").glob("events.out.tfevents.*"))
    assert not list(run.path.rglob("*.tmp-*"))
    second = train(config, echo=lambda *a, **k: None).run
    assert second.path != run.path and run.frames() == frames


def checkpoint_tensors(run_dir):
    """Every numeric tensor of the run's latest checkpoint: weights, Adam slots, RNG state, epoch."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(checkpoints.latest(run_dir / "checkpoints")))
    tensors = {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()}
    return {k: v for k, v in tensors.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fiu"}


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_config):
    """Also with G's Gaussian noise and D's dropout: their seed states are in the checkpoint
    (``layer_rng``), so the resumed run continues their draws instead of replaying step 0's."""
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    quiet = dict(echo=lambda *a, **k: None)
    rules = ('data.attributes=["Bald"]', "training.label_flip=0.1", "training.real_label_range=[0.8, 1.0]",
             "model.generator.noise_stddev=0.1", "model.discriminator.dropout=0.2", "training.ema_decay=0.9")
    straight = train(tiny_config(*rules), **quiet)
    first = train(tiny_config(*rules, "training.epochs=1"), **quiet)
    resumed = train(tiny_config(*rules), resume=first.run.path, **quiet)
    assert resumed.run.path == first.run.path and resumed.epochs_done == 2
    assert [r["epoch"] for r in history_rows(first.run)] == ["1", "2"]
    a, b = checkpoint_tensors(straight.run.path), checkpoint_tensors(first.run.path)
    assert a.keys() == b.keys() and len(a) > 50
    assert any("g_optimizer" in k for k in a) and any("rng" in k for k in a) and any("layer_rng" in k for k in a)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-6, err_msg=key)
    a, b = history_rows(straight.run), history_rows(first.run)
    for key in ("g_loss", "d_loss_real", "d_loss_fake"):
        assert abs(float(a[1][key]) - float(b[1][key])) < 1e-4


def test_resume_of_a_checkpoint_without_noise_states_says_those_draws_restart(tiny_config, monkeypatch):
    """A checkpoint written before ``layer_rng`` existed (simulated: the first run saves no layer
    states) still resumes, with a note that the noise/dropout draws restart from the seed."""
    from homogan import checkpoints

    rules = ("model.generator.noise_stddev=0.1", "model.discriminator.dropout=0.2")
    monkeypatch.setattr(checkpoints, "random_layer_states", lambda *networks: [])
    first = train(tiny_config(*rules, "training.epochs=1"), echo=lambda *a, **k: None)
    monkeypatch.undo()
    said = []
    resumed = train(tiny_config(*rules), resume=first.run.path, echo=lambda *a, **k: said.append(" ".join(map(str, a))))
    assert resumed.epochs_done == 2
    assert any("predates saved noise/dropout states" in line for line in said), said


def test_resume_with_a_changed_config_is_refused(tiny_config):
    from homogan.errors import UserError

    run = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: None).run
    with pytest.raises(UserError, match="config differs"):
        train(tiny_config("training.batch_size=4"), resume=run.path, echo=lambda *a, **k: None)


def test_gif_and_plot_commands(tiny_config, tmp_path):
    run = train(tiny_config(), echo=lambda *a, **k: None).run
    out = tmp_path / "every2.gif"
    r = subprocess.run([sys.executable, "-m", "homogan", "gif", str(run.path), "--every", "2", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert iio.imread(out, index=None).shape[0] == 2  # epochs 0 and 2
    (run.path / "losses.png").unlink()
    r = subprocess.run([sys.executable, "-m", "homogan", "plot", str(run.path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0 and (run.path / "losses.png").is_file()
    r = subprocess.run([sys.executable, "-m", "homogan", "gif", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2 and "no config.json" in r.stderr


def test_checkpoint_retention_keeps_last_k_and_every_n(tmp_path):
    import tensorflow as tf

    v = tf.Variable(0.0)
    ckpt = tf.train.Checkpoint(v=v)
    for epoch in range(1, 11):
        v.assign(float(epoch))
        checkpoints.save(ckpt, tmp_path, epoch, keep=2, keep_every=4)
    assert checkpoints.saved_epochs(tmp_path) == [4, 8, 9, 10]
    assert checkpoints.latest(tmp_path).name == "epoch_0010"
    v.assign(0.0)
    ckpt.read(str(checkpoints.latest(tmp_path))).assert_consumed()
    assert float(v.numpy()) == 10.0


def test_schedule_phases_inherit_and_resume():
    from homogan.config import load_config
    from homogan.train import Phase, schedule_phases

    t = load_config(None, ["training.epochs=6", 'training.schedule=[{"epoch": 3, "batch_size": 32}, '
                                                '{"epoch": 5, "g_learning_rate": 0.0001}]']).training
    assert schedule_phases(t) == [Phase(0, 2, 2e-4, 2e-4, 64), Phase(2, 4, 2e-4, 2e-4, 32), Phase(4, 6, 1e-4, 2e-4, 32)]
    assert schedule_phases(t, initial_epoch=3) == [Phase(3, 4, 2e-4, 2e-4, 32), Phase(4, 6, 1e-4, 2e-4, 32)]
    assert schedule_phases(load_config(None, ["training.epochs=2"]).training) == [Phase(0, 2, 2e-4, 2e-4, 64)]
    short = load_config(None, ["training.epochs=3", 'training.schedule=[{"epoch": 3, "batch_size": 8}, '
                                                    '{"epoch": 9, "batch_size": 16}]']).training
    assert schedule_phases(short) == [Phase(0, 2, 2e-4, 2e-4, 64), Phase(2, 3, 2e-4, 2e-4, 8)]


def test_schedule_changes_batch_size_and_learning_rate_per_epoch(tiny_config):
    import tensorflow as tf

    config = tiny_config("training.epochs=3", 'training.schedule=[{"epoch": 2, "batch_size": 4, '
                                              '"g_learning_rate": 0.001, "d_learning_rate": 0.003}]')
    run = train(config, echo=lambda *a, **k: None).run
    rows = history_rows(run)
    assert [r["epoch"] for r in rows] == ["1", "2", "3"]
    images = [round(float(r["seconds"]) * float(r["images_per_second"])) for r in rows]
    assert images == [16, 8, 8]  # 2 steps of 8, then 2 steps of 4
    reader = tf.train.load_checkpoint(str(checkpoints.latest(run.checkpoints)))
    rates = {k: float(reader.get_tensor(k)) for k in reader.get_variable_to_shape_map() if "learning_rate" in k}
    assert sorted(round(v, 6) for v in rates.values()) == [0.001, 0.003], rates


def test_non_finite_loss_stops_naming_step_and_loss(tiny_config, monkeypatch):
    import math

    from homogan import losses

    good = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: None)
    assert good.stopped is None
    broken = losses.AdversarialLoss(losses.bce_discriminator, lambda fake: fake * math.inf, 0.0, True)
    monkeypatch.setitem(losses.LOSSES, "nonsaturating", broken)
    messages = []
    result = train(tiny_config("training.epochs=3"), echo=lambda *a, **k: messages.append(" ".join(map(str, a))))
    assert result.stopped is not None and "epoch 1, step 1" in result.stopped and "g_loss=" in result.stopped
    assert any(m.startswith("stopped: non-finite loss") for m in messages)
    assert checkpoints.latest(result.run.checkpoints) is None  # nothing non-finite was saved as "good"
    assert not result.run.history.exists()  # no row for the poisoned epoch
