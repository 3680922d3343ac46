"""Where homogan's per-dataset caches live and what makes two datasets (and selections) the same.

One home for the question, below all of its users: the attribute classifiers
(``<cache>/classifiers/<key>/``), the real reference statistics (``<cache>/reference/<key>.npz``) and
the prepared shards (``<cache>/prepared/<key>/``) all live under :func:`cache_dir` and build their keys
from :func:`dataset_identity` and :func:`selection`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path


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


def selection(config) -> dict:
    """What picks the images of a dataset (split, filters, balance, limit) and what labels they carry."""
    d = config.data
    return {"split": d.split, "filters": d.filters, "balance": d.balance, "limit": d.limit,
            "attributes": d.attributes, "class_conditional": d.class_conditional}
