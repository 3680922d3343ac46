"""Shared fixtures: a small synthetic CelebA copy (made once per test session) and config helpers."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pytest  # noqa: E402

from homogan.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

# The modules whose tests take a minute or more each (the README's commands alone take several). pytest-xdist
# hands tests out in collection order, and one of these collected last runs alone on one core at the end: so they
# go first (longest-processing-time-first), and the short tests fill the other worker meanwhile.
SLOW_FIRST = ("test_readme_commands.py", "test_soak.py", "test_distribute.py", "test_crash.py")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(SLOW_FIRST)))  # stable: the rest keep their order


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """The parent folder of a 240-image synthetic dataset (what ``data.root`` points at)."""
    from homogan.data import synthetic

    root = tmp_path_factory.mktemp("synthetic")
    synthetic.generate(root, 240, 0, progress=False)
    return root


@pytest.fixture(scope="session")
def celeba_dir(synthetic_root) -> Path:
    """The synthetic dataset folder itself: CelebA's official layout."""
    from homogan.data import synthetic

    return synthetic.dataset_dir(synthetic_root, 240, 0)


@pytest.fixture
def tiny_config(synthetic_root, tmp_path):
    """A config that trains in seconds: 32 px, narrow networks, a few steps."""

    def make(*overrides: str):
        base = [f"data.root={synthetic_root}", "data.synthetic_images=240", "data.image_size=32",
                "model.latent_dim=16", "model.generator.width=8", "model.discriminator.width=8",
                "training.batch_size=8", "training.epochs=2", "training.steps_per_epoch=2",
                f"experiment.output_dir={tmp_path / 'runs'}", "logging.progress=none"]
        return load_config(None, base + list(overrides))

    return make
