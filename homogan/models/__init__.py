"""Generator and discriminator, built from the typed config."""

from __future__ import annotations

import dataclasses

from homogan.models.discriminator import Discriminator
from homogan.models.generator import Generator


def build_models(config, num_labels: int) -> tuple[Generator, Discriminator]:
    """G and D for ``config`` (a :class:`homogan.config.Config`), built on dummy inputs."""
    d, m = config.data, config.model
    g = Generator(d.image_size, d.channels, m.latent_dim, num_labels, name="generator",
                  **dataclasses.asdict(m.generator))
    disc = Discriminator(d.image_size, d.channels, num_labels, name="discriminator",
                         **dataclasses.asdict(m.discriminator))
    import keras
    z = keras.ops.zeros((2, m.latent_dim))
    y = keras.ops.zeros((2, num_labels))
    disc(g(z, y), y)
    return g, disc


__all__ = ["Generator", "Discriminator", "build_models"]
