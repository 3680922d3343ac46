"""``python -m homogan export``: SavedModel, .keras and TFLite that reproduce the run's generator, the first two
without homogan (plain TensorFlow in a fresh interpreter), and the usual one-line refusals."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from homogan.cli import main

# TensorFlow 2.21 warns that tf.lite.Interpreter moves to LiteRT (ai_edge_litert); it still ships and works.
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:tensorflow.lite.python.interpreter")


@pytest.fixture(scope="module")
def conditional_run(tmp_path_factory, synthetic_root):
    from homogan.config import load_config
    from homogan.train import train

    out = tmp_path_factory.mktemp("export-runs")
    config = load_config(None, [f"data.root={synthetic_root}", "data.synthetic_images=240", "data.image_size=32",
                                "model.latent_dim=16", "model.generator.width=8", "model.discriminator.width=8",
                                "training.batch_size=8", "training.epochs=1", "training.steps_per_epoch=2",
                                'data.attributes=["Eyeglasses","Bald"]', "training.ema_decay=0.9",
                                # labels also in every batch norm: the export of the conditioning layer is checked
                                "model.generator.conditioning=conditional_bn",
                                f"experiment.output_dir={out}", "logging.progress=none", "logging.tensorboard=false"])
    return train(config, echo=lambda *a, **k: None).run.path


def plain_tensorflow(script: str, cwd) -> dict:
    """Run ``script`` in a fresh interpreter that cannot import homogan; it prints one JSON line."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    probe = "import sys\ntry:\n    import homogan\n    sys.exit('homogan is importable')\nexcept ImportError:\n    pass\n" + script
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_export_writes_three_formats_that_reproduce_the_generator(conditional_run, tmp_path):
    import keras
    import tensorflow as tf

    from homogan.experiment import load_run
    from homogan.pixels import quantize

    assert main(["export", str(conditional_run)]) == 0
    out = conditional_run / "export"
    assert {p.name for p in out.iterdir()} == {"saved_model", "generator.keras", "generator.tflite", "export.json"}
    info = json.loads((out / "export.json").read_text())
    assert info["label_names"] == ["Eyeglasses", "Bald"] and info["latent_dim"] == 16 and info["image_size"] == 32
    assert info["generator"] == "ema_generator" and info["checkpoint_epoch"] == 1
    assert info["inference_precision"] == "float32" and info["training_precision"] in ("float32", "mixed_bfloat16")

    loaded = load_run(conditional_run)
    z = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    labels = np.array([[1, 0], [0, 1], [1, 1], [0, 0], [1, 0]], np.float32)
    expected = np.round((quantize(np.asarray(loaded.generator(z, labels, training=False))) + 1) * 127.5).astype(np.uint8)

    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "labels.npy", labels)
    got = plain_tensorflow(f"""
import json, numpy as np, tensorflow as tf
m = tf.saved_model.load({str(out / 'saved_model')!r})
z, labels = np.load('z.npy'), np.load('labels.npy')
images = m.signatures['serving_default'](z=tf.constant(z), labels=tf.constant(labels))['images'].numpy()
np.save('saved_model.npy', images)
a = m.signatures['sample'](n=tf.constant(3), seed=tf.constant(7, tf.int64), labels=tf.constant(labels[:1]))['images'].numpy()
b = m.signatures['sample'](n=tf.constant(3), seed=tf.constant(7, tf.int64), labels=tf.constant(labels[:1]))['images'].numpy()
c = m.signatures['sample'](n=tf.constant(3), seed=tf.constant(8, tf.int64), labels=tf.constant(labels[:1]))['images'].numpy()
names = json.loads(m.info['label_names'].numpy())
assets = json.load(open({str(out / 'saved_model' / 'assets' / 'homogan.json')!r}))
print(json.dumps({{"dtype": str(images.dtype), "shape": list(images.shape), "same_seed": bool((a == b).all()),
                  "other_seed": bool((a != c).any()), "names": names, "asset_names": assets["label_names"],
                  "latent": int(m.info['latent_dim'].numpy())}}))
""", tmp_path)
    assert got == {"dtype": "uint8", "shape": [5, 32, 32, 3], "same_seed": True, "other_seed": True,
                   "names": ["Eyeglasses", "Bald"], "asset_names": ["Eyeglasses", "Bald"], "latent": 16}
    np.testing.assert_array_equal(np.load(tmp_path / "saved_model.npy"), expected)

    again = keras.saving.load_model(out / "generator.keras")  # homogan importable here: its layers are registered
    np.testing.assert_allclose(np.asarray(again(z, labels, training=False)),
                               np.asarray(loaded.generator(z, labels, training=False)), atol=1e-6)

    interpreter = tf.lite.Interpreter(model_path=str(out / "generator.tflite"))
    runner = interpreter.get_signature_runner("serving_default")
    lite = runner(z=z, labels=labels)["images"]
    assert lite.dtype == np.uint8 and lite.shape == expected.shape
    assert np.abs(lite.astype(int) - expected.astype(int)).max() <= 1  # float rounding of another kernel library


