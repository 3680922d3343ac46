"""Generator and discriminator shapes for 32-128 px and every knob."""

import itertools

import keras
import numpy as np
import pytest

from homogan.models import Discriminator, Generator


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("num_labels", [0, 3])
def test_shapes_follow_image_size(size, num_labels):
    g = Generator(size, 3, 16, num_labels, width=8)
    d = Discriminator(size, 3, num_labels, width=8)
    z = np.random.normal(size=(2, 16)).astype("float32")
    y = np.ones((2, num_labels), "float32")
    images = keras.ops.convert_to_numpy(g(z, y))
    assert images.shape == (2, size, size, 3)
    assert np.all(np.abs(images) <= 1.0)
    logits = d(images, y)
    assert tuple(logits.shape) == (2,) and keras.backend.standardize_dtype(logits.dtype) == "float32"
    convs = [layer for layer in g.blocks if isinstance(layer, (keras.layers.Conv2DTranspose, keras.layers.Conv2D))]
    assert len(convs) == int(np.log2(size)) - 2  # one upsampling per resolution step


GENERATOR_KNOBS = dict(stem=["dense", "conv_transpose"], upsample=["conv_transpose", "upsample_conv"],
                       batch_norm=[True, False], activation=["relu", "leaky_relu"], noise_stddev=[0.0, 0.1],
                       spectral_norm=[False, True])


@pytest.mark.parametrize("knobs", [dict(zip(GENERATOR_KNOBS, v)) for v in itertools.product(*GENERATOR_KNOBS.values())
                                   if sum(a != b[0] for a, b in zip(v, GENERATOR_KNOBS.values())) <= 2])
def test_generator_knobs(knobs):
    g = Generator(32, 1, 8, 2, width=4, kernel_size=3, **knobs)
    out = g(np.zeros((3, 8), "float32"), np.zeros((3, 2), "float32"), training=True)
    assert tuple(out.shape) == (3, 32, 32, 1)
    layers = g.blocks
    assert any(isinstance(layer, keras.layers.BatchNormalization) for layer in layers) == knobs["batch_norm"]
    assert any(isinstance(layer, keras.layers.SpectralNormalization) for layer in layers) == knobs["spectral_norm"]
    assert any(isinstance(layer, keras.layers.GaussianNoise) for layer in layers) == (knobs["noise_stddev"] > 0)
    assert any(isinstance(layer, keras.layers.UpSampling2D) for layer in layers) == (knobs["upsample"] == "upsample_conv")
    assert isinstance(layers[-1], keras.layers.Activation) and layers[-1].dtype_policy.name == "float32"


@pytest.mark.parametrize("normalization", ["batch", "layer", "none"])
@pytest.mark.parametrize("extras", [dict(), dict(dropout=0.3, input_noise_stddev=0.1, spectral_norm=True,
                                                 activation="relu")])
def test_discriminator_knobs_and_no_norm_in_first_layer(normalization, extras):
    d = Discriminator(64, 3, 2, width=4, normalization=normalization, **extras)
    out = d(np.zeros((2, 64, 64, 3), "float32"), np.zeros((2, 2), "float32"), training=True)
    assert tuple(out.shape) == (2,)
    first_conv = next(i for i, layer in enumerate(d.blocks) if "conv" in layer.name or "spectral" in layer.name)
    assert not isinstance(d.blocks[first_conv + 1], (keras.layers.BatchNormalization, keras.layers.LayerNormalization))
    norm = {"batch": keras.layers.BatchNormalization, "layer": keras.layers.LayerNormalization}.get(normalization)
    if norm:
        assert sum(isinstance(layer, norm) for layer in d.blocks) == 3  # 4 blocks, all but the first
    assert any(isinstance(layer, keras.layers.Dropout) for layer in d.blocks) == ("dropout" in extras)
    assert (d.input_noise is not None) == ("input_noise_stddev" in extras)


def test_widths_double_and_cap():
    d = Discriminator(128, 3, 0, width=64, max_width=256)
    d(np.zeros((1, 128, 128, 3), "float32"), np.zeros((1, 0), "float32"))
    filters = [layer.filters for layer in d.blocks if isinstance(layer, keras.layers.Conv2D)]
    assert filters == [64, 128, 256, 256, 256]
    g = Generator(64, 3, 100, 0, width=64)
    g(np.zeros((1, 100), "float32"), np.zeros((1, 0), "float32"))
    filters = [layer.filters for layer in g.blocks if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert filters == [256, 128, 64, 3]  # after the 4x4x512 dense stem (Radford et al.)
    assert g.get_config()["width"] == 64 and Generator(**{k: v for k, v in g.get_config().items()
                                                          if k not in ("name", "trainable", "dtype")})


def test_labels_change_the_output():
    g = Generator(32, 3, 8, 2, width=4)
    z = np.random.normal(size=(1, 8)).astype("float32")
    a = keras.ops.convert_to_numpy(g(z, np.array([[0, 0]], "float32")))
    b = keras.ops.convert_to_numpy(g(z, np.array([[1, 0]], "float32")))
    assert np.abs(a - b).max() > 1e-4


def test_bad_sizes_and_names_are_refused():
    with pytest.raises(ValueError, match="image_size=48"):
        Generator(48, 3, 8)
    with pytest.raises(ValueError, match="stem='fc'"):
        Generator(32, 3, 8, stem="fc")
    with pytest.raises(ValueError, match="normalization='instance'"):
        Discriminator(32, 3, normalization="instance")
