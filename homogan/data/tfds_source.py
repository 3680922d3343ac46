"""CelebA and MNIST through tensorflow-datasets, offline: the data must already be prepared locally.

``celeb_a``'s download from Google Drive is often refused (quota) and there is no network here, so
when the prepared dataset is absent the error says exactly which files go into which manual folder
for ``tfds build`` to use.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from homogan.config import Config
from homogan.celeba_attributes import CELEBA_ATTRIBUTES
from homogan.data.labels import MNIST_CLASSES
from homogan.data.records import Source
from homogan.errors import DataError
from homogan.runtime import import_tensorflow

CELEBA_MANUAL_FILES = ("img_align_celeba.zip", "list_attr_celeba.txt", "list_eval_partition.txt",
                       "list_landmarks_align_celeba.txt", "identity_CelebA.txt")
SPLITS = {"train": "train", "valid": "validation", "test": "test", "all": "train+validation+test"}


def missing_message(name: str, data_dir: Path) -> str:
    manual = data_dir / "downloads" / "manual"
    if name == "celeb_a":
        return (f"data.root: tfds dataset 'celeb_a' is not prepared in {str(data_dir)!r}; put "
                f"{', '.join(CELEBA_MANUAL_FILES)} into {manual}/ and run `tfds build celeb_a "
                f"--data_dir {data_dir} --manual_dir {manual}`, or use data.source \"celeba\" on an unpacked copy")
    return (f"data.root: tfds dataset {name!r} is not prepared in {str(data_dir)!r}; on a machine with network "
            f"run `tfds build {name} --data_dir {data_dir}` and copy that folder here")


def is_prepared(builder) -> bool:
    """True when ``tfds build`` has written the dataset's record files under the data_dir."""
    folder = Path(builder.data_dir)
    return folder.is_dir() and any(folder.glob("*.tfrecord*"))


def open_tfds(config: Config):
    tf = import_tensorflow()
    import tensorflow_datasets as tfds

    d = config.data
    data_dir = Path(d.root)
    builder = tfds.builder(d.tfds_name, data_dir=str(data_dir))
    if not is_prepared(builder):
        raise DataError(missing_message(d.tfds_name, data_dir))
    split = SPLITS[d.split] if d.tfds_name == "celeb_a" else ("train" if d.split == "train" else "test")
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False)
    log = [f"tfds {d.tfds_name} split {split}"]
    if d.tfds_name == "celeb_a":
        for name, wanted in d.filters.items():
            ds = ds.filter(lambda ex, n=name, w=wanted: tf.equal(ex["attributes"][n], w == 1))
            log.append(f"filter {name}={wanted}")
        attrs = list(d.attributes)

        def record(ex):
            label = tf.stack([tf.cast(ex["attributes"][a], tf.float32) for a in attrs]) if attrs else tf.zeros([0])
            return ex["image"], label
        label_names = attrs
        assert set(attrs) <= set(CELEBA_ATTRIBUTES)  # validated by the config schema
    else:
        label_names = list(MNIST_CLASSES) if d.class_conditional else []

        def record(ex):
            label = tf.one_hot(ex["label"], 10) if d.class_conditional else tf.zeros([0])
            return ex["image"], label
    ds = ds.map(record)
    if d.limit is not None:
        ds = ds.take(d.limit)
    count = int(ds.reduce(np.int64(0), lambda n, _: n + 1).numpy())
    if count == 0:
        raise DataError(f"data.filters: {d.filters} leaves 0 images in tfds {d.tfds_name} {split}")
    log.append(f"{count} images")
    return Source(count, label_names, log, encoded=ds)
