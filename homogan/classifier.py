"""The attribute classifier: a small Keras CNN trained on the real images, to read what a GAN drew.

It judges attribute control (does an image generated for ``Eyeglasses=1`` show glasses?) and its
penultimate layer is the fallback feature space for FID/KID/precision/recall when InceptionV3
weights are not on disk. One classifier serves every experiment on the same data:

* **What it learns.** CelebA-like data (synthetic, celeba, tfds celeb_a): one sigmoid per
  attribute of ``evaluation.classifier_attributes`` plus any of ``data.attributes`` not listed, on
  all training-partition images (no filters, balance or limit — those vary per experiment).
  Class-per-folder data and tfds mnist: a softmax over the classes. Folders without class
  subfolders have no labels: no classifier.
* **Held-out accuracy** (the ceiling of attribute control): on the ``valid`` + ``test``
  partitions for CelebA-layout data (tfds: ``test``), on a fixed 10 % of the images for folders.
  Per attribute it records plain accuracy and balanced accuracy (mean of the accuracy on images
  with and without the attribute).
* **Cache.** ``<cache>/classifiers/<key>/classifier.weights.h5`` (Keras weights, no pickle) and
  ``classifier.json`` (the key's ingredients, the names, the held-out accuracy), written last and
  atomically: a folder without the JSON is incomplete and is retrained. ``<cache>`` is
  ``evaluation.cache_dir`` or ``<data.root>/.homogan``; the key covers the dataset (source, root,
  synthetic_images / tfds name), image size, crop, channels, the names and the classifier's
  settings (width, epochs, images).
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from homogan.atomic import atomic_path, write_text
from homogan.data.labels import MNIST_CLASSES
from homogan.errors import DataError
from homogan.runtime import import_tensorflow
from homogan import pixels, precision
from homogan.config import is_celeba_like, mirror_symmetric
from homogan.data import folders, sources
from homogan.data.cache import cache_dir, dataset_identity, seeded_config, short_hash
from homogan.data.records import Source

#: 2: always trained in float32 (version 1 was trained under a bf16 run's policy when the first
#: in-training evaluation made it). 3: trained deterministically (the same weights in every process and clone).
#: 4: batch-norm statistics of the trained weights (one pass over the training images after training), not the
#: moving averages kept while the weights changed: on 8 px digits upscaled to 32 those read real held-out
#: images at 0.84 (a class at 0.58), the exact ones at 0.98.
CLASSIFIER_VERSION = 4
WEIGHTS = "classifier.weights.h5"
INFO = "classifier.json"
HELDOUT_LIMIT = 5000
FEATURES = 128


def label_space(config) -> tuple[list[str], bool] | None:
    """(names, one_hot) the classifier learns for ``config``'s data, or None when the data has no labels."""
    d, e = config.data, config.evaluation
    if is_celeba_like(config):
        return list(e.classifier_attributes) + [a for a in d.attributes if a not in e.classifier_attributes], False
    if d.source == "tfds":
        return list(MNIST_CLASSES), True
    try:
        _, _, classes, _ = folders.read_folder(d.root, True)
    except DataError:
        if d.class_conditional:
            raise
        return None
    return classes, True


def flips(config) -> bool:
    """Whether the classifier trains with random horizontal flips: ``evaluation.classifier_flip``, or by the
    rule — faces (CelebA-like data) are mirror-symmetric, folders and digits are not assumed to be (a judge
    that counts a mirrored digit as correct, and whose features cannot tell mirror images apart, lies)."""
    chosen = config.evaluation.classifier_flip
    return mirror_symmetric(config) if chosen is None else chosen


def spec_for(config) -> dict | None:
    space = label_space(config)
    if space is None:
        return None
    names, one_hot = space
    e = config.evaluation
    return {"dataset": dataset_identity(config), "names": names, "one_hot": one_hot, "width": e.classifier_width,
            "epochs": e.classifier_epochs, "images": e.classifier_images, "flip": flips(config),
            "version": CLASSIFIER_VERSION}


def key_for(config, spec: dict) -> str:
    return f"{config.data.source}-{config.data.image_size}px-{short_hash(spec)}"


