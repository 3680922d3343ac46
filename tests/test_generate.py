"""Generation from a trained run: label requests, grids, single files, latent walks, sweeps, EMA weights,
and one-line exit-2 errors for bad requests."""

import imageio.v3 as iio
import numpy as np
import pytest

from homogan import generate as gen
from homogan.cli import main
from homogan.config import load_config
from homogan.errors import UserError

QUIET = dict(echo=lambda *a, **k: None)
NAMES = ["Eyeglasses", "No_Beard", "Bald"]


def test_parse_attributes_accepts_good_requests_and_names_what_is_wrong():
    assert gen.parse_attributes("Eyeglasses=1, Bald=0", NAMES, False) == {"Eyeglasses": 1, "Bald": 0}
    assert gen.parse_attributes(None, NAMES, False) == {}
    assert gen.parse_attributes("cat=1", ["cat", "dog"], True) == {"cat": 1}
    for text, names, one_hot, fragment in [
        ("Glasses=1", NAMES, False, "allowed: Eyeglasses, No_Beard, Bald"),
        ("Bald=2", NAMES, False, "allowed values: 0, 1"),
        ("Bald", NAMES, False, "NAME=0 or NAME=1"),
        ("Bald=1,Bald=0", NAMES, False, "twice"),
        ("Bald=1", [], False, "unconditional"),
        ("cat=1,dog=1", ["cat", "dog"], True, "exactly one class"),
        ("cat=0", ["cat", "dog"], True, "exactly one class"),
    ]:
        with pytest.raises(UserError) as info:
            gen.parse_attributes(text, names, one_hot)
        assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unspecified_attributes_follow_the_data_or_are_zero():
    rng = np.random.default_rng(0)
    # In this "data", Bald=1 always comes with No_Beard=0, and Eyeglasses is 1 in 3/4 of the images.
    pool = np.array([[1, 1, 0], [1, 0, 1], [0, 1, 0], [1, 0, 1]] * 25, np.float32)
    labels = gen.make_labels(400, NAMES, False, {"Bald": 1}, pool, rng)
    assert np.all(labels[:, 2] == 1) and np.all(labels[:, 1] == 0) and np.all(labels[:, 0] == 1)
    labels = gen.make_labels(4000, NAMES, False, {}, pool, rng)
    assert labels[:, 0].mean() == pytest.approx(0.75, abs=0.03)
    labels = gen.make_labels(10, NAMES, False, {"No_Beard": 1, "Bald": 1}, pool, rng)  # in no image: written over
    assert np.all(labels[:, 1:] == 1)
    assert not gen.make_labels(5, NAMES, False, {"Bald": 1}, None, rng)[:, :2].any()
    one_hot = gen.make_labels(6, ["a", "b", "c"], True, {"c": 1}, None, rng)
    assert np.all(one_hot.argmax(1) == 2) and np.all(one_hot.sum(1) == 1)
    assert gen.make_labels(3, [], False, {}, None, rng).shape == (3, 0)


def test_slerp_ends_at_the_endpoints():
    a, b = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    path = gen.slerp(a, b, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], a, atol=1e-12)
    np.testing.assert_allclose(path[-1], b, atol=1e-12)


@pytest.fixture(scope="module")
def run(synthetic_root, tmp_path_factory):
    from homogan.train import train

    out = tmp_path_factory.mktemp("gen-runs")
    config = load_config(None, [f"data.root={synthetic_root}", "data.synthetic_images=240", "data.image_size=32",
                                "model.latent_dim=16", "model.generator.width=8", "model.discriminator.width=8",
                                "training.batch_size=8", "training.epochs=1", "training.steps_per_epoch=2",
                                "training.ema_decay=0.5", f"experiment.output_dir={out}", "logging.progress=none",
                                'data.attributes=["Eyeglasses","No_Beard","Bald"]'])
    return train(config, **QUIET).run


