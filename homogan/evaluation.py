"""Evaluation of a generator, orchestrated: attribute control, and FID/KID/precision-recall against the real set.

The metric math is :mod:`homogan.metrics` (pure numpy); the feature spaces are
:mod:`homogan.features`; the caches' folders and keys are :mod:`homogan.data.cache`; loading a trained
run is :func:`homogan.experiment.load_run`. This module puts them together: :class:`Evaluator` builds
the judges once (the attribute classifier, the feature extractor, the real set's cached statistics,
all in float32) and then measures a generator in one generation pass; :func:`evaluate_run` does that
for a run folder and merges the numbers into its ``metrics.json``.

**Images** are compared in memory, never through JPEG: real images are the run's training selection
decoded by the same pipeline as training (uint8); generated images are quantised to the same uint8
grid in memory (:func:`homogan.pixels.quantize`), so both sets go through identical preprocessing.
The real set's features, mean and covariance are cached (``<cache>/reference/<key>.npz``, plain
arrays, no pickle), keyed by the dataset, the selection, the image size and crop, the number of
images and the extractor.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from homogan import classifier as clf, features, metrics, pixels, precision
from homogan.atomic import atomic_path, write_text
from homogan.config import Config
from homogan.data import cache, pipeline, sources
from homogan.errors import UserError
from homogan.experiment import load_run, open_run_dir
from homogan.metrics import collapse_warning
from homogan.models.inference import generate

#: Below this real-image balanced accuracy the classifier cannot judge an attribute (flagged in reports).
CHANCE_CEILING = 0.6
MIN_SAMPLES = 10  # the config's minimum for evaluation.num_samples / num_real
#: 2: always computed with float32 networks (version 1 could be computed under a run's bf16 policy).
REFERENCE_VERSION = 2
#: Attribute-control accuracy uses every combination of up to this many attributes, random ones beyond.
MAX_COMBINATION_ATTRIBUTES = 6


# --------------------------------------------------------------------------------------------
# The real set


@dataclass
class Reference:
    """The real set in a feature space: features (for KID and precision/recall), mean, covariance, labels."""

    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray
    labels: np.ndarray
    path: Path
    extractor: str


def reference_data(config: Config) -> Config:
    """``config`` with the data the real reference is drawn from: the training selection, or without
    ``data.limit`` (``evaluation.reference: "unlimited"``)."""
    if config.evaluation.reference == "unlimited":
        return replace(config, data=replace(config.data, limit=None))
    return config


def reference_key(config: Config, extractor_name: str) -> str:
    config = reference_data(config)
    d = config.data
    spec = {"dataset": cache.dataset_identity(config), "selection": cache.selection(config),
            "num_real": config.evaluation.num_real, "extractor": extractor_name, "version": REFERENCE_VERSION}
    return f"{d.source}-{d.image_size}px-n{config.evaluation.num_real}-{cache.short_hash(spec)}"


def reference(config: Config, extractor: features.FeatureExtractor, echo=print) -> Reference:
    """The cached real-set statistics for ``config``'s training selection (or the unlimited one,
    :func:`reference_data`), computed on first use."""
    config = reference_data(config)
    path = cache.cache_dir(config) / "reference" / f"{reference_key(config, extractor.name)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            if str(z["extractor"]) == extractor.name:
                return Reference(z["features"], z["mu"], z["sigma"], z["labels"], path, extractor.name)
    import tensorflow as tf

    started = time.perf_counter()
    cfg = cache.seeded_config(config)
    source = sources.open_source(cfg)
    ds = pipeline.decoded_images(replace(cfg, data=replace(cfg.data, cache=False)), source)
    batches, labels = [], []
    for x, y in ds.take(config.evaluation.num_real).batch(256).prefetch(tf.data.AUTOTUNE):
        batches.append(extractor(pixels.to_unit_range(x).numpy()))  # batch by batch: never all images in memory
        labels.append(y.numpy().astype(np.float32))
    count = sum(len(f) for f in batches)
    if count < metrics.PR_K + 2:
        raise UserError(f"evaluation: the training selection has only {count} images; FID/KID/precision/recall "
                        f"need at least {metrics.PR_K + 2}")
    real, labels = np.concatenate(batches), np.concatenate(labels)
    mu, sigma = metrics.statistics(real)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, features=real, mu=mu, sigma=sigma, labels=labels, extractor=np.str_(extractor.name))
    echo(f"reference statistics of {count} real images ({extractor.name}) cached in {path} "
         f"({time.perf_counter() - started:.0f} s)")
    return Reference(real, mu, sigma, labels, path, extractor.name)


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


def attribute_control(generator, classifier, names: list[str], one_hot: bool, per_combination: int, latent_dim: int,
                      seed: int = 0) -> dict:
    """How often the classifier sees the requested value, per attribute (or class), beside its real accuracy.

    Every combination (class) gets ``per_combination`` images from fresh z; an attribute's ``accuracy``
    is the balanced accuracy of the request — the mean of how often the classifier agrees when it was
    asked for as 1 and as 0 — and the classifier's real-image balanced accuracy is its ceiling.
    One-hot: argmax accuracy, per requested class.
    """
    combos = label_combinations(names, one_hot, seed)
    labels = np.repeat(combos, per_combination, axis=0)
    z = np.random.default_rng([seed, 1]).standard_normal((len(labels), latent_dim)).astype(np.float32)
    probs = classifier.predict(pixels.quantize(generate(generator, z, labels)))
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
            when = [float(hit[asked].mean()) if asked.any() else None for asked in (wanted, ~wanted)]
            # Balanced: the mean of the "asked 1" and "asked 0" recalls, exactly (with > 6 attributes the 64
            # random combinations ask for 1 and 0 only roughly equally often).
            balanced = float(np.mean([w for w in when if w is not None]))
            out["attributes"][name] = {
                "accuracy": balanced, "when_1": when[0], "when_0": when[1],
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

    def __init__(self, config: Config, label_names: list[str], echo=print, classifier=None):
        self.config = config
        self.label_names = list(label_names)
        self.one_hot = config.data.class_conditional
        self.dataset = cache.dataset_identity(config)  # what the reference below is drawn from, fixed from here on
        # The judges are float32 whatever the training precision: a bf16 classifier or feature extractor
        # would measure every run of a bf16 machine on a different scale.
        with precision.float32():
            self.classifier = classifier if classifier is not None else clf.ensure(config, echo=echo)
            self.extractor = features.feature_extractor(config, self.classifier, echo)
            self.reference = reference(config, self.extractor, echo)

    def protocol(self, num_samples: int | None = None, per_combination: int | None = None, seed: int = 0) -> dict:
        """How every value of :meth:`evaluate` is measured — what must be equal for two values to be compared
        (:func:`homogan.metrics.protocol_differences`). The generator measured is added by the caller."""
        e = self.config.evaluation
        num_samples = num_samples or e.num_samples
        ref = self.reference
        out = {"feature_extractor": self.extractor.name, "extractor_weights": self.extractor.weights,
               "image_size_fed": self.extractor.input_size, "n_generated": num_samples, "n_real": len(ref.features),
               "kid": {"subsets": metrics.KID_SUBSETS, "subset_size": min(metrics.KID_SUBSET_SIZE, num_samples,
                                                                          len(ref.features))},
               "pr_k": metrics.PR_K, "seed": seed,
               "reference": {"dataset": self.dataset,
                             "selection": cache.selection(reference_data(self.config)),
                             "file": ref.path.name},
               "attribute_control": None}
        if self.label_names and self.classifier is not None:
            out["attribute_control"] = {
                "per_combination": per_combination or e.per_combination,
                "combinations": len(label_combinations(self.label_names, self.one_hot, seed)),
                "classifier": self.classifier.key, "classifier_weights": self.classifier.weights_digest}
        return out

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
        fake = self.extractor(pixels.quantize(generate(generator, z, labels)))
        flat = {"feature_extractor": self.extractor.name,
                **metrics.all_metrics(ref.features, fake, seed=seed, real_stats=(ref.mu, ref.sigma))}
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


def evaluate_run(run_dir, per_combination: int | None = None, num_samples: int | None = None,
                 overrides: tuple[str, ...] = (), echo=print, write: bool = True, seed: int = 0,
                 checkpoint: str = "latest") -> dict:
    """Evaluate the latest checkpoint of ``run_dir``; merge the numbers into ``RUN_DIR/metrics.json``.

    ``overrides`` may change ``evaluation.*`` keys only (the rest would no longer describe the run).
    """
    if num_samples is not None and num_samples < MIN_SAMPLES:
        raise UserError(f"--num-samples {num_samples}: too few for precision/recall and FID; allowed: >= {MIN_SAMPLES}")
    for item in overrides:
        if not item.strip().startswith("evaluation."):
            raise UserError(f"--set {item!r}: evaluate accepts only evaluation.* keys (the rest describe the run)")
    with open_run_dir(run_dir).lock("evaluate", echo):
        return _evaluate_locked(run_dir, per_combination, num_samples, overrides, echo, write, seed, checkpoint)


def _evaluate_locked(run_dir, per_combination, num_samples, overrides, echo, write, seed, checkpoint) -> dict:
    run = load_run(run_dir, overrides=overrides, echo=echo, checkpoint=checkpoint)
    config = run.config
    evaluator = Evaluator(config, run.label_names, echo=echo)
    result = evaluator.evaluate(run.generator, num_samples, per_combination, seed)
    details = result.pop("details")
    protocol = {**evaluator.protocol(num_samples, per_combination, seed), "generator": run.generator_name,
                "checkpoint": run.checkpoint.name, "epoch": run.epoch}
    measured = {**result, "protocol": protocol,
                "evaluated": {"epoch": run.epoch, "checkpoint": run.checkpoint.name,
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
        write_text(path, json.dumps({**existing, **measured}, indent=2) + "\n")
        measured["written"] = str(path)
    return measured


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
    spread = f", spread {metrics['spread']:.3f}" if "spread" in metrics else ""
    lines.append(f"precision {metrics['precision']:.3f}, recall {metrics['recall']:.3f}{spread} (k={metrics['pr_k']}, "
                 f"{metrics['pr_n_real']} real vs {metrics['pr_n_fake']} generated)")
    collapsed = collapse_warning(metrics)
    if collapsed:
        lines.append(f"warning: {collapsed}")
    lines.append(f"features: {metrics['feature_extractor']}")
    return lines
