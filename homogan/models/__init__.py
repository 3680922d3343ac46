"""Generator and discriminator, built from the typed config."""

from __future__ import annotations

import dataclasses

from homogan.errors import ConfigError
from homogan.models.discriminator import CONDITIONING, Discriminator
from homogan.models.generator import Generator


def build_models(config, num_labels: int) -> tuple[Generator, Discriminator]:
    """G and D for ``config`` (a :class:`homogan.config.Config`), built on dummy inputs.

    ``num_labels`` comes from the data (for class-conditional folders it is only known once the
    folder is read), so the one conditioning rule the config validator cannot check is checked here.
    """
    d, m = config.data, config.model
    for key, conditioning in (("generator", m.generator.conditioning), ("discriminator", m.discriminator.conditioning)):
        if conditioning != "concat" and num_labels == 0:
            raise ConfigError(f"model.{key}.conditioning: {conditioning!r} needs labels but the data "
                              f"{d.source} {d.root} has none; allowed without labels: \"concat\"")
    g = Generator(d.image_size, d.channels, m.latent_dim, num_labels, name="generator",
                  **dataclasses.asdict(m.generator))
    disc = Discriminator(d.image_size, d.channels, num_labels, name="discriminator",
                         **dataclasses.asdict(m.discriminator))
    import keras
    z = keras.ops.zeros((2, m.latent_dim))
    y = keras.ops.zeros((2, num_labels))
    disc(g(z, y), y)
    return g, disc


__all__ = ["Generator", "Discriminator", "CONDITIONING", "build_models"]
