"""homogan: train, freeze, re-run and compare face-generating GANs (Keras 3 / TensorFlow)."""

__version__ = "0.1.0"
