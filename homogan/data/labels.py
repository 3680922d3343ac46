"""The names of a config's conditioning vector, known without opening the data: one home for them.

Attributes (CelebA names) when the run is attribute-conditioned; class names when it is
class-conditional (the subfolder names of a folder source, the ten digits of tfds mnist); none for an
unconditional run. Training, generation, the classifier and ``doctor`` all ask here.
"""

from __future__ import annotations

from homogan.data import folders

#: The classes of tensorflow-datasets' mnist, in label order.
MNIST_CLASSES = [str(i) for i in range(10)]


def label_names(config) -> list[str]:
    """The conditioning vector's names: attributes, or class names (folder subfolders / mnist digits)."""
    d = config.data
    if not d.class_conditional:
        return list(d.attributes)
    if d.source == "tfds":
        return list(MNIST_CLASSES)
    return folders.read_folder(d.root, True)[2]
