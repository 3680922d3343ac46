"""Numbers that say whether a GAN got better: FID, KID, precision/recall and attribute-control accuracy.

**Math** (numpy only, float64): :func:`frechet_distance` (FID; the matrix square root is taken as
``tr sqrt(sqrt(S1) S2 sqrt(S1))`` from symmetric eigen-decompositions, tiny negative eigenvalues of
the PSD matrices clipped to 0, so it is stable even for singular covariances), :func:`kid`
(unbiased MMD² with the cubic polynomial kernel, mean and standard deviation over random subsets;
can be slightly negative when the distributions match), :func:`precision_recall` (Kynkäänniemi et
al. 2019: k-NN balls around each real / fake feature, k = 3).

**Feature spaces** (:func:`feature_extractor`): InceptionV3 pool features when its ImageNet weights
are on disk (``evaluation.inception_weights`` or the Keras cache), else — with a one-line message
that says which file to put where — the attribute classifier's penultimate layer (see
:mod:`homogan.classifier`); data without any labels and no Inception weights fall back to a fixed,
randomly initialised CNN. The extractor's name is recorded beside every number: values from
different feature spaces are not comparable. Keras' InceptionV3 is not the TF-slim graph of the
original FID code, so Inception FIDs here are comparable with each other, not with published ones.

**Images** are compared in memory, never through JPEG: real images are the run's training selection
decoded by the same pipeline as training (uint8); generated images are quantised to the same uint8
grid in memory, so both sets go through identical preprocessing. The real set's features, mean and
covariance are cached (``<cache>/reference/<key>.npz``, plain arrays, no pickle), keyed by the
dataset, the selection, the image size and crop, the number of images and the extractor.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from homogan.atomic import atomic_path
from homogan.errors import UserError

INCEPTION_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_URL = f"https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/{INCEPTION_FILE}"
PR_K = 3
#: Below this real-image balanced accuracy the classifier cannot judge an attribute (flagged in reports).
CHANCE_CEILING = 0.6
MIN_SAMPLES = 10  # the config's minimum for evaluation.num_samples / num_real
KID_SUBSETS = 50
KID_SUBSET_SIZE = 1000
#: 2: always computed with float32 networks (version 1 could be computed under a run's bf16 policy).
REFERENCE_VERSION = 2
#: Lower is better for these; higher for the others (used to keep the best checkpoint).
LOWER_IS_BETTER = ("fid", "kid")
#: Sample counts and settings recorded beside the metrics (not metrics themselves).
COUNTS = ("fid_n_real", "fid_n_fake", "kid_n_real", "kid_n_fake", "kid_subset_size", "kid_subsets", "pr_n_real",
          "pr_n_fake", "pr_k")
#: Attribute-control accuracy uses every combination of up to this many attributes, random ones beyond.
MAX_COMBINATION_ATTRIBUTES = 6


# --------------------------------------------------------------------------------------------
# Math


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + a.T)


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigenvalues < 0 → 0)."""
    w, v = np.linalg.eigh(_sym(np.asarray(a, np.float64)))
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of (N, D) features, in float64."""
    f = np.asarray(features, np.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"`features` should be (N >= 2, D). Received shape {f.shape}")
    return f.mean(axis=0), np.atleast_2d(np.cov(f, rowvar=False))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """‖μ1-μ2‖² + tr S1 + tr S2 - 2 tr (S1^½ S2 S1^½)^½ — the Fréchet distance of two Gaussians.

    (S1^½ S2 S1^½ is symmetric PSD and has the eigenvalues of S1 S2, so its trace-root equals
    tr (S1 S2)^½ without a non-symmetric matrix square root.)
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = _sym(np.asarray(sigma1, np.float64)), _sym(np.asarray(sigma2, np.float64))
    root1 = sqrtm_psd(s1)
    middle = _sym(root1 @ s2 @ root1)
    tr_covmean = float(np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(middle), 0.0, None))))
    value = float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    return max(value, 0.0)


def fid(real_features: np.ndarray, fake_features: np.ndarray) -> float:
    return frechet_distance(*statistics(real_features), *statistics(fake_features))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b / d + 1)³ (Bińkowski et al. 2018)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
                 - 2.0 * kxy.mean())


