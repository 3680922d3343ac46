"""Choose which images train, from the attribute table alone (no image is decoded here).

Order of operations: partition → filters → balance → limit. Each step reports how many images it
kept, so an empty selection names the filter that emptied it.
"""

from __future__ import annotations

import itertools
import json

import numpy as np

from homogan.data.celeba import PARTITIONS, AttributeTable
from homogan.errors import DataError


def select(table: AttributeTable, *, split: str, filters: dict[str, int], balance: str | None,
           attributes: list[str], limit: int | None, seed: int) -> tuple[np.ndarray, list[str]]:
    """Indices into ``table`` of the training images, sorted, and a log of what each step kept."""
    rng = np.random.default_rng(seed)
    keep = np.arange(len(table))
    log = [f"{len(keep)} images in the attribute table"]
    if split != "all":
        keep = keep[table.partition[keep] == PARTITIONS[split]]
        log.append(f"partition {split}: {len(keep)}")
        if not len(keep):
            raise DataError(f"data.split: {split!r} leaves 0 images (the partition file has no {split} rows)")
    for name, wanted in filters.items():
        before = len(keep)
        keep = keep[table.column(name)[keep] == (1 if wanted == 1 else -1)]
        log.append(f"filter {name}={wanted}: {len(keep)}")
        if not len(keep):
            raise DataError(f"data.filters.{name}: {wanted} leaves 0 of {before} images")
    if balance is not None:
        columns = attributes if balance == "combinations" else [balance]
        keep = _balance(table, keep, columns, rng, limit)
        log.append(f"balanced on {'+'.join(columns)}: {len(keep)}")
    elif limit is not None and limit < len(keep):
        keep = rng.choice(keep, size=limit, replace=False)
        log.append(f"limit {limit}: {len(keep)}")
    return np.sort(keep), log


def _balance(table: AttributeTable, keep: np.ndarray, columns: list[str], rng: np.random.Generator,
             limit: int | None) -> np.ndarray:
    """Equal counts for every value combination of ``columns`` (50/50 for one column)."""
    codes = np.stack([table.column(c)[keep] > 0 for c in columns], axis=1)
    groups = []
    for combo in itertools.product([False, True], repeat=len(columns)):
        members = keep[np.all(codes == np.asarray(combo), axis=1)]
        if not len(members):
            shown = json.dumps({c: int(v) for c, v in zip(columns, combo)})
            raise DataError(f"data.balance: no image has {shown} in the selection, so it cannot be balanced")
        groups.append(members)
    per_group = min(len(g) for g in groups)
    if limit is not None:
        per_group = min(per_group, max(1, limit // len(groups)))
    return np.concatenate([rng.choice(g, size=per_group, replace=False) for g in groups])


def labels_for(table: AttributeTable, indices: np.ndarray, attributes: list[str]) -> np.ndarray:
    """(N, len(attributes)) float32 in {0, 1}: the conditioning vectors."""
    if not attributes:
        return np.zeros((len(indices), 0), np.float32)
    return np.stack([table.column(a)[indices] > 0 for a in attributes], axis=1).astype(np.float32)
