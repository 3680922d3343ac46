"""``python -m homogan export RUN_DIR``: a trained generator that runs without homogan.

Why: inside a run folder a generator is ``tf.train.Checkpoint`` variables that only homogan's classes
can read; "how do I just generate images?" is the most repeated question of GAN suites. The export
writes, into ``RUN_DIR/export/`` (or ``--out``):

* ``saved_model/`` — ``tf.saved_model.save`` of a ``tf.Module`` with two signatures that need only
  TensorFlow: ``serving_default`` (``z`` float32 [N, latent_dim] and, for a conditional run,
  ``labels`` float32 [N, num_labels] → ``images`` uint8 [N, H, W, C]) and ``sample`` (``n`` int32,
  ``seed`` int64 and, conditional, ``labels`` [N or 1, num_labels] → ``images``; z is drawn with
  ``tf.random.stateless_normal``, so a seed gives the same images every time). The facts (label names,
  latent size, image size, channels, the precision the run trained in, the source run and checkpoint
  epoch) are constants of the module (``model.info``) and the asset ``assets/homogan.json``;
* ``generator.keras`` — the generator as a Keras archive, loadable with ``keras.saving.load_model``
  wherever homogan is importable (its layers are registered as ``homogan>…``);
* ``generator.tflite`` — ``serving_default`` converted by ``tf.lite.TFLiteConverter`` (float32 weights;
  ``--tflite-float16`` stores them as float16);
* ``export.json`` — the same facts plus what was written.

The EMA generator is exported when the run has one. Inference is float32 whatever the run trained in.
Everything is written into a temporary sibling folder that is renamed into place when complete; an
existing output folder is refused unless ``--overwrite``.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from homogan.atomic import write_text
from homogan.errors import UserError
from homogan.experiment import LoadedRun, load_run, open_run_dir

FORMATS = ("savedmodel", "keras", "tflite")


def parse_formats(text: str) -> list[str]:
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    bad = [f for f in chosen if f not in FORMATS]
    if bad or not chosen:
        raise UserError(f"--formats {text!r}: unknown format {bad[0]!r}; allowed: {', '.join(FORMATS)} (comma-separated)"
                        if bad else f"--formats {text!r}: name at least one of {', '.join(FORMATS)}")
    if "tflite" in chosen and "savedmodel" not in chosen:
        chosen.insert(0, "savedmodel")  # TFLite is converted from the SavedModel (written, and kept)
    return [f for f in FORMATS if f in chosen]


def facts(loaded: LoadedRun) -> dict:
    """What a user of the exported model needs to know about it."""
    c = loaded.config
    sessions = loaded.run.sessions()
    trained_in = sessions[-1]["precision"] if sessions else c.training.precision
    return {"label_names": list(loaded.label_names), "one_hot": loaded.one_hot, "latent_dim": c.model.latent_dim,
            "num_labels": len(loaded.label_names), "image_size": c.data.image_size, "channels": c.data.channels,
            "training_precision": trained_in, "inference_precision": "float32", "generator": loaded.generator_name,
            "source_run": str(loaded.run.path.resolve()), "checkpoint": loaded.checkpoint.name,
            "checkpoint_epoch": loaded.epoch, "images": "uint8 [N, H, W, C], 0..255",
            "z": "float32 [N, latent_dim], standard normal"}


def _module(generator, info: dict):
    """The ``tf.Module`` saved as the SavedModel: the generator, its two signatures and the facts."""
    import tensorflow as tf

    from homogan.pixels import to_uint8

    latent, k = info["latent_dim"], info["num_labels"]

    class ExportedGenerator(tf.Module):
        def __init__(self):
            super().__init__(name="homogan_generator")
            # The weights, tracked so that they are saved: the tf.Variables under Keras's variables (the
            # TFLite converter froze Keras's wrappers to wrong values). The Keras model itself is not an
            # attribute: Keras would add a default signature of its own, which a two-input generator lacks.
            self.weights = [getattr(v, "_value", v) for v in generator.variables]
            # The facts as (saved) constants: strings and ints as they are, lists and flags as JSON text.
            self.info = {key: tf.Variable(value if isinstance(value, (int, str)) and not isinstance(value, bool)
                                          else json.dumps(value), trainable=False, name=key)
                         for key, value in info.items()}

        @staticmethod
        def images(z, labels):
            return to_uint8(generator(z, labels, training=False))

    module = ExportedGenerator()
    z_spec = tf.TensorSpec([None, latent], tf.float32, name="z")
    n_spec, seed_spec = tf.TensorSpec([], tf.int32, name="n"), tf.TensorSpec([], tf.int64, name="seed")

    def draw(n, seed):
        return tf.random.stateless_normal([n, latent], seed=tf.stack([seed, tf.constant(0, tf.int64)]))

    if k:
        labels_spec = tf.TensorSpec([None, k], tf.float32, name="labels")

        @tf.function(input_signature=[z_spec, labels_spec])
        def serving_default(z, labels):
            return {"images": module.images(z, labels)}

        @tf.function(input_signature=[n_spec, seed_spec, labels_spec])
        def sample(n, seed, labels):
            labels = tf.cond(tf.shape(labels)[0] == 1, lambda: tf.repeat(labels, n, axis=0), lambda: labels)
            tf.debugging.assert_equal(tf.shape(labels)[0], n, message="labels must have 1 or n rows")
            return {"images": module.images(draw(n, seed), labels)}
    else:
        @tf.function(input_signature=[z_spec])
        def serving_default(z):
            return {"images": module.images(z, tf.zeros([tf.shape(z)[0], 0]))}

        @tf.function(input_signature=[n_spec, seed_spec])
        def sample(n, seed):
            return {"images": module.images(draw(n, seed), tf.zeros([n, 0]))}

    module.serving_default, module.sample = serving_default, sample
    return module, {"serving_default": serving_default, "sample": sample}


def _write_savedmodel(folder: Path, generator, info: dict) -> None:
    import tensorflow as tf

    module, signatures = _module(generator, info)
    assets = folder / "assets-src"
    assets.mkdir()
    (assets / "homogan.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    module.facts_file = tf.saved_model.Asset(str(assets / "homogan.json"))
    tf.saved_model.save(module, str(folder / "saved_model"), signatures=signatures)
    shutil.rmtree(assets)


def _write_keras(folder: Path, generator) -> None:
    import keras

    keras.saving.save_model(generator, str(folder / "generator.keras"))


def _write_tflite(folder: Path, float16: bool) -> str:
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_saved_model(str(folder / "saved_model"), signature_keys=["serving_default"])
    if float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    (folder / "generator.tflite").write_bytes(converter.convert())
    return "float16 weights" if float16 else "float32"


def export(run_dir, checkpoint: str = "latest", out: str | None = None, formats: str = ",".join(FORMATS),
           overwrite: bool = False, tflite_float16: bool = False, echo=print) -> Path:
    """Write the requested formats of the run's generator into ``out`` (default ``RUN_DIR/export``); returns it."""
    chosen = parse_formats(formats)
    target = Path(out) if out else Path(run_dir) / "export"
    if target.exists() and not overwrite:
        raise UserError(f"--out {str(target)!r} exists; pass --overwrite to replace it, or choose another --out")
    with open_run_dir(run_dir).lock("export", echo):
        return _export_locked(run_dir, checkpoint, target, chosen, tflite_float16, echo)


