"""Time train steps on one in-memory batch: the measurement behind ``doctor`` and ``bench/bench_train_step.py``.

Every round runs every contender for ``steps`` steps, in an order rotated per round, so that load from
other tenants of a shared host hits all of them alike. A row gives images/s over all rounds, the
ratio of total times to the first contender, the median of the per-round ratios (which one disturbed
round cannot move) and the fastest round against the first contender's fastest (on a host whose
neighbours slow some windows by 2×, the least disturbed estimate of what a step costs).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np

from homogan.config import Config
from homogan.train import ada_decision, build_gan


@dataclass(frozen=True)
class Row:
    name: str
    images_per_second: float
    ratio: float  # total time of the first contender ÷ this one's
    median_ratio: float  # median over rounds of the same ratio
    fastest_ratio: float  # this one's fastest round ÷ the first contender's fastest
    low: float  # img/s of the slowest round
    high: float  # img/s of the fastest round


@dataclass(frozen=True)
class Batch:
    """The shape of one step's input (``uint8``: as the pipeline delivers it; else floats in [-1, 1])."""

    batch: int
    size: int
    channels: int
    labels: int
    uint8: bool


def config_batch(config: Config, num_labels: int) -> Batch:
    """One training step's input for ``config``: ``batch_size × d_steps`` uint8 images (one real slice per D update)."""
    d, t = config.data, config.training
    return Batch(t.batch_size * t.d_steps, d.image_size, d.channels, num_labels, uint8=True)


def config_variants(config: Config, resolved: str, precisions: list[str]) -> list[tuple[str, Config]]:
    """(name, config with a resolved precision) for the step as configured, then each of ``precisions`` ×
    update mode (simultaneous only where the config's G:D steps are 1:1, which it needs)."""
    t = config.training
    configured = (resolved, t.update_mode)
    shown = f"{t.precision} → {resolved}" if t.precision != resolved else resolved
    out = [(f"as configured: {shown} {t.update_mode}", _with(config, *configured))]
    modes = ["alternating"] + (["simultaneous"] if (t.d_steps, t.g_steps) == (1, 1) else [])
    for p in precisions:
        for mode in modes:
            if (p, mode) != configured:
                out.append((f"{p} {mode}", _with(config, p, mode)))
    return out


def _with(config: Config, precision: str, mode: str) -> Config:
    from dataclasses import replace

    return replace(config, training=replace(config.training, precision=precision, update_mode=mode))


def config_step(config: Config, num_labels: int):
    """The compiled train step of ``config`` (precision resolved; ADA on or off as training decides for the
    configured data) as a function of (real, labels)."""
    import tensorflow as tf

    gan = build_gan(config, num_labels, ada=ada_for(config))
    fn = tf.function(gan.train_step, jit_compile=config.training.jit_compile)
    return lambda real, labels: fn((real, labels))["g_loss"]


def ada_for(config: Config) -> bool:
    """Whether training would run ADA for the configured data (its selection's size decides). Synthetic faces
    not drawn yet are not drawn for this: their selection is at most the split's share of
    ``data.synthetic_images`` (or ``data.limit``). Off when the data cannot be opened here."""
    from homogan.data import sources, synthetic
    from homogan.errors import DataError

    d = config.data
    if d.source == "synthetic" and not synthetic.dataset_dir(d.root, d.synthetic_images, sources.SYNTHETIC_SEED).exists():
        share = {"train": 0.8, "valid": 0.1, "test": 0.1, "all": 1.0}[d.split]
        count = round(share * d.synthetic_images)
        return ada_decision(config, min(count, d.limit) if d.limit else count)[0]
    try:
        count = sources.open_source(config).count
    except DataError:
        return False
    return ada_decision(config, count)[0]


def time_steps(items, batch: Batch, warmup: int, steps: int, rounds: int, echo=print) -> list[Row]:
    """Time ``items`` [(name, step(real, labels))] on one in-memory batch of shape ``batch``."""
    import tensorflow as tf

    rng = np.random.default_rng(1)
    shape = (batch.batch, batch.size, batch.size, batch.channels)
    if batch.uint8:
        real = tf.constant(rng.integers(0, 256, shape).astype("uint8"))
    else:
        real = tf.constant(rng.uniform(-1, 1, shape).astype("float32"))
    labels = tf.constant((rng.random((batch.batch, batch.labels)) > 0.5).astype("float32"))
    for name, step in items:
        t0 = time.perf_counter()
        for _ in range(warmup):
            np.asarray(step(real, labels))
        echo(f"  warm-up {name}: {time.perf_counter() - t0:.1f} s")
    seconds = {name: 0.0 for name, _ in items}
    per_round: dict[str, list[float]] = {name: [] for name, _ in items}
    for r in range(rounds):
        order = items[r % len(items):] + items[:r % len(items)]
        for name, step in order:
            t0 = time.perf_counter()
            for _ in range(steps):
                np.asarray(step(real, labels))  # waits for the step
            dt = time.perf_counter() - t0
            seconds[name] += dt
            per_round[name].append(batch.batch * steps / dt)
            echo(f"    {name}: {per_round[name][-1]:.1f} img/s")
        echo(f"  round {r + 1}/{rounds} done, load {os.getloadavg()[0]:.2f}")
    first = items[0][0]
    rows = []
    for name, _ in items:
        rows.append(Row(name, batch.batch * steps * rounds / seconds[name], seconds[first] / seconds[name],
                        float(np.median([a / b for a, b in zip(per_round[name], per_round[first])])),
                        max(per_round[name]) / max(per_round[first]), min(per_round[name]), max(per_round[name])))
    return rows


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())