def kid(real_features: np.ndarray, fake_features: np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> tuple[float, float, int]:
    """(mean, std, subset size) of the unbiased polynomial-kernel MMD² over random subsets."""
    x, y = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    size = min(subset_size, len(x), len(y))
    if size < 2:
        raise ValueError("KID needs at least 2 real and 2 fake samples")
    rng = np.random.default_rng(seed)
    values = [_polynomial_mmd2(x[rng.choice(len(x), size, replace=False)], y[rng.choice(len(y), size, replace=False)])
              for _ in range(subsets)]
    return float(np.mean(values)), float(np.std(values)), size


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(features: np.ndarray, k: int = PR_K, chunk: int = 1024) -> np.ndarray:
    """Squared distance from each point to its k-th nearest other point of the same set."""
    f = np.asarray(features, np.float64)
    if len(f) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, got {len(f)}")
    radii = np.empty(len(f))
    for start in range(0, len(f), chunk):
        d = _squared_distances(f[start:start + chunk], f)
        # Column k of the sorted row: index 0 is the point itself (distance 0).
        radii[start:start + chunk] = np.partition(d, k, axis=1)[:, k]
    return radii


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of ``points`` inside at least one ball (centre, radius) of the other set."""
    inside = np.zeros(len(points), bool)
    for start in range(0, len(points), chunk):
        d = _squared_distances(points[start:start + chunk], centres)
        inside[start:start + chunk] = np.any(d <= radii[None, :] * (1 + 1e-9) + 1e-12, axis=1)
    return float(inside.mean())


def precision_recall(real_features: np.ndarray, fake_features: np.ndarray, k: int = PR_K) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al. 2019).

    Precision: fraction of fakes inside the real manifold (the union of balls around every real
    feature reaching its k-th nearest real neighbour); recall: fraction of reals inside the fake
    manifold. Mode collapse shows as high precision with low recall.
    """
    r, f = np.asarray(real_features, np.float64), np.asarray(fake_features, np.float64)
    return _coverage(f, r, knn_radii(r, k)), _coverage(r, f, knn_radii(f, k))


def all_metrics(real_features: np.ndarray, fake_features: np.ndarray, seed: int = 0,
                real_stats: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """FID, KID (± std), precision and recall, each beside the numbers of real and fake samples.

    Precision/recall use equally many real and fake samples (the smaller count; both sets'
    manifold estimates depend on their size).
    """
    n_real, n_fake = len(real_features), len(fake_features)
    mu, sigma = real_stats if real_stats is not None else statistics(real_features)
    out = {"fid": frechet_distance(mu, sigma, *statistics(fake_features)), "fid_n_real": n_real, "fid_n_fake": n_fake}
    kid_mean, kid_std, size = kid(real_features, fake_features, seed=seed)
    out.update(kid=kid_mean, kid_std=kid_std, kid_n_real=n_real, kid_n_fake=n_fake, kid_subset_size=size,
               kid_subsets=KID_SUBSETS)
    n = min(n_real, n_fake)
    rng = np.random.default_rng(seed)
    r = real_features[np.sort(rng.choice(n_real, n, replace=False))] if n < n_real else real_features
    f = fake_features[np.sort(rng.choice(n_fake, n, replace=False))] if n < n_fake else fake_features
    precision, recall = precision_recall(r, f)
    out.update(precision=precision, recall=recall, pr_n_real=n, pr_n_fake=n, pr_k=PR_K)
    return out


# --------------------------------------------------------------------------------------------
# Feature extractors


def quantize(images: np.ndarray) -> np.ndarray:
    """Generated images in [-1, 1] → the uint8 grid real images live on, back in [-1, 1] (in memory)."""
    u8 = np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255)
    return (u8 / 127.5 - 1.0).astype(np.float32)


@dataclass
class FeatureExtractor:
    """``fn`` maps a batch of images in [-1, 1] (N, H, W, C) to features (N, D)."""

    name: str
    fn: object
    batch_size: int = 128

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

    return FeatureExtractor(f"inception_v3:{weights.name}", fn, batch_size=32)


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
    return FeatureExtractor(f"random_cnn:v1:{image_size}px", lambda b: model(b, training=False))


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
        return FeatureExtractor(f"classifier:{classifier.key}", classifier.embed_fn)
    if choice == "classifier":
        echo("the data has no labels to train the attribute classifier on: FID/KID/precision/recall use a fixed "
             "random CNN's features")
    return random_cnn_extractor(config.data.image_size, config.data.channels)


# --------------------------------------------------------------------------------------------
# Caching and real images


def cache_dir(config) -> Path:
    """``evaluation.cache_dir``, or ``<data.root>/.homogan`` (``.homogan`` beside a folder-source root, so that
    nothing is written among the images)."""
    if config.evaluation.cache_dir is not None:
        return Path(config.evaluation.cache_dir)
    root = Path(config.data.root).resolve()
    return root.parent / ".homogan" if config.data.source == "folder" else root / ".homogan"


def short_hash(obj) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:12]