def _export_locked(run_dir, checkpoint: str, target: Path, chosen: list[str], tflite_float16: bool, echo) -> Path:
    loaded = load_run(run_dir, echo=echo, checkpoint=checkpoint)
    info = facts(loaded)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    written = {}
    try:
        for fmt in chosen:
            started = time.perf_counter()
            if fmt == "savedmodel":
                _write_savedmodel(tmp, loaded.generator, info)
                written[fmt] = "saved_model/"
            elif fmt == "keras":
                _write_keras(tmp, loaded.generator)
                written[fmt] = "generator.keras"
            else:
                try:
                    kind = _write_tflite(tmp, tflite_float16)
                except (ImportError, AttributeError) as e:
                    echo(f"tflite: skipped, the TFLite converter is not available in this TensorFlow ({e})")
                    continue
                written[fmt] = f"generator.tflite ({kind})"
            echo(f"{fmt}: wrote {written[fmt].split(' ')[0]} ({time.perf_counter() - started:.1f} s)")
        write_text(tmp / "export.json", json.dumps({**info, "written": written,
                                                    "exported": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2) + "\n")
        if target.exists():  # --overwrite: the old export goes only once the new one is complete
            shutil.rmtree(target)
        os.rename(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    echo(f"exported {loaded.generator_name} of {loaded.run.path} (epoch {loaded.epoch}, {loaded.checkpoint.name}) "
         f"to {target}")
    return target