def test_an_unconditional_export_takes_z_alone(tiny_config, tmp_path):
    from homogan.train import train

    run = train(tiny_config("training.epochs=1"), echo=lambda *a, **k: None).run.path
    assert main(["export", str(run), "--formats", "savedmodel", "--out", str(tmp_path / "e")]) == 0
    assert {p.name for p in (tmp_path / "e").iterdir()} == {"saved_model", "export.json"}
    got = plain_tensorflow(f"""
import json, tensorflow as tf
m = tf.saved_model.load({str(tmp_path / 'e' / 'saved_model')!r})
s = m.signatures['serving_default']
images = s(z=tf.random.normal([2, 16]))['images']
sample = m.signatures['sample'](n=tf.constant(4), seed=tf.constant(1, tf.int64))['images']
print(json.dumps({{"inputs": sorted(s.structured_input_signature[1]), "shape": images.shape.as_list(),
                  "sample": sample.shape.as_list()}}))
""", tmp_path)
    assert got == {"inputs": ["z"], "shape": [2, 32, 32, 3], "sample": [4, 32, 32, 3]}


def test_export_refusals_are_one_line_and_leave_nothing(conditional_run, tmp_path, capsys, monkeypatch):
    from homogan import export

    assert main(["export", str(conditional_run), "--formats", "onnx", "--out", str(tmp_path / "x")]) == 2
    assert "onnx" in capsys.readouterr().err and not (tmp_path / "x").exists()
    empty = tmp_path / "norun"
    empty.mkdir()
    (empty / "config.json").write_text((conditional_run / "config.json").read_text())
    assert main(["export", str(empty), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no checkpoint" in err[0] and not (tmp_path / "y").exists()

    target = tmp_path / "z"
    assert main(["export", str(conditional_run), "--formats", "keras", "--out", str(target)]) == 0
    assert main(["export", str(conditional_run), "--formats", "keras", "--out", str(target)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    before = (target / "export.json").read_text()

    def broken(folder, generator):
        (folder / "generator.keras").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(export, "_write_keras", broken)
    with pytest.raises(OSError):
        export.export(conditional_run, formats="keras", out=str(target), overwrite=True, echo=lambda *a: None)
    assert (target / "export.json").read_text() == before  # the old export is untouched
    assert sorted(p.name for p in tmp_path.iterdir() if ".tmp-" in p.name) == []


def test_tflite_with_float16_weights_is_smaller_and_draws_nearly_the_same_images(conditional_run, tmp_path):
    import tensorflow as tf

    assert main(["export", str(conditional_run), "--formats", "tflite", "--out", str(tmp_path / "f32")]) == 0
    assert main(["export", str(conditional_run), "--formats", "tflite", "--tflite-float16",
                 "--out", str(tmp_path / "f16")]) == 0
    assert {p.name for p in (tmp_path / "f16").iterdir()} == {"saved_model", "generator.tflite", "export.json"}
    assert "float16" in json.loads((tmp_path / "f16" / "export.json").read_text())["written"]["tflite"]
    small, full = (tmp_path / "f16" / "generator.tflite").stat().st_size, (tmp_path / "f32" / "generator.tflite").stat().st_size
    assert small < 0.7 * full
    z = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    labels = np.ones((3, 2), np.float32)
    out = [tf.lite.Interpreter(model_path=str(tmp_path / d / "generator.tflite")).get_signature_runner()(
        z=z, labels=labels)["images"].astype(int) for d in ("f16", "f32")]
    assert np.abs(out[0] - out[1]).mean() < 2.0  # float16 weights: a level or so per pixel on average