def test_the_ema_generator_is_restored_with_every_weight(run):
    import keras
    import tensorflow as tf

    from homogan import checkpoints

    loaded = gen.load_run(run.path, **QUIET)
    assert loaded.generator_name == "ema_generator" and loaded.epoch == 1 and loaded.label_names == NAMES
    reader = tf.train.load_checkpoint(str(checkpoints.latest(run.checkpoints)))
    weights = loaded.generator.weights
    assert len(weights) > 10 and any("moving_mean" in w.path for w in weights)  # batch-norm statistics too
    for i, w in enumerate(weights):
        saved = reader.get_tensor(f"ema_generator_weights/{i}/.ATTRIBUTES/VARIABLE_VALUE")
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(w), saved, err_msg=w.path)
    # The raw generator (the same run read without EMA) is restored too, and draws different images.
    raw = gen.load_run(run.path, overrides=("training.ema_decay=null",), **QUIET)
    assert raw.generator_name == "generator"
    z, y = np.ones((2, 16), np.float32), np.zeros((2, 3), np.float32)
    a = keras.ops.convert_to_numpy(loaded.generator(z, y, training=False))
    b = keras.ops.convert_to_numpy(raw.generator(z, y, training=False))
    assert np.abs(a - b).max() > 1e-4
    again = gen.load_run(run.path, **QUIET)  # a fresh build restores exactly the same weights
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again.generator(z, y, training=False)), a)


def test_grid_separate_interpolate_and_sweep(run, tmp_path):
    [grid] = gen.generate(run.path, n=6, attributes="Bald=1", seed=3, **QUIET)
    assert grid.parent == run.path / "generated" and iio.imread(grid).shape[0] > 2 * 32
    again = gen.generate(run.path, n=6, attributes="Bald=1", seed=3, out=str(tmp_path / "again.png"), **QUIET)[0]
    assert np.array_equal(iio.imread(grid), iio.imread(again))  # the same seed draws the same images
    files = gen.generate(run.path, n=3, separate=True, out=str(tmp_path / "single"), **QUIET)
    assert [f.name for f in files] == ["0000.png", "0001.png", "0002.png"]
    assert iio.imread(files[0]).shape == (32, 32, 3)
    assert not np.array_equal(iio.imread(files[0]), iio.imread(files[1]))
    strip, gif = gen.generate(run.path, interpolate=True, steps=4, out=str(tmp_path / "walk.png"), **QUIET)
    assert strip.is_file() and gif == tmp_path / "walk.gif"
    assert iio.imread(gif, index=None).shape[0] == 6  # 4 steps there and 2 back (a seamless loop)
    assert not list(tmp_path.glob(".walk-frames*"))
    [sweep] = gen.generate(run.path, n=4, sweep="Eyeglasses", out=str(tmp_path / "sweep.png"), **QUIET)
    assert iio.imread(sweep).shape[0] > 2 * 32
    assert not list(run.path.rglob("*.tmp-*"))


def test_cli_generate_and_one_line_errors(run, tmp_path, capsys):
    assert main(["generate", str(run.path), "--n", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert (tmp_path / "g.png").is_file() and "wrote" in capsys.readouterr().out
    no_checkpoint = tmp_path / "fresh-run"
    no_checkpoint.mkdir()
    (no_checkpoint / "config.json").write_text(run.config.read_text())
    for argv, fragment in [
        (["--attributes", "Glasses=1"], "allowed: Eyeglasses"),
        (["--attributes", "Bald=2"], "allowed values: 0, 1"),
        (["--sweep", "Smiling"], "not a conditioning attribute"),
        (["--sweep", "Bald", "--attributes", "Bald=1"], "do not also fix"),
        (["--checkpoint", "best"], "no best checkpoint"),
    ]:
        assert main(["generate", str(run.path), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1 and fragment in err, err
    assert main(["generate", str(no_checkpoint)]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["generate", str(tmp_path / "nowhere")]) == 2
    capsys.readouterr()


def test_attributes_for_an_unconditional_run_are_refused(synthetic_root, tmp_path, capsys):
    from homogan.experiment import RunDir, write_config

    config = load_config(None, [f"data.root={synthetic_root}", "data.synthetic_images=240"])
    folder = RunDir(tmp_path / "uncond")
    folder.path.mkdir()
    write_config(folder, config)
    assert main(["generate", str(folder.path), "--attributes", "Bald=1"]) == 2
    err = capsys.readouterr().err
    assert "unconditional" in err and err.count("\n") == 1
    assert main(["generate", str(folder.path), "--sweep", "Bald"]) == 2
    assert "unconditional" in capsys.readouterr().err