def dataset_identity(config) -> dict:
    """What makes two datasets the same for cached classifiers and statistics."""
    d = config.data
    ident = {"source": d.source, "root": str(Path(d.root).resolve()), "image_size": d.image_size, "crop": d.crop,
             "channels": d.channels}
    if d.source == "synthetic":
        ident["synthetic_images"] = d.synthetic_images
    if d.source == "tfds":
        ident["tfds_name"] = d.tfds_name
    return ident


def seeded_config(config, **data_changes):
    """A copy of ``config`` with experiment.seed 0 (a selection that does not depend on the run's seed)."""
    return replace(config, experiment=replace(config.experiment, seed=0), data=replace(config.data, **data_changes))


def load_images(config, source, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(images float32 [-1, 1], labels) of ``source`` decoded by the training pipeline, first ``limit`` only."""
    import tensorflow as tf

    from homogan.data import pipeline

    ds = pipeline.decoded_images(replace(config, data=replace(config.data, cache=False)), source)
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for x, y in ds.batch(256).prefetch(tf.data.AUTOTUNE):
        images.append(pipeline.to_unit_range(x).numpy())
        labels.append(y.numpy().astype(np.float32))
    if not images:
        return np.zeros((0, config.data.image_size, config.data.image_size, config.data.channels), np.float32), \
            np.zeros((0, len(source.label_names)), np.float32)
    return np.concatenate(images), np.concatenate(labels)


@dataclass
class Reference:
    """The real set in a feature space: features (for KID and precision/recall), mean, covariance, labels."""

    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    path: Path
    extractor: str


def reference_key(config, extractor_name: str) -> str:
    d = config.data
    selection = {"split": d.split, "filters": d.filters, "balance": d.balance, "limit": d.limit,
                 "attributes": d.attributes, "class_conditional": d.class_conditional}
    spec = {"dataset": dataset_identity(config), "selection": selection, "num_real": config.evaluation.num_real,
            "extractor": extractor_name, "version": REFERENCE_VERSION}
    return f"{d.source}-{d.image_size}px-n{config.evaluation.num_real}-{short_hash(spec)}"


def reference(config, extractor: FeatureExtractor, echo=print) -> Reference:
    """The cached real-set statistics for ``config``'s training selection, computed on first use."""
    from homogan.data import sources

    path = cache_dir(config) / "reference" / f"{reference_key(config, extractor.name)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["extractor"]) == extractor.name:
                return Reference(z["features"], z["mu"], z["sigma"], z["labels"], path, extractor.name)
    import tensorflow as tf

    from homogan.data import pipeline

    started = time.perf_counter()
    cfg = seeded_config(config)
    source = sources.open_source(cfg)
    ds = pipeline.decoded_images(replace(cfg, data=replace(cfg.data, cache=False)), source)
    features, labels = [], []
    for x, y in ds.take(config.evaluation.num_real).batch(256).prefetch(tf.data.AUTOTUNE):
        features.append(extractor(pipeline.to_unit_range(x).numpy()))  # batch by batch: never all images in memory
        labels.append(y.numpy().astype(np.float32))
    count = sum(len(f) for f in features)
    if count < PR_K + 2:
        raise UserError(f"evaluation: the training selection has only {count} images; FID/KID/precision/recall "
                        f"need at least {PR_K + 2}")
    features, labels = np.concatenate(features), np.concatenate(labels)
    mu, sigma = statistics(features)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=features, mu=mu, sigma=sigma, labels=labels, extractor=np.str_(extractor.name))
    echo(f"reference statistics of {count} real images ({extractor.name}) cached in {path} "
         f"({time.perf_counter() - started:.0f} s)")
    return Reference(features, mu, sigma, labels, path, extractor.name)


# --------------------------------------------------------------------------------------------
# Generating and scoring


def label_combinations(names: list[str], one_hot: bool, seed: int = 0) -> np.ndarray:
    """The label vectors attribute control is measured on: every class (one-hot), every combination of up
    to MAX_COMBINATION_ATTRIBUTES attributes, or 64 random combinations of more."""
    k = len(names)
    if one_hot:
        return np.eye(k, dtype=np.float32)
    if k <= MAX_COMBINATION_ATTRIBUTES:
        return np.asarray(list(itertools.product([0.0, 1.0], repeat=k)), np.float32)
    return np.random.default_rng(seed).integers(0, 2, (64, k)).astype(np.float32)