def build(image_size: int, channels: int, num_outputs: int, width: int, one_hot: bool):
    """(classifier, feature model): strided conv blocks → global average pool → dense 128 (the
    penultimate features) → sigmoid per attribute, or softmax over classes."""
    import keras

    inputs = keras.Input((image_size, image_size, channels), name="images")
    x = inputs
    for i in range(max(1, int(math.log2(image_size)) - 2)):
        x = keras.layers.Conv2D(min(width * 2 ** i, 256), 3, strides=2, padding="same", use_bias=False,
                                kernel_initializer=keras.initializers.HeNormal(seed=i))(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    features = keras.layers.Dense(FEATURES, activation="relu", name="features",
                                  kernel_initializer=keras.initializers.HeNormal(seed=100))(x)
    outputs = keras.layers.Dense(num_outputs, activation="softmax" if one_hot else "sigmoid", name="outputs",
                                 kernel_initializer=keras.initializers.GlorotUniform(seed=101))(features)
    return keras.Model(inputs, outputs, name="attribute_classifier"), keras.Model(inputs, features)


@dataclass
class Classifier:
    key: str
    folder: Path
    names: list[str]
    one_hot: bool
    model: object
    feature_model: object
    info: dict
    fresh: bool = False  # trained by this call (not loaded from the cache)

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Probabilities (N, len(names)) for images in [-1, 1]."""
        import keras

        out = [keras.ops.convert_to_numpy(self.model(np.asarray(images[i:i + batch_size], np.float32), training=False))
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.names)), np.float32)

    @property
    def weights_path(self) -> Path:
        return self.folder / WEIGHTS

    @property
    def weights_digest(self) -> str:
        """SHA-256 (first 16 hex digits) of the weight arrays, in the model's order: which judge this is, exactly,
        in every evaluation protocol. Not the hash of the weights file: Keras writes each layer's automatic name
        (``conv2d_3``, ``conv2d_6``, …) into the .h5, and those count the layers the process made before, so the
        same weights trained inside ``main.py`` (after the GAN's layers) and by ``homogan evaluate`` were two
        files — and every value they measured had a different protocol."""
        import hashlib

        import keras

        h = hashlib.sha256()
        for weight in self.model.weights:
            array = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
            h.update(f"{array.dtype.str}{array.shape}".encode())
            h.update(array.tobytes())
        return h.hexdigest()[:16]

    def embed_fn(self, batch):
        return self.feature_model(batch, training=False)


def _merge(a, b):
    return Source(a.count + b.count, a.label_names, a.log + b.log, a.paths + b.paths,
                  np.concatenate([a.labels, b.labels]))


def _slice(source, indices):
    return Source(len(indices), source.label_names, list(source.log), [source.paths[i] for i in indices],
                  source.labels[indices])


def _holdout(source):
    """A fixed 10 % (at least one image) of a path-based source, the rest for training."""
    n = source.count
    held = max(1, n // 10)
    if n - held < 1:
        raise DataError(f"attribute classifier: {n} labelled image(s) are too few to train and test on")
    return _slice(source, np.arange(0, n - held)), _slice(source, np.arange(n - held, n))


def labelled_sources(config, names: list[str], one_hot: bool):
    """(training config, training Source, held-out Source, what was held out) of real labelled images."""
    e, d = config.evaluation, config.data
    if one_hot:
        base = seeded_config(config, attributes=[], filters={}, balance=None, limit=None, class_conditional=True)
    else:
        base = seeded_config(config, attributes=names, filters={}, balance=None, limit=None, class_conditional=False)
    cap = lambda split, limit: replace(base, data=replace(base.data, split=split, limit=limit))  # noqa: E731
    if d.source == "folder":
        train, held = _holdout(sources.open_source(base))
        if train.count > e.classifier_images:
            train = _slice(train, np.arange(e.classifier_images))
        return base, train, held, "a fixed 10% of the images"
    if d.source == "tfds":
        return (base, sources.open_source(cap("train", e.classifier_images)),
                sources.open_source(cap("test", HELDOUT_LIMIT)), "test split")
    train = sources.open_source(cap("train", e.classifier_images))
    what = "valid + test partitions"
    try:
        held = _merge(sources.open_source(cap("valid", None)), sources.open_source(cap("test", None)))
    except DataError:  # no partition file, or no valid/test rows: hold out 10 % of everything
        train, held = _holdout(sources.open_source(cap("all", None)))
        what = "a fixed 10% of the images (no valid/test partition)"
        if train.count > e.classifier_images:
            train = _slice(train, np.arange(e.classifier_images))
    if held.count > HELDOUT_LIMIT:
        held = _slice(held, np.arange(HELDOUT_LIMIT))
    return base, train, held, what


def held_out_accuracy(probs: np.ndarray, labels: np.ndarray, names: list[str], one_hot: bool) -> dict:
    """Per name: accuracy, balanced accuracy, how many held-out images (and positives) it was measured on."""
    out = {}
    if one_hot:
        predicted, truth = probs.argmax(1), labels.argmax(1)
        for i, name in enumerate(names):
            mine = truth == i
            hit = float(np.mean(predicted[mine] == i)) if mine.any() else float("nan")
            out[name] = {"accuracy": hit, "balanced_accuracy": hit, "n": int(mine.sum())}
        return out
    for i, name in enumerate(names):
        predicted, truth = probs[:, i] > 0.5, labels[:, i] > 0.5
        hit = predicted == truth
        rates = [float(hit[truth].mean())] if truth.any() else []
        rates += [float(hit[~truth].mean())] if (~truth).any() else []
        out[name] = {"accuracy": float(hit.mean()), "balanced_accuracy": float(np.mean(rates)), "n": int(len(hit)),
                     "positives": int(truth.sum())}
    return out


def _dataset(config, source, batch_size: int, train: bool):
    import tensorflow as tf

    from homogan.data import pipeline  # TensorFlow: only when the classifier trains

    ds = pipeline.decoded_images(config, source)
    if train:
        # Endless passes, each in an order set by its number alone, and flips drawn from each image's place
        # in the stream: the same judge from every process and clone, whatever ran before it (a stateful
        # flip in a parallel map and a shuffle seeded by the process's global seed gave different weights).
        # Endless: fit runs a fixed number of steps per epoch, and the decoder may drop a damaged image.
        once, buffer = ds, min(source.count, 10000)
        ds = tf.data.Dataset.counter().flat_map(lambda e: pipeline.pinned_shuffle(once, buffer, e))
        if flips(config):
            ds = ds.enumerate().map(lambda i, xy: (tf.image.stateless_random_flip_left_right(
                xy[0], tf.stack([tf.constant(1, tf.int64), i])), xy[1]), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.map(lambda x, y: (pixels.to_unit_range(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def train(config, names: list[str], one_hot: bool, key: str, spec: dict, folder: Path, echo=print) -> Classifier:
    """Train on the real training images, measure on the held-out ones, save weights + JSON atomically."""
    import keras

    started = time.perf_counter()
    base, train_source, held_source, held_what = labelled_sources(config, names, one_hot)
    d, e = config.data, config.evaluation
    echo(f"training the attribute classifier on {train_source.count} real images ({', '.join(names)}), "
         f"{e.classifier_epochs} epochs; held out: {held_source.count}")
    saved = random.getstate(), np.random.get_state()
    try:
        model, feature_model = build(d.image_size, d.channels, len(names), e.classifier_width, one_hot)
        model.compile(keras.optimizers.Adam(1e-3),
                      loss="categorical_crossentropy" if one_hot else "binary_crossentropy")
        report = keras.callbacks.LambdaCallback(on_epoch_end=lambda ep, logs: echo(
            f"  classifier epoch {ep + 1}/{e.classifier_epochs}: loss {logs['loss']:.4f}"))
        model.fit(_dataset(base, train_source, 64, True), epochs=e.classifier_epochs, verbose=0, callbacks=[report],
                  steps_per_epoch=-(-train_source.count // 64), shuffle=False)
        # The judge's batch-norm statistics are those of its final weights on the training images (see
        # CLASSIFIER_VERSION 4), not the moving averages, which lag the weights they were kept over.
        from homogan.models.blocks import exact_batch_norm_statistics

        exact_batch_norm_statistics(model, lambda x: model(x, training=True),
                                    (x for x, _ in _dataset(base, train_source, 64, False)))
        probs, labels = [], []
        for x, y in _dataset(base, held_source, 256, False):
            probs.append(keras.ops.convert_to_numpy(model(x, training=False)))
            labels.append(y.numpy())
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
    accuracy = held_out_accuracy(np.concatenate(probs), np.concatenate(labels), names, one_hot)
    info = {"key": key, "spec": spec, "names": names, "one_hot": one_hot, "accuracy": accuracy,
            "n_train": train_source.count, "n_heldout": held_source.count,
            "heldout": held_what,
            "seconds": round(time.perf_counter() - started, 1), "trained": time.strftime("%Y-%m-%d %H:%M:%S")}
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS) as tmp:
        model.save_weights(str(tmp))
    write_text(folder / INFO, json.dumps(info, indent=2) + "\n")
    return Classifier(key, folder, names, one_hot, model, feature_model, info, fresh=True)


def load(config, folder: Path) -> Classifier:
    info = json.loads((folder / INFO).read_text(encoding="utf-8"))
    d, e = config.data, config.evaluation
    model, feature_model = build(d.image_size, d.channels, len(info["names"]), e.classifier_width, info["one_hot"])
    model.load_weights(str(folder / WEIGHTS))
    return Classifier(info["key"], folder, info["names"], info["one_hot"], model, feature_model, info)


def ensure(config, echo=print, retrain: bool = False) -> Classifier | None:
    """The cached classifier for ``config``'s data (trained on first use), or None when the data has no labels."""
    spec = spec_for(config)
    if spec is None:
        return None
    import_tensorflow()
    key = key_for(config, spec)
    folder = cache_dir(config) / "classifiers" / key
    with precision.float32():  # a judge, not a trainee: float32 whatever the caller's policy
        if not retrain and (folder / INFO).is_file() and (folder / WEIGHTS).is_file():
            try:
                classifier = load(config, folder)
                if classifier.info.get("spec") == spec:
                    return classifier
            except (OSError, ValueError, KeyError, json.JSONDecodeError):
                pass  # unreadable or from another version: train again
        return train(config, spec["names"], spec["one_hot"], key, spec, folder, echo)


def format_accuracy(classifier: Classifier) -> list[str]:
    info = classifier.info
    width = max(len(n) for n in classifier.names) + 2
    lines = [f"attribute classifier {classifier.key} ({info['n_train']} training images; held out: "
             f"{info['n_heldout']} images, {info['heldout']})",
             f"  {'attribute' if not classifier.one_hot else 'class':<{width}}accuracy  balanced"]
    for name in classifier.names:
        a = info["accuracy"][name]
        lines.append(f"  {name:<{width}}{a['accuracy']:8.3f}  {a['balanced_accuracy']:8.3f}")
    lines.append(f"saved in {classifier.folder}")
    return lines
