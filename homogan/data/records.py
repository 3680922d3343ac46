"""What the data layer hands on: a selected :class:`Source` and the :class:`TrainingData` made from it.

Plain dataclasses below every reader (CelebA, folders, tfds, synthetic) and every user (pipeline,
prepared shards, classifier, training), so none of them imports another for the types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Source:
    """What to decode, in a fixed order, with labels: image file paths, or (tfds) encoded records."""

    count: int
    label_names: list[str]
    log: list[str] = field(default_factory=list)
    paths: list[str] | None = None
    labels: np.ndarray | None = None  # (count, num_labels) float32 in {0, 1}
    encoded: Any = None  # tf.data.Dataset of (encoded bytes, label), for tfds


@dataclass
class TrainingData:
    source: Source
    image_size: int
    channels: int
    batch_size: int  # images per training step: global batch × d_steps
    steps_per_epoch: int

    @property
    def num_images(self) -> int:
        return self.source.count

    @property
    def label_names(self) -> list[str]:
        return self.source.label_names

    @property
    def passes_per_epoch(self) -> float:
        """How much of the selection an epoch goes through: 1 where ``training.steps_per_epoch`` is null (one
        pass, the remainder dropped), several for a small selection at a fixed step count, a share for a large one."""
        full = self.num_images // self.batch_size
        return 1.0 if self.steps_per_epoch == full else self.steps_per_epoch * self.batch_size / self.num_images