def generate_images(generator, z: np.ndarray, labels: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Generator output for (z, labels), in batches, quantised to uint8 levels (in memory)."""
    import keras

    out = [keras.ops.convert_to_numpy(generator(z[i:i + batch_size], labels[i:i + batch_size], training=False))
           for i in range(0, len(z), batch_size)]
    return quantize(np.concatenate(out))


def attribute_control(generator, classifier, names: list[str], one_hot: bool, per_combination: int, latent_dim: int,
                      seed: int = 0) -> dict:
    """How often the classifier sees the requested value, per attribute (or class), beside its real accuracy.

    Every combination (class) gets ``per_combination`` images from fresh z, so each attribute is
    asked for 1 and for 0 equally often; ``accuracy`` is then balanced accuracy, and the classifier's
    real-image balanced accuracy is its ceiling. One-hot: argmax accuracy, per requested class.
    """
    combos = label_combinations(names, one_hot, seed)
    labels = np.repeat(combos, per_combination, axis=0)
    z = np.random.default_rng([seed, 1]).standard_normal((len(labels), latent_dim)).astype(np.float32)
    probs = np.concatenate([classifier.predict(generate_images(generator, z[i:i + 256], labels[i:i + 256]))
                            for i in range(0, len(z), 256)])
    real = classifier.info["accuracy"]
    out: dict = {"n_per_combination": per_combination, "combinations": len(combos), "n": len(labels),
                 "classifier": classifier.key, "attributes": {}}
    if one_hot:
        columns = [classifier.names.index(n) for n in names]
        predicted = np.argmax(probs[:, columns], axis=1)
        wanted = np.argmax(labels, axis=1)
        for i, name in enumerate(names):
            hit = float(np.mean(predicted[wanted == i] == i))
            out["attributes"][name] = {"accuracy": hit, "real_accuracy": real[name]["accuracy"],
                                       "real_balanced_accuracy": real[name]["balanced_accuracy"]}
        out["accuracy"] = float(np.mean(predicted == wanted))
        out["all_correct"] = out["accuracy"]
    else:
        correct = []
        for i, name in enumerate(names):
            predicted = probs[:, classifier.names.index(name)] > 0.5
            wanted = labels[:, i] > 0.5
            hit = predicted == wanted
            correct.append(hit)
            out["attributes"][name] = {
                "accuracy": float(hit.mean()), "when_1": float(hit[wanted].mean()) if wanted.any() else None,
                "when_0": float(hit[~wanted].mean()) if (~wanted).any() else None,
                "real_accuracy": real[name]["accuracy"], "real_balanced_accuracy": real[name]["balanced_accuracy"]}
        out["accuracy"] = float(np.mean([a["accuracy"] for a in out["attributes"].values()]))
        out["all_correct"] = float(np.mean(np.all(np.stack(correct, 1), axis=1)))
    out["real_accuracy"] = float(np.mean([a["real_balanced_accuracy"] for a in out["attributes"].values()]))
    return out


class Evaluator:
    """Everything a run's evaluation needs, built once: the classifier, the feature space, the real statistics.

    ``evaluate(generator)`` then costs one generation pass plus feature extraction, so the training
    callback can call it every few epochs.
    """

    def __init__(self, config, label_names: list[str], echo=print, classifier=None):
        from homogan import classifier as clf
        from homogan import precision

        self.config = config
        self.label_names = list(label_names)
        self.one_hot = config.data.class_conditional
        # The judges are float32 whatever the training precision: a bf16 classifier or feature extractor
        # would measure every run of a bf16 machine on a different scale.
        with precision.float32():
            self.classifier = classifier if classifier is not None else clf.ensure(config, echo=echo)
            self.extractor = feature_extractor(config, self.classifier, echo)
            self.reference = reference(config, self.extractor, echo)

    def evaluate(self, generator, num_samples: int | None = None, per_combination: int | None = None,
                 seed: int = 0) -> dict:
        """Flat metrics (what goes into history.csv and metrics.json) and ``details`` (nested)."""
        started = time.perf_counter()
        e = self.config.evaluation
        num_samples = num_samples or e.num_samples
        latent_dim = self.config.model.latent_dim
        rng = np.random.default_rng([seed, 2])
        ref = self.reference
        if self.label_names:
            labels = ref.labels[rng.integers(0, len(ref.labels), num_samples)].astype(np.float32)
        else:
            labels = np.zeros((num_samples, 0), np.float32)
        z = rng.standard_normal((num_samples, latent_dim)).astype(np.float32)
        fake = np.concatenate([self.extractor(generate_images(generator, z[i:i + 256], labels[i:i + 256]))
                               for i in range(0, num_samples, 256)])
        flat = {"feature_extractor": self.extractor.name,
                **all_metrics(ref.features, fake, seed=seed, real_stats=(ref.mu, ref.sigma))}
        details = {"reference": str(ref.path)}
        if self.label_names and self.classifier is not None:
            control = attribute_control(generator, self.classifier, self.label_names, self.one_hot,
                                        per_combination or e.per_combination, latent_dim, seed)
            details["attribute_control"] = control
            flat["attribute_accuracy"] = control["accuracy"]
            flat["attribute_accuracy_real"] = control["real_accuracy"]
            flat["attribute_all_correct"] = control["all_correct"]
            for name, a in control["attributes"].items():
                flat[f"attribute_accuracy_{name}"] = a["accuracy"]
        flat["eval_seconds"] = time.perf_counter() - started
        return {**flat, "details": details}


def numeric(metrics: dict) -> dict:
    """The float-valued entries (what the training callback puts into Keras' logs)."""
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
            and k not in COUNTS}


def is_better(metric: str, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value < best if metric in LOWER_IS_BETTER else value > best


def evaluate_run(run_dir, per_combination: int | None = None, num_samples: int | None = None,
                 overrides: tuple[str, ...] = (), echo=print, write: bool = True, seed: int = 0,
                 checkpoint: str = "latest") -> dict:
    """Evaluate the latest checkpoint of ``run_dir``; merge the numbers into ``RUN_DIR/metrics.json``.

    ``overrides`` may change ``evaluation.*`` keys only (the rest would no longer describe the run).
    """
    from homogan.atomic import write_text
    from homogan.generate import load_run

    if num_samples is not None and num_samples < MIN_SAMPLES:
        raise UserError(f"--num-samples {num_samples}: too few for precision/recall and FID; allowed: >= {MIN_SAMPLES}")
    for item in overrides:
        if not item.strip().startswith("evaluation."):
            raise UserError(f"--set {item!r}: evaluate accepts only evaluation.* keys (the rest describe the run)")
    run = load_run(run_dir, overrides=overrides, echo=echo, checkpoint=checkpoint)
    config = run.config
    evaluator = Evaluator(config, run.label_names, echo=echo)
    result = evaluator.evaluate(run.generator, num_samples, per_combination, seed)
    details = result.pop("details")
    metrics = {**result, "evaluated": {"epoch": run.epoch, "checkpoint": run.checkpoint.name,
                                        "generator": run.generator_name, "seed": seed,
                                        "time": time.strftime("%Y-%m-%d %H:%M:%S"), **details}}
    if write:
        path = run.run.path / "metrics.json"
        existing = {}
        if path.is_file():
            try:
                existing = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:
                existing = {}
        write_text(path, json.dumps({**existing, **metrics}, indent=2) + "\n")
        metrics["written"] = str(path)
    return metrics


def format_report(metrics: dict) -> list[str]:
    """Human-readable lines for ``evaluate``'s output."""
    lines = []
    control = metrics.get("evaluated", {}).get("attribute_control")
    if control:
        lines.append(f"attribute control: {control['n_per_combination']} images x {control['combinations']} "
                     f"combinations, classifier {control['classifier']}")
        width = max(len(n) for n in control["attributes"]) + 2
        lines.append(f"  {'attribute':<{width}}generated   real (ceiling, balanced)")
        for name, a in control["attributes"].items():
            weak = a["real_balanced_accuracy"] < CHANCE_CEILING
            lines.append(f"  {name:<{width}}{a['accuracy']:9.3f}   {a['real_balanced_accuracy']:.3f}"
                         + ("   <- the classifier is near chance on real images: no verdict" if weak else ""))
        lines.append(f"  {'mean':<{width}}{control['accuracy']:9.3f}   {control['real_accuracy']:.3f}"
                     f"   (all attributes right at once: {control['all_correct']:.3f})")
        if any(a["real_balanced_accuracy"] < CHANCE_CEILING for a in control["attributes"].values()):
            lines.append("  (give the classifier more epochs or images — evaluation.classifier_epochs / "
                         "classifier_images, a new setting trains a new classifier — and evaluate again)")
    lines.append(f"FID {metrics['fid']:.3f} ({metrics['fid_n_real']} real, {metrics['fid_n_fake']} generated)")
    lines.append(f"KID {metrics['kid']:.5f} ± {metrics['kid_std']:.5f} ({metrics['kid_subsets']} subsets of "
                 f"{metrics['kid_subset_size']})")
    lines.append(f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f} (k={metrics['pr_k']}, "
                 f"{metrics['pr_n_real']} real vs {metrics['pr_n_fake']} generated)")
    lines.append(f"features: {metrics['feature_extractor']}")
    return lines
