"""Prepared shards (`prepare`): keyed by data, selection, crop and size; atomic; same sequence as from JPEGs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from homogan.config import load_config
from homogan.data import decode, prepared, sources

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def config_in(tiny_config, tmp_path):
    """tiny_config with the prepared shards in this test's own folder (never in the shared synthetic root)."""

    def make(*overrides):
        return tiny_config(f"evaluation.cache_dir={tmp_path / 'cache'}", *overrides)

    return make


def key_of(config):
    return prepared.key(config, sources.open_source(config))


def test_key_changes_with_crop_size_channels_selection_and_order(config_in):
    base = config_in('data.attributes=["Eyeglasses"]')
    assert key_of(base) == key_of(config_in('data.attributes=["Eyeglasses"]'))
    variants = ["data.crop=120", "data.crop=null", "data.image_size=64", "data.channels=1", "data.split=all",
                'data.filters={"Male": 1}', "data.balance=Male", "data.limit=100", 'data.attributes=["Bald"]',
                "experiment.seed=7"]  # the seed draws the source's fixed file order
    keys = {key_of(config_in('data.attributes=["Eyeglasses"]', v)) for v in variants}
    assert len(keys) == len(variants) and key_of(base) not in keys
    # What does not change the stored images does not change the key.
    assert key_of(config_in('data.attributes=["Eyeglasses"]', "data.cache=false", "data.shuffle_buffer=7",
                            "training.batch_size=4")) == key_of(base)


def epochs_of(config, initial_epoch=0):
    from homogan.data import pipeline

    data = sources.training_data(config, sources.open_source(config))
    return [(x.numpy(), y.numpy()) for x, y in pipeline.make_dataset(config, data, initial_epoch)]


def test_shards_give_the_same_sequence_as_jpegs(config_in, monkeypatch):
    """Same (seed, epoch) → same images and labels, batch by batch, from JPEGs and from shards, also resumed."""

    overrides = ('data.attributes=["Eyeglasses","Bald"]', "data.split=all", "training.epochs=3",
                 "training.steps_per_epoch=null", "data.shuffle_buffer=50")
    config = config_in(*overrides)
    assert prepared.find(config, sources.open_source(config)) is None
    from_jpegs, resumed_jpegs = epochs_of(config), epochs_of(config, initial_epoch=1)
    # 240 images = 3.75 blocks of 64 in 3 shards: shards of unequal length and a partial last block.
    folder, manifest, fresh = prepared.prepare(config, echo=lambda *a: None, num_shards=3)
    assert fresh and len(manifest["shards"]) == 3 and manifest["count"] % 64 != 0
    assert prepared.find(config, sources.open_source(config)) == (folder, manifest)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although prepared shards exist")

    monkeypatch.setattr(decode, "decode", no_decoding)
    for cached in ("true", "false"):
        cfg = config_in(*overrides, f"data.cache={cached}")
        for jpegs, shards in ((from_jpegs, epochs_of(cfg)), (resumed_jpegs, epochs_of(cfg, initial_epoch=1))):
            assert len(jpegs) == len(shards) > 0
            for (xa, ya), (xb, yb) in zip(jpegs, shards):
                np.testing.assert_array_equal(xa, xb)
                np.testing.assert_array_equal(ya, yb)
    # data.prepared "off" decodes again (here: into the patched decode).
    with pytest.raises(AssertionError, match="decoded"):
        epochs_of(config_in(*overrides, "data.prepared=off"))
    # The shards are plain uint8 NumPy arrays, in total exactly the selection.
    arrays = [np.load(folder / s["images"], mmap_mode="r") for s in manifest["shards"]]
    assert all(a.dtype == np.uint8 and a.shape[1:] == (32, 32, 3) for a in arrays)
    assert sum(len(a) for a in arrays) == manifest["count"] == sources.open_source(config).count


def test_incomplete_or_damaged_folder_is_never_used(config_in):
    config = config_in()
    source = sources.open_source(config)
    folder, manifest, _ = prepared.prepare(config, echo=lambda *a: None)
    image, label = next(iter(prepared.read(folder, manifest)))  # unconditional: empty labels
    assert image.shape == (32, 32, 3) and label.shape == (0,)
    # A finished write left in its temporary folder (killed before the rename) is not found.
    tmp = folder.with_name(f".{folder.name}.tmp-999999")
    folder.rename(tmp)
    assert prepared.find(config, source) is None
    tmp.rename(folder)
    assert prepared.find(config, source) is not None
    # A truncated shard, or a missing manifest, makes the folder invalid; prepare then rewrites it.
    shard = folder / manifest["shards"][0]["images"]
    shard.write_bytes(shard.read_bytes()[:-1])
    assert prepared.find(config, source) is None
    _, _, fresh = prepared.prepare(config, echo=lambda *a: None)
    assert fresh and prepared.find(config, source) is not None
    (folder / "manifest.json").unlink()
    assert prepared.find(config, source) is None


def test_prepare_twice_is_a_no_op(synthetic_root, tmp_path, capsys):
    from homogan.cli import main

    args = ["prepare", "--set", f"data.root={synthetic_root}", "--set", "data.synthetic_images=240",
            "--set", "data.image_size=32", "--set", f"evaluation.cache_dir={tmp_path}",
            "--set", "logging.progress=none"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert "prepared" in first and "already" not in first
    (manifest,) = tmp_path.glob("prepared/*/manifest.json")
    stamp = manifest.stat().st_mtime_ns
    assert main(args) == 0
    second = capsys.readouterr().out
    assert second.startswith("already prepared:") and "nothing to do" in second
    assert manifest.stat().st_mtime_ns == stamp and len(list(tmp_path.glob("prepared/*"))) == 1
    config = load_config(None, args[2::2])
    assert json.loads(manifest.read_text())["count"] == sources.open_source(config).count


@pytest.mark.parametrize("bad", ["data.image_size=48", "data.imagesize=64", "data.prepared=yes"])
def test_bad_set_exits_2_with_one_line(bad, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "homogan", "prepare", "--set", bad], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stdout == ""
    assert len(out.stderr.strip().splitlines()) == 1 and out.stderr.startswith("error: ")
    assert not (tmp_path / "data").exists()


def test_prepare_has_help():
    from homogan.cli import build_parser

    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["prepare", "--help"])
    assert e.value.code == 0


def test_decode_fingerprint_survives_the_move_of_decode_out_of_the_pipeline():
    """Shards prepared before decode() moved from pipeline.py to decode.py stay valid: the fingerprint is
    that of 31e5210 (``git show 31e5210:homogan/data/prepared.py``'s decode_fingerprint() on its pipeline.py)."""
    assert prepared.decode_fingerprint() == "702363a98022"
