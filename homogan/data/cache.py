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

from homogan.data.celeba import find_layout
from homogan.errors import DataError


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
    """What makes two datasets the same for cached classifiers and statistics, and for evaluation protocols.

    Where a copy lives is not part of it: a project moved, or cloned elsewhere, finds its caches and measures
    under the same protocol (so ``reproduce`` and ``report`` still compare its evaluation values). What the copy
    holds is (:func:`contents`): a folder whose images were added, removed or renamed is another dataset, so no
    classifier or reference statistics of its old contents are reused."""
    d = config.data
    ident = {"source": d.source, "image_size": d.image_size, "crop": d.crop, "channels": d.channels,
             "contents": contents(config)}
    if d.source == "synthetic":
        from homogan.data.synthetic import SYNTHETIC_VERSION  # what the faces look like is versioned there

        ident.update(synthetic_images=d.synthetic_images, synthetic_version=SYNTHETIC_VERSION)
    if d.source == "tfds":
        ident["tfds_name"] = d.tfds_name
    return ident


def contents(config) -> dict | None:
    """A fingerprint of what ``data.root`` holds that does not depend on where it is: for a folder, every file's
    path below the root (its class folder included) and size; for a CelebA copy, its attribute and partition
    tables (which name every image and its labels). None where the contents follow from the config: the
    synthetic faces (drawn from a fixed seed, their version in their folder name) and tfds (a named, versioned
    dataset). A missing root is None too: opening the data says what is wrong."""
    d = config.data
    root = Path(d.root)
    if d.source == "folder" and root.is_dir():
        h = hashlib.sha1()
        count = 0
        for path in sorted(root.rglob("*")):  # hidden files and folders (a cache put inside the root) are not data
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") for part in relative.parts):
                h.update(f"{relative.as_posix()}\0{path.stat().st_size}\n".encode())
                count += 1
        return {"files": count, "names_and_sizes": h.hexdigest()[:16]}
    if d.source == "celeba" and root.is_dir():
        try:
            layout = find_layout(root)
        except DataError:
            return None
        tables = [f for f in (layout.attr_file, layout.partition_file) if f.is_file()]
        h = hashlib.sha1()
        for table in tables:
            h.update(table.name.encode() + b"\0" + table.read_bytes())
        return {"layout": layout.kind, "tables": h.hexdigest()[:16]}
    return None


def seeded_config(config, **data_changes):
    """A copy of ``config`` with experiment.seed 0 (a selection that does not depend on the run's seed)."""
    return replace(config, experiment=replace(config.experiment, seed=0), data=replace(config.data, **data_changes))


def selection(config) -> dict:
    """What picks the images of a dataset (split, filters, balance, limit) and what labels they carry."""
    d = config.data
    return {"split": d.split, "filters": d.filters, "balance": d.balance, "limit": d.limit,
            "attributes": d.attributes, "class_conditional": d.class_conditional}
