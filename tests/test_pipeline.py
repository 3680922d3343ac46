"""The tf.data pipeline: ranges and shapes, per-epoch order, no second decode, sources end to end."""

import shutil

import numpy as np
import pytest
from PIL import Image

from homogan.data import sources


def epochs_of(config, data, initial_epoch=0):
    from homogan.data import pipeline

    out = []
    for images, labels in pipeline.make_dataset(config, data, initial_epoch):
        out.append((images.numpy(), labels.numpy()))
    return out


def test_batches_have_training_range_shapes_and_labels(tiny_config):
    config = tiny_config('data.attributes=["Eyeglasses","Bald"]', "data.image_size=64", "training.epochs=1",
                         "training.steps_per_epoch=null")
    source = sources.open_source(config)
    data = sources.training_data(config, source)
    assert data.steps_per_epoch == source.count // 8
    assert data.passes_per_epoch == 1.0  # the run summary says nothing about passes then
    batches = epochs_of(config, data)
    assert len(batches) == data.steps_per_epoch
    images, labels = batches[0]
    # uint8 all the way to the train step, which scales to [-1, 1] (tested in test_gan).
    assert images.shape == (8, 64, 64, 3) and images.dtype == np.uint8
    assert images.min() < 64 and images.max() > 192
    assert labels.shape == (8, 2) and set(np.unique(labels)) <= {0.0, 1.0}
    # Every selected image appears exactly once per epoch (drop_remainder aside).
    assert sum(len(b[0]) for b in batches) == data.steps_per_epoch * 8


def test_epoch_order_depends_only_on_seed_and_epoch(tiny_config):
    config = tiny_config("training.epochs=3", "training.steps_per_epoch=4")
    data = sources.training_data(config, sources.open_source(config))
    full = epochs_of(config, data)
    resumed = epochs_of(config, data, initial_epoch=1)
    assert len(full) == 12 and len(resumed) == 8
    for a, b in zip(full[4:], resumed):
        np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(full[0][0], full[4][0])  # epochs are shuffled differently


def image_ids(batches):
    """One number per image, in stream order (the synthetic faces' pixel sums tell them apart)."""
    return np.concatenate([b[0].reshape(len(b[0]), -1).sum(1, dtype=np.int64) for b in batches])


