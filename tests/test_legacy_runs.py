"""Runs written by older homogan still resume and still generate (fixture: a run made by commit 31e5210)."""

import json
import shutil

import numpy as np
import pytest

from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "run_31e5210"


@pytest.fixture
def old_run(tmp_path, monkeypatch):
    """The fixture run folder in a project layout of its own: runs/old31 and the 48 synthetic faces it trained on."""
    from homogan.data import synthetic

    synthetic.generate(tmp_path / "data" / "synthetic", 48, 0, workers=1, progress=False)
    run = tmp_path / "runs" / "old31"
    shutil.copytree(FIXTURE, run)
    monkeypatch.chdir(tmp_path)
    return run


def test_a_31e5210_run_resumes_with_every_part_of_its_checkpoint(old_run):
    from homogan.config import load_config
    from homogan.train import train

    lines = []
    # As `--resume` reads it: a config homogan wrote, so keys added since get their old values (LATER_KEYS).
    config = load_config(old_run / "config.json", ["training.epochs=2"], written_out=True)
    result = train(config, resume=old_run, echo=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert result.epochs_done == 2
    assert not [line for line in lines if "predates" in line], lines  # it holds every weight and RNG state
    history = (old_run / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    assert json.loads((old_run / "checkpoints" / "latest.json").read_text())["epoch"] == 2


def test_a_31e5210_run_generates_with_its_ema_generator(old_run):
    from homogan.experiment import load_run
    from homogan.generate import generate

    loaded = load_run(old_run)
    assert loaded.generator_name == "ema_generator" and loaded.epoch == 1 and loaded.label_names == ["Bald"]
    (path,) = generate(old_run, n=4, attributes="Bald=1", seed=3, out=str(old_run / "four.png"))
    assert path.is_file()
    z = np.random.default_rng(0).standard_normal((2, 16)).astype(np.float32)
    images = np.asarray(loaded.generator(z, np.ones((2, 1), np.float32), training=False))
    assert images.shape == (2, 32, 32, 3) and np.all(np.abs(images) <= 1)
