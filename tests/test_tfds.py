"""CelebA and MNIST through tensorflow-datasets, offline: the missing-data message, and the reading
path on tfds's own mock data (real feature structure, random content)."""

import numpy as np
import tensorflow as tf
import pytest

from homogan.data import sources, tfds_source
from homogan.errors import DataError


def test_missing_celeb_a_says_which_files_go_in_which_manual_folder(tiny_config, tmp_path):
    config = tiny_config("data.source=tfds", f"data.root={tmp_path}", 'data.attributes=["Bald"]')
    with pytest.raises(DataError) as info:
        sources.open_source(config)
    message = str(info.value)
    for name in tfds_source.CELEBA_MANUAL_FILES:
        assert name in message
    assert str(tmp_path / "downloads" / "manual") in message and "tfds build celeb_a" in message


def test_missing_mnist_is_explained(tiny_config, tmp_path):
    with pytest.raises(DataError, match="tfds build mnist"):
        sources.open_source(tiny_config("data.source=tfds", "data.tfds_name=mnist", f"data.root={tmp_path}"))


@pytest.fixture
def mocked_tfds(monkeypatch):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds_source, "is_prepared", lambda builder: True)
    with tfds.testing.mock_data(num_examples=48):
        yield


def test_celeb_a_batches_with_attributes(tiny_config, tmp_path, mocked_tfds):
    from homogan.data import pipeline

    config = tiny_config("data.source=tfds", f"data.root={tmp_path}", 'data.attributes=["Bald","Eyeglasses"]',
                         "training.epochs=1", "training.steps_per_epoch=null")
    source = sources.open_source(config)
    assert source.count == 48 and source.label_names == ["Bald", "Eyeglasses"]
    data = sources.training_data(config, source)
    images, labels = next(iter(pipeline.make_dataset(config, data)))
    assert images.shape == (8, 32, 32, 3) and labels.shape == (8, 2)
    assert images.dtype == tf.uint8 and float(np.max(images)) > 1  # pixels, scaled in the train step
    assert set(np.unique(labels.numpy())) <= {0.0, 1.0}


def test_celeb_a_filters_apply_before_decoding(tiny_config, tmp_path, mocked_tfds):
    everyone = sources.open_source(tiny_config("data.source=tfds", f"data.root={tmp_path}")).count
    men = sources.open_source(tiny_config("data.source=tfds", f"data.root={tmp_path}", 'data.filters={"Male": 1}')).count
    assert 0 <= men < everyone


def test_mnist_class_conditional(tiny_config, tmp_path, mocked_tfds):
    from homogan.data import pipeline

    config = tiny_config("data.source=tfds", "data.tfds_name=mnist", f"data.root={tmp_path}", "data.channels=1",
                         "data.crop=null", "data.class_conditional=true", "training.epochs=1")
    source = sources.open_source(config)
    assert source.label_names == [str(i) for i in range(10)]
    images, labels = next(iter(pipeline.make_dataset(config, sources.training_data(config, source))))
    assert images.shape == (8, 32, 32, 1)
    np.testing.assert_array_equal(labels.numpy().sum(axis=1), np.ones(8))