def test_an_epoch_of_more_steps_than_a_pass_goes_on_into_newly_shuffled_passes(tiny_config):
    """``training.steps_per_epoch`` above one pass (a small folder at the shipped 1,000 steps): the epoch holds
    that many steps, not one pass (the old code capped it), its first pass is exactly the one-pass epoch, so a
    selection of exactly ``steps_per_epoch`` batches (the default run) trains on the same batches as before,
    and each further pass holds every image once, in an order of its own; a resume lands on the same batches."""
    one_pass = tiny_config("training.epochs=2", "training.steps_per_epoch=null")
    source = sources.open_source(one_pass)
    full = sources.training_data(one_pass, source).steps_per_epoch
    longer = tiny_config("training.epochs=2", f"training.steps_per_epoch={3 * full + 1}")
    data = sources.training_data(longer, source)
    assert data.steps_per_epoch == 3 * full + 1
    assert data.passes_per_epoch == (3 * full + 1) * data.batch_size / source.count > 3
    batches = epochs_of(longer, data)
    assert len(batches) == 2 * (3 * full + 1)
    first = epochs_of(one_pass, sources.training_data(one_pass, source))
    for a, b in zip(first[:full], batches[:full]):
        np.testing.assert_array_equal(a[0], b[0])
    ids, n = image_ids(batches[: 3 * full + 1]), source.count
    assert len(np.unique(ids[:n])) == n  # the ids tell the images apart
    passes = [ids[k * n:(k + 1) * n] for k in range(3 * full * 8 // n)]
    assert len(passes) >= 2
    for k, p in enumerate(passes):
        np.testing.assert_array_equal(np.sort(p), np.sort(passes[0]))  # every image once per pass
        if k:
            assert not np.array_equal(p, passes[k - 1])  # in a new order
    resumed = epochs_of(longer, data, initial_epoch=1)
    for a, b in zip(batches[3 * full + 1:], resumed):
        np.testing.assert_array_equal(a[0], b[0])


def test_second_epoch_decodes_nothing(tiny_config, synthetic_root, tmp_path):
    """With the cache on, epoch 2 runs even after every JPEG has been deleted."""
    from homogan.data import pipeline

    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    config = tiny_config(f"data.root={root}", "training.epochs=2", "training.steps_per_epoch=null")
    data = sources.training_data(config, sources.open_source(config))
    iterator = iter(pipeline.make_dataset(config, data))
    first = [next(iterator) for _ in range(data.steps_per_epoch)]
    for jpg in root.rglob("*.jpg"):
        jpg.unlink()
    second = [b for b in iterator]
    assert len(second) == data.steps_per_epoch
    # Same images (from the cache), in another order.
    np.testing.assert_allclose(sorted(np.concatenate([b[0].numpy().reshape(8, -1).sum(1) for b in first])),
                               sorted(np.concatenate([b[0].numpy().reshape(8, -1).sum(1) for b in second])), rtol=1e-5)


def test_centre_crop_then_resize(tmp_path):
    import tensorflow as tf

    from homogan.data.decode import decode

    # A 178x218 image: white border, black 160x160 centre square → the crop is all black.
    pixels = np.full((218, 178, 3), 255, np.uint8)
    pixels[29:189, 9:169] = 0
    Image.fromarray(pixels).save(tmp_path / "a.png")
    out = decode(tf.constant(str(tmp_path / "a.png")), is_path=True, crop=160, size=32, channels=3).numpy()
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8 and out.max() <= 1
    out = decode(tf.constant(str(tmp_path / "a.png")), is_path=True, crop=None, size=32, channels=1).numpy()
    assert out.shape == (32, 32, 1) and out.max() == 255  # the largest square keeps the white border


@pytest.mark.parametrize("mode, channels", [("L", 1), ("RGB", 3), ("L", 3)])
def test_folder_source_grayscale_and_rgb(tmp_path, tiny_config, mode, channels):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(8):
            Image.new(mode, (50, 60), 40 * i).save(tmp_path / "imgs" / cls / f"{i}.png")
    config = tiny_config("data.source=folder", f"data.root={tmp_path / 'imgs'}", "data.class_conditional=true",
                         f"data.channels={channels}", "training.epochs=1")
    source = sources.open_source(config)
    assert source.label_names == ["a", "b"] and source.count == 16
    images, labels = epochs_of(config, sources.training_data(config, source))[0]
    assert images.shape == (8, 32, 32, channels)
    np.testing.assert_array_equal(labels.sum(axis=1), np.ones(8))


@pytest.mark.parametrize("global_seed", [0, 7])
def test_epoch_order_ignores_the_process_global_seed(tiny_config, global_seed):
    """Training (and users' scripts) set a global seed; the batches must not depend on it. A global
    seed of 0 used to crash the tensor-seeded shuffle inside TF's get_seed."""
    import keras
    import tensorflow as tf

    config = tiny_config("training.epochs=2", "training.steps_per_epoch=3")
    data = sources.training_data(config, sources.open_source(config))
    reference = epochs_of(config, data)
    keras.utils.set_random_seed(global_seed)
    try:
        for a, b in zip(reference, epochs_of(config, data)):
            np.testing.assert_array_equal(a[0], b[0])
    finally:
        tf.random.set_seed(None)


def test_faces_are_mirrored_half_the_time_afresh_each_epoch_and_a_resume_draws_the_same(tiny_config, tmp_path):
    """``data.mirror`` (null = on for faces): every image is itself or its mirror image, about half are mirrored,
    the draws differ between epochs, and batches skipped by a mid-epoch resume do not shift the later draws."""
    from homogan.data import pipeline

    sets = ("training.epochs=2", "training.steps_per_epoch=8")
    config, plain = tiny_config(*sets), tiny_config(*sets, "data.mirror=false")
    assert pipeline.mirrored(config) and not pipeline.mirrored(plain)
    data = sources.training_data(config, sources.open_source(config))
    mirrored, straight = epochs_of(config, data), epochs_of(plain, data)
    flips = [[not np.array_equal(a, b) for a, b in zip(m[0], s[0])] for m, s in zip(mirrored, straight)]
    for m, s, f in zip(mirrored, straight, flips):
        np.testing.assert_array_equal(m[0], np.where(np.array(f)[:, None, None, None], s[0][:, :, ::-1], s[0]))
        np.testing.assert_array_equal(m[1], s[1])
    share = np.mean(flips)
    assert 0.3 < share < 0.7, share
    assert flips[:8] != flips[8:]  # another draw in the next epoch
    skipped = [x.numpy() for x, _ in pipeline.make_dataset(config, data, 1).skip(3)]
    for a, b in zip(skipped, mirrored[11:]):
        np.testing.assert_array_equal(a, b[0])
    folder = tmp_path / "folder" / "a"
    folder.mkdir(parents=True)
    for i in range(4):
        Image.new("RGB", (8, 8), 40 * i).save(folder / f"{i}.png")
    assert not pipeline.mirrored(tiny_config("data.source=folder", f"data.root={folder.parent}", "data.attributes=[]"))


def test_the_run_summary_says_how_many_passes_an_epoch_is_where_it_is_not_one(tiny_config):
    from homogan.train import _passes, _total_steps

    one_pass = tiny_config("training.steps_per_epoch=null")
    source = sources.open_source(one_pass)
    full = sources.training_data(one_pass, source).steps_per_epoch
    assert _passes(sources.training_data(one_pass, source)) == ""
    longer = sources.training_data(tiny_config(f"training.steps_per_epoch={4 * full}"), source)
    assert f"{4 * full * 8 / source.count:.3g} passes of the selection per epoch" in _passes(longer)
    config = tiny_config("training.epochs=3", f"training.steps_per_epoch={4 * full}")
    assert _total_steps(config.training, longer) == f" ({3 * 4 * full:,} steps in all)"
