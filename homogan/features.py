"""Feature spaces for FID, KID and precision/recall, and which one a config gets.

InceptionV3 pool features when its ImageNet weights are on disk (``evaluation.inception_weights`` or
the Keras cache; nothing is downloaded), else — with a one-line message that says which file to put
where — the attribute classifier's penultimate layer (:mod:`homogan.classifier`); data without any
labels and no Inception weights fall back to a fixed, randomly initialised CNN. The extractor's name
is recorded beside every number: values from different feature spaces are not comparable. Keras'
InceptionV3 is not the TF-slim graph of the original FID code, so Inception FIDs here are comparable
with each other, not with published ones. Extractors are built by the caller under a float32 policy
(:class:`homogan.evaluation.Evaluator`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from homogan.errors import UserError

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"


def file_hash(path) -> str:
    """SHA-256 (first 16 hex digits) of a weights file: which weights produced a feature, exactly."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]
INCEPTION_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{INCEPTION_FILE}"


@dataclass
class FeatureExtractor:
    """``fn`` maps a batch of images in [-1, 1] (N, H, W, C) to features (N, D). ``weights`` identifies the
    exact weights (a hash of the file, or how a fixed network was seeded) and ``input_size`` the image size
    fed to the network: both are part of every value's protocol."""

    name: str
    fn: object
    batch_size: int = 128
    weights: str = "unknown"
    input_size: int | None = None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import keras

        out = []
        for start in range(0, len(images), self.batch_size):
            batch = np.asarray(images[start:start + self.batch_size], np.float32)
            out.append(np.asarray(keras.ops.convert_to_numpy(self.fn(batch)), np.float32).reshape(len(batch), -1))
        return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def keras_cache_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def find_inception_weights(config) -> Path | None:
    """The InceptionV3 no-top weights on disk: ``evaluation.inception_weights`` (must exist when set), or the
    Keras cache; None when absent."""
    path = config.evaluation.inception_weights
    if path is not None:
        if not Path(path).is_file():
            raise UserError(f"evaluation.inception_weights: {path!r} does not exist; put {INCEPTION_FILE} "
                            f"(from {INCEPTION_URL}) there, or set it to null to use the Keras cache")
        return Path(path)
    cached = keras_cache_models_dir() / INCEPTION_FILE
    return cached if cached.is_file() else None


def missing_inception_message(instead: str = "the attribute classifier's penultimate features") -> str:
    return (f"InceptionV3 weights not found: put {INCEPTION_FILE} (from {INCEPTION_URL}) into "
            f"{keras_cache_models_dir()}/ or set evaluation.inception_weights to its path; using {instead} "
            f"instead (numbers not comparable with Inception-feature ones)")


def inception_extractor(weights: Path) -> FeatureExtractor:
    import keras
    import tensorflow as tf

    model = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=str(weights),
                                           input_shape=(299, 299, 3))

    @tf.function(reduce_retracing=True)
    def fn(images):
        x = tf.image.resize(images, (299, 299), method="bilinear", antialias=True)
        if x.shape[-1] == 1:
            x = tf.image.grayscale_to_rgb(x)
        return model(x, training=False)  # InceptionV3 expects [-1, 1]: the images' own range

    return FeatureExtractor(f"inception_v3:{weights.name}", fn, batch_size=32, weights=file_hash(weights), input_size=299)


def random_cnn_extractor(image_size: int, channels: int) -> FeatureExtractor:
    """A fixed, randomly initialised CNN: the last resort for data without labels or Inception weights."""
    import keras

    inputs = keras.Input((image_size, image_size, channels))
    x = inputs
    for i, width in enumerate((32, 64, 128, 256)):
        x = keras.layers.Conv2D(width, 3, strides=2, padding="same", activation="relu",
                                kernel_initializer=keras.initializers.HeNormal(seed=1000 + i))(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, x)
    return FeatureExtractor(f"random_cnn:v1:{image_size}px", lambda b: model(b, training=False),
                            weights="he-normal seeds 1000-1003", input_size=image_size)


def feature_extractor(config, classifier, echo=print) -> FeatureExtractor:
    """Which features FID/KID/precision/recall use, per ``evaluation.feature_extractor`` (see module doc)."""
    choice = config.evaluation.feature_extractor
    if choice in ("auto", "inception"):
        weights = find_inception_weights(config)
        if weights is not None:
            return inception_extractor(weights)
        if choice == "inception":
            raise UserError(f"evaluation.feature_extractor: \"inception\" but no weights: put {INCEPTION_FILE} "
                            f"(from {INCEPTION_URL}) into {keras_cache_models_dir()}/ or set "
                            f"evaluation.inception_weights (allowed without them: \"auto\", \"classifier\")")
        echo(missing_inception_message() if classifier is not None else
             missing_inception_message("a fixed random CNN's features (the data has no labels for a classifier)"))
    if classifier is not None:
        return FeatureExtractor(f"classifier:{classifier.key}", classifier.embed_fn,
                                weights=classifier.weights_digest, input_size=config.data.image_size)
    if choice == "classifier":
        echo("the data has no labels to train the attribute classifier on: FID/KID/precision/recall use a fixed "
             "random CNN's features")
    return random_cnn_extractor(config.data.image_size, config.data.channels)
